"""Crawler: pages/s against a local server with politeness off (vs Scrapy), and politeness limits measured.

    .venv/bin/python benchmarks/bench_crawl.py [--pages 3000] [--runs 2] [--skip-scrapy]

The server (_crawl_server.py, asyncio, keep-alive, its own process) serves generated sites on
loopback addresses: pages of about 4 KB of text with 8 links each to other pages and one link
disallowed by robots.txt. Every crawler runs in a cold subprocess (_crawl_runners.py) and is timed
from the start of its crawl to its end (imports excluded), with the CPU seconds of its process.

1. Throughput, politeness off: from ``/p/0`` until all ``--pages`` pages are fetched, 16 requests
   in flight, no delay, robots.txt obeyed.
   - gristmill: ``run_crawl`` with ``delay=0, per_host=16, concurrency=16``; it writes the WARC
     (gzip per record, request + response), the JSONL index and log, and commits every answer
     to its SQLite frontier (what makes a killed crawl resumable).
   - Scrapy (benchmarks/.venv-scrapy, created here): a CrawlSpider with a LinkExtractor,
     ``CONCURRENT_REQUESTS(_PER_DOMAIN)=16, DOWNLOAD_DELAY=0, ROBOTSTXT_OBEY=True``, an item per
     page (url, status, length, sha256) to a JSON Lines feed; its scheduler is in memory (no
     JOBDIR), so it does less durable work per page than gristmill.
   Runs alternate between the systems; each system's fastest run counts, every run is listed.
2. Politeness on (gristmill only): two hosts crawled together with ``delay=0.2, per_host=2``.
   Host A (127.0.0.1) answers each page after 0.3 s, so two requests overlap; host B (127.0.0.2)
   answers at once and its robots.txt says ``Crawl-delay: 0.5``. The server logs the arrival time
   of every request and the most requests it answered at once; the figures are the gaps between
   consecutive arrivals per host against the interval the crawler must keep (0.2 s for A, 0.5 s
   for B) and the most in flight against ``per_host``. Arrival times include each request's
   own latency, so a gap can fall a few milliseconds short of the interval the crawler kept
   between starting them.

Timings on this shared 2-core machine are noisy (the server takes one core); compare within one run.
Writes benchmarks/results/bench_crawl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_minhash import ensure_venv  # noqa: E402

OUT = BENCH / "out" / "crawl"
RESULT = BENCH / "results" / "bench_crawl.json"
SCRAPY_VENV = BENCH / ".venv-scrapy"
SCRAPY_PACKAGES = ["scrapy==2.19.0"]
MAIN_PY = ROOT / ".venv" / "bin" / "python"


class Server:
    """_crawl_server.py in a subprocess; ``base[host]`` is each site's base URL."""

    def __init__(self, sites: list[dict[str, Any]]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "_crawl_server.py"), json.dumps({"sites": sites})],
                                     stdout=subprocess.PIPE, text=True)
        self.base = {}
        for _ in sites:
            _, host, port = self.proc.stdout.readline().split()  # type: ignore[union-attr]
            self.base[host] = f"http://{host}:{port}"

    def log(self, host: str) -> dict[str, Any]:
        return httpx.get(self.base[host] + "/__log", timeout=30, trust_env=False).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def loadavg() -> float:
    return os.getloadavg()[0]


def run_crawler(system: str, spec: dict[str, Any]) -> dict[str, Any]:
    py = MAIN_PY if system == "gristmill" else SCRAPY_VENV / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"OMP_NUM_THREADS": "1"}
    load = loadavg()
    proc = subprocess.run([str(py), str(BENCH / "_crawl_runners.py"), system, json.dumps(spec)], capture_output=True,
                          text=True, env=env, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"{system} failed:\n{proc.stderr[-3000:]}")
    return {"system": system, **json.loads(proc.stdout.strip().splitlines()[-1]), "loadavg_before": load}


