"""The settings of a crawl, with their defaults (the polite ones) and checks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from gristmill.crawl.canonical import DEFAULT_DROP_PARAMS

__all__ = ["DEFAULT_CONTENT_TYPES", "DEFAULT_USER_AGENT", "CrawlConfig", "MiB"]

MiB = 1024 * 1024
DEFAULT_USER_AGENT = "gristmill-crawl/0.1 (+https://pypi.org/project/gristmill/)"
# what the readers read: HTML, plain text and Markdown, PDF
DEFAULT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown",
                         "application/pdf")


@dataclass
class CrawlConfig:
    """Everything that decides what a crawl fetches and keeps (the command's options, one field each)."""

    seeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    # allowed domains (a domain allows its subdomains); empty: the hosts of the seeds and sitemaps
    domains: tuple[str, ...] = ()
    include: tuple[str, ...] = ()  # regexes, searched in path?query: a page must match one (when given)
    exclude: tuple[str, ...] = ()  # regexes, searched in path?query: a page matching one is skipped
    max_depth: int | None = 5  # links followed from a seed (seeds and sitemap entries are depth 0)
    max_pages: int | None = None  # start no request once this many pages are stored (in-flight ones finish)
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES  # 'text/*' allows every text type
    max_bytes: int = 10 * MiB  # a body longer than this (decoded) is not stored
    max_sitemap_bytes: int = 50 * MiB  # the sitemap protocol's own limit
    delay: float = 1.0  # seconds between request starts to one host (robots.txt may ask for more)
    per_host: int = 1  # requests in flight to one host
    concurrency: int = 16  # requests in flight in all
    timeout: float = 30.0  # seconds for a whole request (connect, headers and body)
    retries: int = 3  # more tries after a 5xx, a 429, a timeout or a network error
    backoff: float = 1.0  # seconds before the first retry; doubled for each later one
    max_retry_after: float = 600.0  # a server's Retry-After is honoured up to this many seconds
    max_redirects: int = 5  # redirect hops followed from one link
    max_url_length: int = 2048
    user_agent: str = DEFAULT_USER_AGENT
    drop_params: str | None = DEFAULT_DROP_PARAMS  # query parameters dropped by canonicalisation
    warc_max_bytes: int = 1024 * MiB  # a WARC file is closed and the next one begun past this size
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes recorded in config.json

    def problems(self) -> list[str]:
        """What is wrong with the settings, as option names (empty: fine)."""
        out = []
        if not self.seeds and not self.sitemaps:
            out.append("give at least one seed URL or --sitemap")
        for name, value, low in (("--delay", self.delay, 0), ("--timeout", self.timeout, 1e-3),
                                 ("--backoff", self.backoff, 0), ("--max-retry-after", self.max_retry_after, 0)):
            if not value >= low:
                out.append(f"{name} must be >= {low}, not {value}")
        for name, value, low in (("--per-host", self.per_host, 1), ("--concurrency", self.concurrency, 1),
                                 ("--retries", self.retries, 0), ("--max-redirects", self.max_redirects, 0),
                                 ("--max-bytes", self.max_bytes, 1), ("--warc-max-bytes", self.warc_max_bytes, 1),
                                 ("--max-depth", self.max_depth, 0), ("--max-pages", self.max_pages, 1),
                                 ("--max-url-length", self.max_url_length, 16)):
            if value is not None and value < low:
                out.append(f"{name} must be >= {low}, not {value}")
        for name, patterns in (("--include", self.include), ("--exclude", self.exclude),
                               ("--drop-params", (self.drop_params,) if self.drop_params else ())):
            for p in patterns:
                try:
                    re.compile(p)
                except re.error as exc:
                    out.append(f"{name} {p!r}: not a regular expression ({exc})")
        if not self.user_agent.strip():
            out.append("--user-agent must not be empty")
        return out

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-able mapping (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def accepts_type(self, content_type: str) -> bool:
        """Is ``content_type`` (a bare media type, lower case) one of :attr:`content_types`?"""
        for allowed in self.content_types:
            allowed = allowed.lower()
            if allowed == content_type or (allowed.endswith("/*") and content_type.startswith(allowed[:-1])):
                return True
        return False
