"""The review queues indexed into SQLite once: ``RUN_DIR/review/index.sqlite``, a cache of the run and the decisions.

:meth:`ReviewIndex.open` builds the index when it is missing, unreadable or stale (its fingerprint:
``stats.json``, the quarantine file, the margin, the acceptance sample) into a temporary file renamed
into place, so a half-built index is never used. It holds:

* ``rows``: each queued row once (key, where it is, content hash, display text, every column as JSON),
  with a full-text index (SQLite FTS5) over the display text;
* ``items``: the row's place in each queue (score, rule, note, extra data, default order), indexed by
  queue and order and by queue and score, so a page is an index range scan however long the queue;
* ``state`` and ``mine``: the decisions resolved per row (:mod:`gristmill.review.state`) and per reviewer,
  brought up to date by :meth:`ReviewIndex.sync` from the decisions with a ``seq`` above the last one
  it saw (one transaction, so servers sharing the index never write a state older than what they read).

The index holds nothing that is not in the run or the decisions file: deleting it loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gristmill.pipeline.run_reader import RunReader
from gristmill.review.queues import QueueRow, Queues, build_queues
from gristmill.review.state import resolve
from gristmill.review.store import REVIEW_DIR, Store

__all__ = ["INDEX_FILE", "ReviewIndex"]

INDEX_FILE = "index.sqlite"
INDEX_VERSION = "2"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rows (rid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, where_ TEXT NOT NULL, hash TEXT NOT NULL,
    source TEXT, text TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE items (iid INTEGER PRIMARY KEY, queue TEXT NOT NULL, rid INTEGER NOT NULL, score REAL, rule TEXT,
    note TEXT, extra TEXT, ord REAL NOT NULL);
CREATE VIRTUAL TABLE rows_fts USING fts5 (text, content='rows', content_rowid='rid');
CREATE TABLE state (rid INTEGER PRIMARY KEY, n_final INTEGER NOT NULL, outcome TEXT, sent_back TEXT,
    last_seq INTEGER NOT NULL, summary TEXT NOT NULL);
CREATE TABLE mine (rid INTEGER NOT NULL, reviewer TEXT NOT NULL, action TEXT, skipped INTEGER NOT NULL,
    PRIMARY KEY (rid, reviewer)) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX items_queue_ord ON items (queue, ord, iid);
CREATE INDEX items_queue_score ON items (queue, score, iid);
CREATE INDEX items_rid ON items (rid);
INSERT INTO rows_fts (rows_fts) VALUES ('rebuild');
"""


def _fingerprint(run: RunReader, settings: dict[str, Any], sample: list[str]) -> str:
    h = hashlib.sha256(INDEX_VERSION.encode())
    stats = run.run_dir / "stats.json"
    h.update(stats.read_bytes() if stats.is_file() else b"")
    quarantine = run.run_dir / "quarantine.jsonl"
    if quarantine.is_file():
        st = quarantine.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(json.dumps([settings.get("margin"), sample]).encode())
    return h.hexdigest()[:24]