def throughput(pages: int, runs: int, scrapy: bool) -> dict[str, Any]:
    server = Server([{"host": "127.0.0.1", "pages": pages}])
    seed = server.base["127.0.0.1"] + "/p/0"
    systems = ["gristmill"] + (["scrapy"] if scrapy else [])
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    try:
        for run in range(runs):
            for system in systems:
                out = OUT / f"{system}-{run}"
                shutil.rmtree(out, ignore_errors=True)
                spec: dict[str, Any] = {"seeds": [seed], "out": str(out)}
                if system == "gristmill":
                    spec["config"] = {"delay": 0, "per_host": 16, "concurrency": 16, "max_depth": None}
                else:
                    spec["concurrency"] = 16
                r = run_crawler(system, spec)
                served = server.log("127.0.0.1")["log"]
                paths = [p for p, _, _ in served if p.startswith("/p/")]
                r.update(pages_per_s=r["pages"] / r["seconds"], pages_per_cpu_s=r["pages"] / r["cpu_seconds"],
                         server_page_requests=len(paths), server_distinct_pages=len(set(paths)),
                         disallowed_requests=sum(p.startswith("/never/") for p, _, _ in served))
                results[system].append(r)
                print(f"  {system} run {run + 1}: {r['pages']} pages in {r['seconds']:.2f}s = {r['pages_per_s']:.0f} "
                      f"pages/s ({r['cpu_seconds']:.2f} CPU s; load before {r['loadavg_before']:.2f})", flush=True)
    finally:
        server.close()
    best = {s: min(rs, key=lambda r: r["seconds"]) for s, rs in results.items()}
    figures: dict[str, Any] = {"pages": pages, "concurrency": 16, "best": best, "runs": results}
    if scrapy:
        figures["gristmill_vs_scrapy_pages_per_s"] = best["gristmill"]["pages_per_s"] / best["scrapy"]["pages_per_s"]
        figures["gristmill_vs_scrapy_pages_per_cpu_s"] = (best["gristmill"]["pages_per_cpu_s"]
                                                          / best["scrapy"]["pages_per_cpu_s"])
    return figures


def gaps_report(log: list[list[Any]], interval: float, per_host: int, max_active: int) -> dict[str, Any]:
    starts = sorted(t for _, t, _ in log)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return {"requests": len(starts), "interval_s": interval, "min_gap_s": min(gaps), "median_gap_s":
            statistics.median(gaps), "mean_gap_s": statistics.fmean(gaps), "max_gap_s": max(gaps),
            "gaps_below_interval": sum(g < interval for g in gaps),
            "gaps_below_interval_minus_10ms": sum(g < interval - 0.01 for g in gaps),
            "requests_per_s": (len(starts) - 1) / (starts[-1] - starts[0]), "per_host_limit": per_host,
            "max_in_flight": max_active, "holds": min(gaps) >= interval - 0.01 and max_active <= per_host}


def politeness() -> dict[str, Any]:
    sites = [{"host": "127.0.0.1", "pages": 30, "latency": 0.3},
             {"host": "127.0.0.2", "pages": 20, "robots": "User-agent: *\nCrawl-delay: 0.5\nDisallow: /never/\n"}]
    server = Server(sites)
    out = OUT / "polite"
    shutil.rmtree(out, ignore_errors=True)
    try:
        r = run_crawler("gristmill", {"seeds": [server.base[h] + "/p/0" for h in ("127.0.0.1", "127.0.0.2")],
                                      "out": str(out), "config": {"delay": 0.2, "per_host": 2, "concurrency": 16,
                                                                  "max_depth": None}})
        a, b = server.log("127.0.0.1"), server.log("127.0.0.2")
    finally:
        server.close()
    return {"config": {"delay": 0.2, "per_host": 2, "concurrency": 16},
            "host_a_delay_0.2_latency_0.3": gaps_report(a["log"], 0.2, 2, a["max_active"]),
            "host_b_robots_crawl_delay_0.5": gaps_report(b["log"], 0.5, 2, b["max_active"]),
            "pages": r["pages"], "seconds": r["seconds"], "loadavg_before": r["loadavg_before"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--skip-scrapy", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_scrapy:
        ensure_venv(SCRAPY_VENV, SCRAPY_PACKAGES, "import scrapy")
    from importlib.metadata import version

    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "loadavg_start": loadavg(),
        "versions": {p: version(p) for p in ("httpx", "httpcore", "warcio", "protego")},
    }
    print(f"throughput, politeness off: {args.pages} pages, 16 in flight", flush=True)
    report["throughput"] = throughput(args.pages, args.runs, not args.skip_scrapy)
    print("politeness on: delay 0.2 s, 2 per host; host B asks Crawl-delay 0.5 s", flush=True)
    report["politeness"] = politeness()
    for host in ("host_a_delay_0.2_latency_0.3", "host_b_robots_crawl_delay_0.5"):
        p = report["politeness"][host]
        print(f"  {host}: {p['requests']} requests, gaps min {p['min_gap_s']:.3f}s median {p['median_gap_s']:.3f}s "
              f"(interval {p['interval_s']}s), at most {p['max_in_flight']} in flight (limit {p['per_host_limit']})",
              flush=True)
    report["loadavg_end"] = loadavg()
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
