"""One crawl in a cold process, for bench_crawl.py: gristmill (in .venv) or Scrapy (in benchmarks/.venv-scrapy).

    python benchmarks/_crawl_runners.py gristmill '<json: {"seeds", "out", "config": {...}}>'
    python benchmarks/_crawl_runners.py scrapy '<json: {"seeds", "out", "concurrency"}>'

Prints one JSON line: pages kept, seconds (wall, from the crawl's start to its end, imports
excluded), cpu_seconds (user + system of this process over the same span), versions.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_gristmill(args: dict) -> dict:
    from importlib.metadata import version

    from gristmill.crawl import CrawlConfig, run_crawl

    out = Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)
    config = CrawlConfig(seeds=tuple(args["seeds"]), **args["config"])
    c0, t0 = cpu(), time.perf_counter()
    summary = run_crawl(config, out)
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    warc_bytes = sum(f.stat().st_size for f in (out / "warc").glob("*.warc.gz"))
    return {"pages": summary["pages_stored"], "requests": summary["requests"], "seconds": seconds,
            "cpu_seconds": cpu_s, "warc_bytes": warc_bytes, "not_stored": summary["not_stored"],
            "versions": {p: version(p) for p in ("httpx", "httpcore", "warcio", "protego")}}


def run_scrapy(args: dict) -> dict:
    import hashlib
    from urllib.parse import urlsplit

    import scrapy
    import twisted
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor
    from scrapy.spiders import CrawlSpider, Rule

    hosts = sorted({urlsplit(u).hostname for u in args["seeds"]})
    out = Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)

    class Site(CrawlSpider):
        name = "bench"
        allowed_domains = hosts
        start_urls = args["seeds"]
        rules = (Rule(LinkExtractor(), callback="parse_item", follow=True),)  # allowed_domains limits hosts

        async def start(self):  # type: ignore[no-untyped-def]
            for url in self.start_urls:  # filtered like any other request: a link back to a seed is a duplicate
                yield scrapy.Request(url)

        def parse_start_url(self, response):  # type: ignore[no-untyped-def]
            return self.parse_item(response)

        def parse_item(self, response):  # type: ignore[no-untyped-def]
            yield {"url": response.url, "status": response.status, "length": len(response.body),
                   "sha256": hashlib.sha256(response.body).hexdigest()}

    n = args["concurrency"]
    settings = {"ROBOTSTXT_OBEY": True, "CONCURRENT_REQUESTS": n, "CONCURRENT_REQUESTS_PER_DOMAIN": n,
                "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "WARNING",
                "TELNETCONSOLE_ENABLED": False, "COOKIES_ENABLED": False, "USER_AGENT": "bench-scrapy/1.0",
                "FEEDS": {str(out / "items.jsonl"): {"format": "jsonlines", "overwrite": True}},
                "DEPTH_LIMIT": 0, "RETRY_TIMES": 3}
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(Site)
    process.crawl(crawler)
    c0, t0 = cpu(), time.perf_counter()
    process.start()
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    stats = crawler.stats.get_stats()
    return {"pages": stats.get("item_scraped_count", 0), "requests": stats.get("downloader/request_count"),
            "seconds": seconds, "cpu_seconds": cpu_s, "versions": {"scrapy": scrapy.__version__, "twisted": twisted.__version__}}


if __name__ == "__main__":
    which, spec = sys.argv[1], json.loads(sys.argv[2])
    result = run_gristmill(spec) if which == "gristmill" else run_scrapy(spec)
    print(json.dumps(result), flush=True)
