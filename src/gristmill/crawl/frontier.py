"""The crawl frontier in SQLite (WAL): every URL the crawl has met, once, with its state.

Tables:

* ``urls``: one row per canonical URL (the primary key dedupes), in discovery order (``seq``):
  ``state`` queued / fetching / done / skipped, the ``reason`` it was not stored (NULL: stored),
  depth, the page that linked to it, the URL that redirected to it, retry attempts and the wall
  time before which it must not be retried;
* ``hashes``: sha256 of every stored body and the URL stored under it (duplicate content);
* ``robots``: each origin's robots.txt answer (kept 24 hours, as RFC 9309 allows), so a resumed
  crawl does not ask again;
* ``meta``: counters and the committed sizes of the output files (see :mod:`.warc_out`).

Writes happen inside :meth:`Frontier.transaction`; a commit is the point where a fetch counts as
done. A crawl killed between a response and its commit leaves the URL ``fetching``:
:meth:`Frontier.recover` puts such URLs back in the queue (they are fetched again, at most
``--concurrency`` of them) and the output files are cut back to their committed sizes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DONE", "FETCHING", "QUEUED", "SKIPPED", "Frontier", "Row"]

QUEUED, FETCHING, DONE, SKIPPED = 0, 1, 2, 3
ROBOTS_TTL = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    seq INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    depth INTEGER NOT NULL,
    parent TEXT,
    via TEXT,
    hops INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    reason TEXT,
    status INTEGER
);
CREATE INDEX IF NOT EXISTS urls_queue ON urls(host, state, seq);
CREATE TABLE IF NOT EXISTS hashes (sha256 TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS robots (origin TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL,
                                   detail TEXT NOT NULL, fetched REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    """A URL of the frontier."""

    url: str
    kind: str  # 'page' or 'sitemap'
    host: str
    depth: int
    parent: str | None
    via: str | None  # the URL whose redirect led here
    hops: int  # redirects in a row that led here
    attempts: int


class Frontier:
    """The SQLite frontier of one crawl (``path``: ``<out>/frontier.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._in_tx = False
        self.queued: dict[str, int] = dict(self.db.execute(
            "SELECT host, COUNT(*) FROM urls WHERE state IN (0, 1) GROUP BY host").fetchall())

    def close(self) -> None:
        if self._in_tx:
            self.db.execute("ROLLBACK")
            self._in_tx = False
        self.db.close()

    @contextmanager
    def transaction(self, meta: Callable[[], dict[str, Any]] | None = None) -> Iterator[None]:
        """One transaction; when the block changed anything, what ``meta()`` returns when it ends is saved in
        it before the commit (a block that changed nothing writes nothing)."""
        if self._in_tx:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        changes = self.db.total_changes
        try:
            yield
            if self.db.total_changes != changes:
                for key, value in (meta() if meta else {}).items():
                    self.set_meta(key, value)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self._in_tx = False

    # ---- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ---- urls ---------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Put back in the queue the URLs that were being fetched when the last crawl stopped; returns them."""
        urls = [r[0] for r in self.db.execute("SELECT url FROM urls WHERE state = ? ORDER BY seq", (FETCHING,))]
        if urls:
            with self.transaction():
                self.db.execute("UPDATE urls SET state = ? WHERE state = ?", (QUEUED, FETCHING))
        return urls

    def add(self, url: str, kind: str, host: str, depth: int, parent: str | None = None, via: str | None = None,
            hops: int = 0, reason: str | None = None) -> bool:
        """Insert ``url`` as queued, or as skipped with ``reason``; False when it is known already."""
        state = QUEUED if reason is None else SKIPPED
        cur = self.db.execute(
            "INSERT OR IGNORE INTO urls(url, kind, host, depth, parent, via, hops, state, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (url, kind, host, depth, parent, via, hops, state, reason))
        if cur.rowcount and state == QUEUED:
            self.queued[host] = self.queued.get(host, 0) + 1
        return bool(cur.rowcount)

    def known(self, url: str) -> bool:
        return self.db.execute("SELECT 1 FROM urls WHERE url = ?", (url,)).fetchone() is not None

    def via_of(self, url: str) -> str | None:
        """The URL whose redirect led to ``url`` (None: reached by a link or a seed)."""
        row = self.db.execute("SELECT via FROM urls WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def next_for(self, host: str, now: float) -> Row | None:
        """The oldest queued URL of ``host`` that may be fetched at wall time ``now``."""
        row = self.db.execute(
            "SELECT url, kind, host, depth, parent, via, hops, attempts FROM urls "
            "WHERE host = ? AND state = 0 AND not_before <= ? ORDER BY seq LIMIT 1", (host, now)).fetchone()
        return Row(*row) if row else None

    def wake_time(self, host: str) -> float | None:
        """The earliest wall time a queued URL of ``host`` waiting for a retry may be fetched."""
        row = self.db.execute("SELECT MIN(not_before) FROM urls WHERE host = ? AND state = 0", (host,)).fetchone()
        return row[0] if row and row[0] is not None else None

    def start(self, url: str) -> None:
        """Mark ``url`` as being fetched."""
        self.db.execute("UPDATE urls SET state = ? WHERE url = ?", (FETCHING, url))

    def retry(self, url: str, attempts: int, not_before: float) -> None:
        """Queue ``url`` again, not before wall time ``not_before``."""
        self.db.execute("UPDATE urls SET state = ?, attempts = ?, not_before = ? WHERE url = ?",
                        (QUEUED, attempts, not_before, url))

    def finish(self, url: str, host: str, reason: str | None, status: int | None = None,
               state: int = DONE) -> None:
        """``url`` is done (requested) or skipped (never requested): stored when ``reason`` is None."""
        self.db.execute("UPDATE urls SET state = ?, reason = ?, status = ? WHERE url = ?",
                        (state, reason, status, url))
        self.queued[host] = self.queued.get(host, 1) - 1
        if self.queued[host] <= 0:
            del self.queued[host]

    def queue_size(self) -> int:
        """URLs queued or being fetched."""
        return sum(self.queued.values())

    def stored(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM urls WHERE state = ? AND reason IS NULL "
                               "AND kind = 'page'", (DONE,)).fetchone()[0]

    def reasons(self) -> dict[str, int]:
        """``reason -> URLs`` over the URLs not stored (skipped or failed)."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM urls WHERE reason IS NOT NULL GROUP BY reason "
                                    "ORDER BY COUNT(*) DESC, reason").fetchall())

    # ---- content hashes -------------------------------------------------------------------------
    def owner(self, sha256: str) -> str | None:
        """The URL a body with this sha256 was stored under, if any."""
        row = self.db.execute("SELECT url FROM hashes WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def add_hash(self, sha256: str, url: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO hashes(sha256, url) VALUES (?, ?)", (sha256, url))

    # ---- robots.txt -----------------------------------------------------------------------------
    def robots(self, origin: str) -> tuple[int, str, str] | None:
        """The stored (status, body, detail) of ``origin``'s robots.txt, if fetched in the last 24 hours."""
        row = self.db.execute("SELECT status, body, detail, fetched FROM robots WHERE origin = ?",
                              (origin,)).fetchone()
        if row is None or time.time() - row[3] > ROBOTS_TTL:
            return None
        return row[0], row[1], row[2]

    def save_robots(self, origin: str, status: int, body: str, detail: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO robots(origin, status, body, detail, fetched) VALUES (?, ?, ?, ?, ?)",
                        (origin, status, body, detail, time.time()))
