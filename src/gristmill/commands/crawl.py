"""``gristmill crawl``: fetch pages politely from seed URLs and sitemaps into WARC files with a JSONL index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, Out, Quiet, Resume, create_run, described, err,
                                       fail, out)

CrawlOut = described(Out, "Run directory (default runs/crawl-<host of the first seed>); a non-empty directory "
                          "gristmill did not make is refused untouched.")
CrawlResume = described(Resume, "Continue the crawl in --out where it stopped: pages already stored are not "
                                "fetched again; without it, the crawl in --out starts over.")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """``10M``, ``512KiB``, ``1G``, ``2000`` → bytes (K/M/G are powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 10M, 512K, 1G, 2000)")
    return int(float(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " "))


def _default_out(seeds: list[str]) -> Path:
    from urllib.parse import urlsplit

    host = urlsplit(seeds[0]).hostname if seeds else None
    return Path("runs") / f"crawl-{re.sub(r'[^A-Za-z0-9._-]+', '_', host or 'web')}"


def crawl(
    seeds: Annotated[Optional[list[str]], typer.Argument(help="Seed URLs (depth 0).", show_default=False)] = None,
    sitemap: Annotated[Optional[list[str]], typer.Option("--sitemap", help="A sitemap or sitemap index URL; its "
                                                         "pages are crawled as seeds (repeatable).")] = None,
    seeds_file: Annotated[Optional[Path], typer.Option("--seeds-file", help="A file of seed URLs, one a line.")]
    = None,
    out_dir: CrawlOut = None,
    resume: CrawlResume = False,
    domain: Annotated[Optional[list[str]], typer.Option("--domain", help="Allowed domain, its subdomains "
                                                        "included (repeatable; default: the hosts of the seeds "
                                                        "and sitemaps).")] = None,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Regex searched in a link's path?query: "
                                                         "only matching links are followed (repeatable).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Regex searched in a link's path?query: "
                                                         "matching links are skipped (repeatable).")] = None,
    max_depth: Annotated[int, typer.Option("--max-depth", min=-1, help="Links followed away from a seed "
                                           "(-1: no limit).")] = 5,
    max_pages: Annotated[Optional[int], typer.Option("--max-pages", min=1, help="Start no request once this many "
                                                     "pages are stored (those in flight still finish).")] = None,
    content_type: Annotated[Optional[list[str]], typer.Option(
        "--content-type", help="Media type to keep, 'text/*' for a family (repeatable; default: HTML, XHTML, plain "
        "text, Markdown, PDF).")] = None,
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="Largest body kept (decoded); reading stops past "
                                           "it (10M, 512K, ...).")] = "10M",
    delay: Annotated[float, typer.Option("--delay", min=0.0, help="Seconds between request starts to one host "
                                         "(robots.txt Crawl-delay may ask for more; 0: no rate limit).")] = 1.0,
    per_host: Annotated[int, typer.Option("--per-host", min=1, help="Requests in flight to one host.")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight in all.")] = 16,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds for a whole request, body "
                                           "included.")] = 30.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="More tries after a 5xx, 429, timeout or "
                                         "network error.")] = 3,
    backoff: Annotated[float, typer.Option("--backoff", min=0.0, help="Seconds before the first retry, doubled "
                                           "for each next one (a Retry-After header may ask for more).")] = 1.0,
    max_redirects: Annotated[int, typer.Option("--max-redirects", min=0, help="Redirects followed in a row.")] = 5,
    user_agent: Annotated[Optional[str], typer.Option("--user-agent", help="User-Agent header, also the name "
                                                      "robots.txt rules are matched against.")] = None,
    keep_params: Annotated[bool, typer.Option("--keep-params", help="Keep tracking and session query parameters "
                                              "(utm_*, gclid, sessionid, ...) instead of dropping them.")] = False,
    warc_max_bytes: Annotated[str, typer.Option("--warc-max-bytes", help="Begin a new WARC file past this "
                                                "size.")] = "1G",
    quiet: Quiet = False,
) -> None:
    """Crawl from SEEDS and --sitemap URLs into WARC files, index.jsonl and crawl_log.jsonl (robots.txt obeyed)."""
    extras.require("crawl", "warcio", "protego")
    from gristmill.crawl import CrawlInterrupted, run_crawl
    from gristmill.crawl.config import DEFAULT_CONTENT_TYPES, DEFAULT_USER_AGENT, CrawlConfig

    all_seeds = list(seeds or [])
    if seeds_file is not None:
        try:
            all_seeds += [ln.strip() for ln in seeds_file.read_text(encoding="utf-8").splitlines()
                          if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as exc:
            fail(f"--seeds-file {seeds_file}: {exc.strerror or exc}")
    try:
        sizes = parse_size(max_bytes), parse_size(warc_max_bytes)
    except typer.BadParameter as exc:
        fail(str(exc))
    config = CrawlConfig(
        seeds=tuple(all_seeds), sitemaps=tuple(sitemap or ()), domains=tuple(domain or ()),
        include=tuple(include or ()), exclude=tuple(exclude or ()), max_depth=None if max_depth < 0 else max_depth,
        max_pages=max_pages, content_types=tuple(content_type or DEFAULT_CONTENT_TYPES), max_bytes=sizes[0],
        delay=delay, per_host=per_host, concurrency=concurrency, timeout=timeout, retries=retries, backoff=backoff,
        max_redirects=max_redirects, user_agent=user_agent or DEFAULT_USER_AGENT,
        warc_max_bytes=sizes[1], **({"drop_params": None} if keep_params else {}))
    problems = config.problems()
    if problems:
        fail("; ".join(problems))
    from gristmill.crawl.canonical import NotCrawlable, canonicalize

    for url in config.seeds + config.sitemaps:
        if isinstance(canonicalize(url), NotCrawlable):
            fail(f"not an http(s) URL: {url!r}")
    target = out_dir or _default_out(list(config.seeds + config.sitemaps))
    if resume and not (target / "frontier.sqlite").is_file():
        fail(f"--resume: {target} holds no crawl to continue (no frontier.sqlite)")
    run = create_run(target, "crawl", config.to_json(), resume=resume)
    try:
        with _progress(not quiet) as update:
            summary = run_crawl(config, run.path, resume=resume, on_progress=update)
    except CrawlInterrupted as exc:
        _finish(run, exc.summary)
        fail(f"interrupted after {exc.summary.get('pages_stored', 0):,} pages; run the same command with --resume "
             "to continue", EXIT_INTERRUPTED)
    except OSError as exc:
        fail(f"{exc}", EXIT_FAILED)
    _finish(run, summary)
    rate = summary["pages_stored"] / summary["seconds"] if summary["seconds"] else 0.0
    out.print(f"[bold green]done[/] {summary['pages_stored']:,} pages stored, {summary['requests']:,} requests in "
              f"{summary['seconds']:.1f}s ({rate:,.1f} pages/s) → {run.path}", highlight=False, soft_wrap=True)
    for reason, n in summary["not_stored"].items():
        out.print(f"  {reason:<20} {n:>8,}", highlight=False)
    if summary["stopped_at_max_pages"]:
        out.print(f"  stopped at --max-pages; {summary['queue_left']:,} URLs left in the queue (--resume with a "
                  "higher --max-pages continues)", highlight=False)
    if not summary["pages_stored"]:
        fail("no page was stored; see crawl_log.jsonl for why", EXIT_FAILED)


def _finish(run: Any, summary: dict[str, Any]) -> None:
    """results.json and the report's table of reasons."""
    from gristmill.crawl.reasons import REASONS

    if not summary:
        return
    run.result(**summary)
    run.table("URLs not stored", ["reason", "URLs", "meaning"],
              [(r, n, REASONS.get(r, "")) for r, n in summary["not_stored"].items()])
    try:
        run.finish("Crawl")
    except Exception as exc:  # noqa: BLE001 - the report is a convenience; the crawl's files are complete
        err.print(f"note: report.html not written ({exc})", highlight=False, markup=False)


class _progress:
    """A rich progress line: pages stored, pages/s, queue size, requests; a no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress, TextColumn, TimeElapsedColumn

        from gristmill.progress import RateColumn

        self.bars = Progress(TextColumn("[bold]crawl"), TextColumn("{task.completed:,.0f} pages"), RateColumn(),
                             TextColumn("queue {task.fields[queue]:,}"),
                             TextColumn("requests {task.fields[requests]:,}"), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=False)
        self.bars.__enter__()
        self.task = self.bars.add_task("crawl", total=None, unit="pages", queue=0, requests=0)
        self.started = False
        return self.update

    def update(self, figures: dict[str, Any]) -> None:
        if not self.started:  # a resumed crawl starts at its stored count, not at a burst of pages/s
            self.started = True
            self.bars.reset(self.task, completed=figures["stored"], total=None)
        self.bars.update(self.task, completed=figures["stored"], queue=figures["queue"],
                         requests=figures["requests"])

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bars.__exit__(*exc)


def register(app: typer.Typer) -> None:
    """Add ``crawl`` to ``app``."""
    app.command("crawl")(crawl)
