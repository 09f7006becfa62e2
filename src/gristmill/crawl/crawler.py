"""The crawl loop: schedule fetches politely, decide what each answer means, write it, commit it.

One asyncio event loop on one thread runs everything: up to ``--concurrency`` fetches at once on an
``httpx.AsyncClient`` (no thread or process per request; Ctrl-C cancels them all at the next
``await``), while this loop alone writes the frontier, the WARC, the index and the log, so no lock is
needed and every write of one answer lands in one SQLite transaction.

Politeness: at most ``--per-host`` requests in flight to a host name, request starts to it at
least ``max(--delay, robots.txt Crawl-delay / Request-rate)`` seconds apart, robots.txt of each
origin read before its first page (and obeyed), retries after 5xx / 429 / timeouts waiting
``--backoff`` x 2^n seconds (or the server's ``Retry-After``, up to ``--max-retry-after``).
Hosts take turns at the free request slots; each host's URLs go breadth first.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from gristmill.crawl.canonical import NotCrawlable, canonicalize, host_of, in_domains, origin_of
from gristmill.crawl.config import CrawlConfig
from gristmill.crawl.fetch import Fetched, fetch
from gristmill.crawl.frontier import DONE, SKIPPED, Frontier, Row
from gristmill.crawl.links import HTML_TYPES, parse_page, robots_directives
from gristmill.crawl.robots import MAX_ROBOTS_BYTES, Robots
from gristmill.crawl.sitemap import parse_sitemap
from gristmill.crawl.warc_out import CrawlOutput, warc_date

__all__ = ["Crawler"]


@dataclass
class _Host:
    active: int = 0
    next_time: float = 0.0  # monotonic time the next fetch may be dispatched
    last_start: float = -1e9  # when the last fetch was dispatched
    last_sent: float = -1e9  # when the last request to the host was sent
    delay: float = 0.0

    async def turn(self) -> None:
        """Wait until ``delay`` has passed since the last request to this host went out, then take the turn.
        Dispatch spaces fetches already; this keeps the spacing where it counts, when the request is sent,
        whatever the event loop did in between."""
        while (wait := self.last_sent + self.delay - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        self.last_sent = time.monotonic()

    def sent(self) -> None:
        """The request's headers are being written now (after any connection set-up): the next turn counts
        from here."""
        self.last_sent = max(self.last_sent, time.monotonic())


class Crawler:
    """One crawl into ``root`` (a run directory); :meth:`run` crawls until the frontier is empty,
    ``--max-pages`` is reached, or it is cancelled (then a new Crawler on the same ``root`` resumes)."""

    def __init__(self, config: CrawlConfig, root: Path, resume: bool = False,
                 on_progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = config
        self.root = Path(root)
        self.resume = resume
        self.on_progress = on_progress
        self.hosts: dict[str, _Host] = {}
        self.robots: dict[str, Robots] = {}
        self.robots_inflight: set[str] = set()
        self.robots_tries: dict[str, int] = {}
        self.tasks: dict[asyncio.Task[Fetched], tuple[str, Any]] = {}
        self.stopping = False
        self.result: dict[str, Any] = {}
        self._last_report = 0.0
        self._turn = 0
        self._links_seen: set[str] = set()  # raw links already discovered (bounded; cleared when full)
        self._include = [re.compile(p) for p in config.include]
        self._exclude = [re.compile(p) for p in config.exclude]
        self._drop = re.compile(config.drop_params, re.I) if config.drop_params else None
        self.domains = tuple(d.lower().rstrip(".") for d in config.domains)

    # ---- set-up ---------------------------------------------------------------------------------
    def _open(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        path = self.root / "frontier.sqlite"
        if not self.resume:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.frontier = Frontier(path)
        try:
            software = " ".join(f"{p}/{version(p)}" for p in ("gristmill", "warcio", "httpx"))
        except PackageNotFoundError:  # pragma: no cover - run from a source tree
            software = "gristmill"
        committed = self.frontier.get_meta("files") if self.resume else None
        self.out = CrawlOutput.open(self.root, committed, self.cfg.warc_max_bytes, software, self.cfg.user_agent)
        self.stats: dict[str, Any] = self.frontier.get_meta("stats") or {"requests": 0, "bytes": 0, "retries": 0,
                                                                         "refetched": 0, "seconds": 0.0}
        self.stored = self.frontier.stored()
        self.queue_at_start = self.frontier.queue_size()
        seeds = [(u, "page") for u in self.cfg.seeds] + [(u, "sitemap") for u in self.cfg.sitemaps]
        if not self.domains:
            hosts = []
            for url, _ in seeds:
                c = canonicalize(url, drop_params=self._drop)
                if isinstance(c, str):
                    hosts.append(host_of(c))
            self.domains = tuple(dict.fromkeys(hosts))
        with self.frontier.transaction(self._meta):
            for url in self.frontier.recover():
                self.stats["refetched"] += 1
                self._log("note", url, "refetch", "was being fetched when the last crawl stopped")
            for url, kind in seeds:
                self._discover(url, None, 0, None, kind=kind, exempt=True)

    def _meta(self) -> dict[str, Any]:
        return {"files": self.out.positions(), "stats": self.stats}

    # ---- the loop -------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Crawl; returns the summary of :meth:`_summary` (kept in :attr:`result` also when cancelled)."""
        self._open()
        t0 = time.monotonic()
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        timeout = httpx.Timeout(self.cfg.timeout)
        try:
            async with httpx.AsyncClient(headers={"User-Agent": self.cfg.user_agent}, timeout=timeout,
                                         follow_redirects=False, limits=limits) as client:
                self.client = client
                try:
                    await self._loop()
                    self._report(force=True)
                finally:
                    await self._cancel_tasks()
        finally:
            self.stats["seconds"] += time.monotonic() - t0
            try:
                with self.frontier.transaction():
                    for key, value in self._meta().items():
                        self.frontier.set_meta(key, value)
                self.result = self._summary()
            finally:
                self.out.close()
                self.frontier.close()
        return self.result

    async def _cancel_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _loop(self) -> None:
        while True:
            wake = None if self.stopping else self._dispatch()
            if not self.tasks:
                if self.stopping or not self.frontier.queued:
                    return
                if wake is None:  # queued URLs, yet none can start and nothing runs: counts went stale
                    self.frontier.queued = {h: n for h, n in self.frontier.queued.items()
                                            if self.frontier.next_for(h, float("inf")) is not None}
                    if not self.frontier.queued:
                        return
                    wake = 0.05
                await asyncio.sleep(wake)
                continue
            done, _ = await asyncio.wait(self.tasks, timeout=wake, return_when=asyncio.FIRST_COMPLETED)
            if done:
                with self.frontier.transaction(self._meta):
                    for task in done:
                        what, item = self.tasks.pop(task)
                        self._handle(what, item, task.result())
            self._report()

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is not None and (force or now - self._last_report > 0.1):
            self._last_report = now
            self.on_progress({"stored": self.stored, "requests": self.stats["requests"],
                              "queue": self.frontier.queue_size()})

    # ---- dispatch -------------------------------------------------------------------------------
    def _dispatch(self) -> float | None:
        """Start every fetch the limits allow now; returns seconds until one more may start (None:
        only when a running fetch ends)."""
        now, wall = time.monotonic(), time.time()
        wake: float | None = None
        hosts = list(self.frontier.queued)
        if hosts:  # hosts take turns at the free slots: each round starts one host further
            self._turn = (self._turn + 1) % len(hosts)
            hosts = hosts[self._turn:] + hosts[:self._turn]
        with self.frontier.transaction(self._meta):
            for host in hosts:
                state = self.hosts.setdefault(host, _Host(delay=self.cfg.delay))
                while len(self.tasks) < self.cfg.concurrency and state.active < self.cfg.per_host:
                    if state.next_time > now:
                        wake = min(wake if wake is not None else 1e9, state.next_time - now)
                        break
                    row = self.frontier.next_for(host, wall)
                    if row is None:
                        retry_at = self.frontier.wake_time(host)
                        if retry_at is not None and retry_at > wall:
                            wake = min(wake if wake is not None else 1e9, retry_at - wall)
                        break
                    origin = origin_of(row.url)
                    robots = self.robots.get(origin) or self._stored_robots(origin)
                    if robots is None:
                        if origin not in self.robots_inflight:
                            self.robots_inflight.add(origin)
                            self._start(state, now, ("robots", origin), fetch(
                                self.client, origin + "/robots.txt", timeout=self.cfg.timeout,
                                max_bytes=MAX_ROBOTS_BYTES, follow=5, truncate=True, **self._polite(state)))
                        break
                    if not robots.allowed(row.url, self.cfg.user_agent):
                        self.frontier.finish(row.url, host, "robots-disallow", state=SKIPPED)
                        self._log("skipped", row.url, "robots-disallow", robots.why_not(), row=row)
                        continue
                    self.frontier.start(row.url)
                    sitemap = row.kind == "sitemap"
                    self._start(state, now, (row.kind, row), fetch(
                        self.client, row.url, timeout=self.cfg.timeout,
                        max_bytes=self.cfg.max_sitemap_bytes if sitemap else self.cfg.max_bytes,
                        accept=None if sitemap else self.cfg.accepts_type, **self._polite(state)))
        return wake

    def _polite(self, state: _Host) -> dict[str, Any]:
        """fetch()'s hooks that keep ``state``'s delay between requests (none when there is no delay)."""
        return {"turn": state.turn, "sent": state.sent} if state.delay > 0 else {}

    def _start(self, state: _Host, now: float, what: tuple[str, Any], coro: Any) -> None:
        state.active += 1
        state.last_start = now
        state.next_time = now + state.delay
        self.stats["requests"] += 1
        self.tasks[asyncio.ensure_future(coro)] = what

    def _stored_robots(self, origin: str) -> Robots | None:
        saved = self.frontier.robots(origin)
        if saved is None:
            return None
        robots = Robots.from_answer(saved[0], saved[1], saved[2])
        self._use_robots(origin, robots)
        return robots

    def _use_robots(self, origin: str, robots: Robots) -> None:
        self.robots[origin] = robots
        state = self.hosts.setdefault(host_of(origin), _Host(delay=self.cfg.delay))
        state.delay = max(state.delay, robots.delay(self.cfg.user_agent))
        state.next_time = max(state.next_time, state.last_start + state.delay)

    # ---- answers --------------------------------------------------------------------------------
    def _handle(self, what: str, item: Any, got: Fetched) -> None:
        host = host_of(got.url)
        self.hosts[host].active -= 1
        self.stats["bytes"] += len(got.body or b"")
        if what == "robots":
            self._handle_robots(item, got)
        elif self._retry(item, got):
            pass
        elif got.status is not None and 300 <= got.status < 400 and got.header("location"):
            self._redirect(item, got)
        elif got.error or got.status is None or not 200 <= got.status < 300:
            reason = "fetch-error" if got.error or got.status is None else "http-error"
            self._not_stored(item, got, reason, got.error or f"HTTP {got.status}")
        elif got.skip is not None:
            self._not_stored(item, got, *got.skip)
        elif what == "sitemap":
            self._sitemap(item, got)
        else:
            self._page(item, got)

    def _retry(self, row: Row, got: Fetched) -> bool:
        status = got.status
        if not (got.retryable or (status is not None and (status >= 500 or status == 429))):
            return False
        if row.attempts >= self.cfg.retries:
            return False
        wait = self.cfg.backoff * 2 ** row.attempts
        asked = got.retry_after()
        if asked is not None:
            wait = max(wait, min(asked, self.cfg.max_retry_after))
        self.frontier.retry(row.url, row.attempts + 1, time.time() + wait)
        self.stats["retries"] += 1
        self._log("note", row.url, "retry", f"{got.error or f'HTTP {status}'}; try {row.attempts + 2} of "
                  f"{self.cfg.retries + 1} in {wait:.2f}s", row=row, status=status)
        return True

    def _handle_robots(self, origin: str, got: Fetched) -> None:
        self.robots_inflight.discard(origin)
        status = got.status or 0
        transient = got.retryable or status == 429 or status >= 500
        tries = self.robots_tries.get(origin, 0)
        if transient and tries < self.cfg.retries:
            self.robots_tries[origin] = tries + 1
            state = self.hosts[host_of(origin)]
            state.next_time = max(state.next_time, time.monotonic() + self.cfg.backoff * 2 ** tries)
            self.stats["retries"] += 1
            self._log("note", got.url, "retry", f"robots.txt: {got.error or f'HTTP {status}'}", status=got.status)
            return
        robots = Robots.from_answer(status, got.body or b"", got.error or "")
        self.frontier.save_robots(origin, robots.status, robots.body, robots.detail)
        self._use_robots(origin, robots)
        delay = robots.delay(self.cfg.user_agent)
        self._log("note", got.url, "robots", f"HTTP {status or got.error}"
                  + (f"; asks {delay:g}s between requests" if delay else "")
                  + ("; nothing may be fetched" if robots.unreachable else ""), status=got.status)

    def _redirect(self, row: Row, got: Fetched) -> None:
        location = got.header("location") or ""
        target = canonicalize(location, base=row.url, drop_params=self._drop)
        detail = f"HTTP {got.status} to {target if isinstance(target, str) else location}"
        if isinstance(target, str):
            chain, at = [row.url], row.via
            while at is not None and len(chain) <= self.cfg.max_redirects + 1:
                chain.append(at)
                at = self.frontier.via_of(at)
            if target in chain:
                return self._not_stored(row, got, "redirect-loop", f"{detail}, which redirected here "
                                  f"({' <- '.join([target] + chain[:chain.index(target)])})")
            if row.hops + 1 > self.cfg.max_redirects:
                return self._not_stored(row, got, "too-many-redirects", f"{detail}: redirect {row.hops + 1} in a row, "
                                  f"more than --max-redirects {self.cfg.max_redirects}")
        self._not_stored(row, got, "redirect", detail, outcome="redirected", location=target if isinstance(target, str)
                   else location)
        self._discover(location, row.url, row.depth, row.parent, kind=row.kind, via=row.url, hops=row.hops + 1,
                       exempt=row.parent is None)

    def _sitemap(self, row: Row, got: Fetched) -> None:
        sm = parse_sitemap(got.body or b"", self.cfg.max_sitemap_bytes)
        self.frontier.finish(row.url, row.host, None, got.status)
        self._log("note", row.url, "sitemap", f"{len(sm.pages)} pages, {len(sm.sitemaps)} sitemaps"
                  + (f", {sm.dropped} entries past 50,000 dropped" if sm.dropped else ""), row=row)
        if sm.error:
            self._log("note", row.url, "sitemap-error", sm.error, row=row)
        for url in sm.sitemaps:  # no page: --include / --exclude do not apply
            self._discover(url, row.url, 0, row.url, kind="sitemap", exempt=True)
        for url in sm.pages:
            self._discover(url, row.url, 0, row.url, kind="page")

    def _page(self, row: Row, got: Fetched) -> None:
        body = got.body or b""
        sha = hashlib.sha256(body).hexdigest()
        nofollow, noindex = robots_directives(got.header("x-robots-tag"))
        page = parse_page(body, got.charset) if got.content_type in HTML_TYPES else None
        if page is not None:
            nofollow, noindex = nofollow or page.nofollow, noindex or page.noindex
        extra: dict[str, Any] = {"sha256": sha, "charset": page.charset if page else got.charset}
        owner = self.frontier.owner(sha)
        if owner is not None and owner != row.url:
            return self._not_stored(row, got, "duplicate-content", f"same body as {owner}", **extra)
        if page is not None and page.note is not None:
            self._log("note", row.url, page.note[0], page.note[1], row=row, status=got.status)
        if noindex:
            self._not_stored(row, got, "meta-noindex", "noindex in " + ("X-Robots-Tag" if robots_directives(
                got.header("x-robots-tag"))[1] else "<meta name=robots>"), **extra)
        else:
            status_line = f"{got.status} {got.reason_phrase}".strip()
            warc_file, offset, length = self.out.write_page(
                row.url, got.started, got.request_line, got.request_headers, got.http_version, status_line,
                got.headers, body, got.ip)
            self.frontier.add_hash(sha, row.url)
            self.frontier.finish(row.url, row.host, None, got.status)
            self.out.index(self._index_row(row, got, reason=None, warc_file=warc_file, warc_offset=offset,
                                           warc_length=length, charset_note=page.note[0] if page and page.note
                                           else None, **extra))
            self.stored += 1
            if self.cfg.max_pages is not None and self.stored >= self.cfg.max_pages:
                self.stopping = True
        if page is not None and not nofollow:
            base = urljoin(row.url, page.base) if page.base else row.url
            origin = origin_of(base)
            for href in page.links:
                # a link already met from the same origin (or the same page for a relative one) leads to a URL
                # the frontier has: skip canonicalising it again
                key = href if href.startswith(("http://", "https://")) else \
                    origin + href if href.startswith("/") and not href.startswith("//") else base + " " + href
                if key in self._links_seen:
                    continue
                if len(self._links_seen) >= 500_000:
                    self._links_seen.clear()
                self._links_seen.add(key)
                self._discover(href, base, row.depth + 1, row.url)

    def _not_stored(self, row: Row, got: Fetched, reason: str, detail: str, outcome: str = "failed",
              **extra: Any) -> None:
        """``row`` was requested and is not stored: index line and log line with ``reason``."""
        self.frontier.finish(row.url, row.host, reason, got.status, state=DONE)
        if row.kind == "page":
            self.out.index(self._index_row(row, got, reason=reason, detail=detail, **extra))
        self._log(outcome, row.url, reason, detail, row=row, status=got.status)

    def _index_row(self, row: Row, got: Fetched, **fields: Any) -> dict[str, Any]:
        return {"url": row.url, "status": got.status, "content_type": got.content_type or None,
                "charset": got.charset, "length": got.length, "fetch_time": warc_date(got.started),
                "seconds": round(got.seconds, 4), "depth": row.depth, "parent": row.parent, **fields}

    # ---- discovery ------------------------------------------------------------------------------
    def _scope(self, url: str, depth: int, exempt: bool) -> tuple[str, str] | None:
        """Why ``url`` (canonical) is out of scope, or None."""
        if len(url) > self.cfg.max_url_length:
            return "url-too-long", f"{len(url)} characters > {self.cfg.max_url_length}"
        host = host_of(url)
        if not in_domains(host, self.domains):
            return "off-domain", f"{host} is not in {', '.join(self.domains)}"
        if exempt:
            return None
        if self.cfg.max_depth is not None and depth > self.cfg.max_depth:
            return "depth", f"depth {depth} > --max-depth {self.cfg.max_depth}"
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        if any(p.search(target) for p in self._exclude):
            return "path-excluded", "matches " + next(p.pattern for p in self._exclude if p.search(target))
        if self._include and not any(p.search(target) for p in self._include):
            return "path-excluded", "matches no --include pattern"
        return None

    def _discover(self, raw: str, base: str | None, depth: int, parent: str | None, kind: str = "page",
                  via: str | None = None, hops: int = 0, exempt: bool = False) -> None:
        c = canonicalize(raw, base=base, drop_params=self._drop)
        if isinstance(c, NotCrawlable):
            url, why = (urljoin(base, raw) if base else raw), (c.reason, c.detail)
            host = ""
        else:
            url, why, host = c, self._scope(c, depth, exempt), host_of(c)
        if self.frontier.add(url, kind, host, depth, parent, via, hops, why[0] if why else None) and why:
            self._log("skipped", url, why[0], why[1], depth=depth, parent=parent)

    def _log(self, outcome: str, url: str, reason: str, detail: str, row: Row | None = None,
             **fields: Any) -> None:
        line = {"time": warc_date(time.time()), "url": url, "outcome": outcome, "reason": reason, "detail": detail}
        if row is not None:
            fields = {"depth": row.depth, "parent": row.parent, **fields}
        line.update({k: v for k, v in fields.items() if v is not None})
        self.out.log(line)

    # ---- the end ---------------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        """Figures of the crawl so far (every run of it together)."""
        return {"pages_stored": self.stored, "requests": self.stats["requests"], "bytes_read": self.stats["bytes"],
                "retries": self.stats["retries"], "refetched_after_stop": self.stats["refetched"],
                "seconds": round(self.stats["seconds"], 3), "queue_left": self.frontier.queue_size(),
                "not_stored": self.frontier.reasons(), "warc_files": self.out.warc_files(),
                "stopped_at_max_pages": self.stopping and self.cfg.max_pages is not None}