class ReviewIndex:
    """The queue index of one run directory, over its decisions :class:`~gristmill.review.store.Store`."""

    def __init__(self, run_dir: str | Path, store: Store) -> None:
        self.run = RunReader(run_dir)
        self.store = store
        self.path = self.run.run_dir / REVIEW_DIR / INDEX_FILE
        self.built = False  # whether open() had to build it

    # ---- connections --------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the index (WAL, busy timeout), closed afterwards."""
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            yield conn
        finally:
            conn.close()

    def meta(self, key: str) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ---- building -----------------------------------------------------------------------------
    def open(self, rebuild: bool = False) -> ReviewIndex:
        """Build the index if it is missing, unreadable, stale or ``rebuild``; then :meth:`sync` it."""
        settings = self.store.settings()
        sample = [k for k, _, _, _ in self.store.sample()]
        wanted = _fingerprint(self.run, settings, sample)
        current = None
        if self.path.is_file() and not rebuild:
            try:
                current = self.meta("fingerprint")
            except sqlite3.DatabaseError:
                current = None
        if current != wanted or not sample and settings["sample_size"] > 0:  # (an empty output draws nothing)
            self.build(settings, sample)
            self.built = True
        self.sync()
        return self

    def build(self, settings: dict[str, Any], sample: list[str]) -> Queues:
        """Index the run's queues (drawing and storing the acceptance sample first when there is none)."""
        queues = build_queues(self.run, float(settings["margin"]), sample, draw=int(settings["sample_size"]),
                              seed=int(settings["seed"]))
        if not sample and queues.sample:
            self.store.add_sample([(k, queues.rows[k].hash, rank) for rank, k in enumerate(queues.sample)
                                   if k in queues.rows], queues.output_rows)
            sample = [k for k, _, _, _ in self.store.sample()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            rid = {}
            for i, row in enumerate(queues.rows.values(), 1):
                rid[row.key] = i
                conn.execute("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (i, row.key, row.where, row.hash, row.source, row.text,
                              json.dumps(row.fields, ensure_ascii=False, default=str)))
            conn.executemany("INSERT INTO items (queue, rid, score, rule, note, extra, ord) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(it.queue, rid[it.key], it.score, it.rule, it.note,
                               None if it.extra is None else json.dumps(it.extra, ensure_ascii=False, default=str),
                               it.order) for it in queues.items])
            meta = {"fingerprint": _fingerprint(self.run, settings, sample), "state_seq": "0",
                    "output_rows": str(queues.output_rows), "labels": json.dumps(queues.labels),
                    "tags": json.dumps(queues.tags), "run": self.run.name}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
            conn.execute("COMMIT")
            conn.executescript(_INDEXES)
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, self.path)
        return queues

    # ---- decisions -> state -------------------------------------------------------------------
    def sync(self) -> int:
        """Resolve the rows of every decision newer than the index's state; return how many rows changed."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                seen = int(conn.execute("SELECT value FROM meta WHERE key = 'state_seq'").fetchone()[0])
                last = self.store.last_seq()
                if last <= seen:
                    conn.execute("COMMIT")
                    return 0
                if last < seen:  # pragma: no cover - a decisions file replaced by an older copy
                    seen = 0
                keys = sorted({d.key for d in self.store.decisions(since=seen)})
                changed = self._resolve(conn, keys, self.store.settings())
                conn.execute("UPDATE meta SET value = ? WHERE key = 'state_seq'", (str(last),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return changed

    def _resolve(self, conn: sqlite3.Connection, keys: list[str], settings: dict[str, Any]) -> int:
        changed = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = {k: (rid, h) for rid, k, h in conn.execute(
                f"SELECT rid, key, hash FROM rows WHERE key IN ({', '.join('?' * len(chunk))})", chunk)}
            grouped: dict[str, list[Any]] = {}
            for d in self.store.decisions(keys=[k for k in chunk if k in rows]):
                grouped.setdefault(d.key, []).append(d)
            states, mine = [], []
            for key, decisions in grouped.items():
                rid, h = rows[key]
                st = resolve(key, decisions, h)
                states.append((rid, len(st.verdicts), st.outcome, None if st.sent_back is None else
                               json.dumps({"by": st.sent_back.reviewer, "note": st.sent_back.reason}),
                               st.last_seq, json.dumps(st.summary(), ensure_ascii=False)))
                mine += [(rid, r, st.verdicts[r].action if r in st.verdicts else None, int(r in st.skipped))
                         for r in set(st.verdicts) | st.skipped]
            rids = [s[0] for s in states]
            conn.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?, ?)", states)
            conn.execute(f"DELETE FROM mine WHERE rid IN ({', '.join('?' * len(rids))})", rids)
            conn.executemany("INSERT INTO mine VALUES (?, ?, ?, ?)", mine)
            changed += len(states)
        return changed

    # ---- rows ---------------------------------------------------------------------------------
    def row(self, key: str) -> QueueRow | None:
        """The indexed row of ``key``, or None."""
        with self.connect() as conn:
            r = conn.execute("SELECT key, where_, hash, text, fields, source FROM rows WHERE key = ?", (key,)).fetchone()
        return None if r is None else QueueRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5])

    def options(self) -> dict[str, Any]:
        """Label and NER tag values seen in the queued rows, and the kept rows' count."""
        return {"label_options": json.loads(self.meta("labels") or "[]"),
                "tag_options": json.loads(self.meta("tags") or "[]"), "output_rows": int(self.meta("output_rows") or 0)}
