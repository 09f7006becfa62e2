"""robots.txt (RFC 9309) of one origin, read with protego (longest match, ``*`` and ``$`` wildcards).

What an answer means, as RFC 9309 section 2.3.1 says:

* 2xx: the rules apply; only the first 512 KiB are read (the rest is dropped, as the RFC allows);
* 4xx other than 429 ("unavailable"): no rules, everything may be fetched;
* 429, 5xx, a timeout or a network error ("unreachable"): nothing may be fetched from the origin
  (the crawler retries robots.txt with its usual backoff before it settles on this);
* redirects are followed (up to 5 hops, as the RFC asks), by the fetcher.

``Crawl-delay`` and ``Request-rate`` of the group that matches the User-Agent give the origin's
smallest interval between requests (:meth:`Robots.delay`); the crawler waits the larger of it and
its own ``--delay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ROBOTS_BYTES", "Robots"]

MAX_ROBOTS_BYTES = 512 * 1024


@dataclass
class Robots:
    """What robots.txt of one origin allows: built by :meth:`from_answer` from the HTTP status and body."""

    status: int  # HTTP status; 0 when the origin was unreachable (timeout, network error)
    body: str = ""
    detail: str = ""
    _rules: Any = field(default=None, repr=False)

    @classmethod
    def from_answer(cls, status: int, body: bytes | str = b"", detail: str = "") -> "Robots":
        """The rules of an answer to ``GET /robots.txt`` (``status`` 0: no answer, ``detail`` says why)."""
        if isinstance(body, bytes):
            body = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        robots = cls(status, body if 200 <= status < 300 else "", detail)
        if 200 <= status < 300:
            from protego import Protego

            robots._rules = Protego.parse(robots.body)
        return robots

    @property
    def unreachable(self) -> bool:
        """True when nothing may be fetched: no answer, a 429 or a 5xx (or a 3xx left after redirects)."""
        return self.status == 0 or self.status == 429 or self.status >= 500 or 300 <= self.status < 400

    def why_not(self) -> str:
        """The detail of a ``robots-disallow`` skip."""
        if self.unreachable:
            return f"robots.txt unreachable ({self.detail or self.status}): nothing may be fetched"
        return "disallowed by robots.txt"

    def allowed(self, url: str, agent: str) -> bool:
        """May ``agent`` (the User-Agent string) fetch ``url``?"""
        if self.unreachable:
            return False
        if self._rules is None:
            return True
        return bool(self._rules.can_fetch(url, agent))

    def delay(self, agent: str) -> float:
        """Smallest interval in seconds between requests that robots.txt asks of ``agent`` (0: none)."""
        if self._rules is None:
            return 0.0
        delays = [0.0]
        crawl_delay = self._rules.crawl_delay(agent)
        if crawl_delay:
            delays.append(float(crawl_delay))
        rate = self._rules.request_rate(agent)
        if rate and rate.requests:
            delays.append(rate.seconds / rate.requests)
        return max(delays)

    def sitemaps(self) -> list[str]:
        """The ``Sitemap:`` lines."""
        return list(self._rules.sitemaps) if self._rules is not None else []
