"""Polite, resumable web crawling into WARC files with a JSONL index (``gristmill crawl``).

Modules: :mod:`.canonical` (URL canonicalisation and domain checks), :mod:`.robots` (robots.txt),
:mod:`.fetch` (one GET under the limits), :mod:`.links` (charset, links, robots meta),
:mod:`.sitemap`, :mod:`.frontier` (SQLite), :mod:`.warc_out` (WARC, index and log files),
:mod:`.crawler` (the loop), :mod:`.reasons` (the words of the crawl log).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gristmill.crawl.config import CrawlConfig

__all__ = ["CrawlConfig", "CrawlInterrupted", "run_crawl"]


class CrawlInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the crawl; everything committed is kept and ``--resume`` continues.
    ``summary``: the figures so far."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.summary = summary


def run_crawl(config: CrawlConfig, root: Path, resume: bool = False,
              on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Crawl into the directory ``root`` (it must exist); returns the summary figures.

    Without ``resume`` the crawl files of an earlier crawl in ``root`` (frontier, WARC, index, log)
    are removed first; with it the crawl continues from its last commit. Raises
    :class:`CrawlInterrupted` on Ctrl-C (SIGINT) or SIGTERM after every fetch in flight is cancelled
    and the files are closed; no thread or process is left behind.
    """
    from gristmill.crawl.crawler import Crawler

    crawler = Crawler(config, Path(root), resume=resume, on_progress=on_progress)

    async def main() -> dict[str, Any]:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)  # type: ignore[union-attr]
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
        return await crawler.run()

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise CrawlInterrupted(crawler.result) from None
