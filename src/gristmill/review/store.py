"""The review decisions of a run: ``RUN_DIR/review/decisions.sqlite``, append-only, safe with several reviewers.

One SQLite database in WAL mode with ``synchronous=FULL``: a decision is on disk when the request that
made it returns, so killing the server (SIGKILL included) loses nothing that was acknowledged, and
several servers or reviewers can write at once (each write is one ``BEGIN IMMEDIATE`` transaction;
readers never block writers). Tables:

* ``decisions``: one row per action (``accept``, ``reject``, ``edit``, ``label``, ``skip``,
  ``send_back``) with the row's key and content hash (``hash_after`` when the action changed the
  content), where the row was (``output``, a rejected step's label, ``quarantine``), the queue, the
  reviewer, the time (UTC), the reason or note, the fields before and after and their diff, and the bulk
  action it belonged to. Triggers refuse ``UPDATE`` and ``DELETE``: a decision is never changed, a later
  one supersedes it (:mod:`gristmill.review.state`).
* ``snapshots``: the rows decided outside the output (dropped or quarantined), as they were shown, so
  ``review.apply`` can restore a row a filter dropped without the old run's files. Insert-only.
* ``sample``: the acceptance sample of kept rows, drawn once (ranked by a seeded hash of the row key) and
  kept, so the error-rate estimate stays the one of the sample that was drawn. Insert-only.
* ``settings``: the review's settings (reviewers per item, blind, sample size, seed, margin), changed by
  ``gristmill review`` options.

A file that is not such a database, or fails SQLite's ``quick_check``, raises :class:`ReviewStoreError`
with the path and what to do; it is never rewritten, truncated or deleted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["ACTIONS", "DECISIONS_FILE", "DEFAULT_SETTINGS", "FINAL", "REVIEW_DIR", "Decision", "ReviewStoreError",
           "Store", "decisions_path", "now"]

REVIEW_DIR = "review"
DECISIONS_FILE = "decisions.sqlite"
ACTIONS = ("accept", "reject", "edit", "label", "skip", "send_back")
FINAL = frozenset({"accept", "reject", "edit", "label"})  # the actions that decide a row; skip and send_back do not
SCHEMA_VERSION = "1"

DEFAULT_SETTINGS: dict[str, Any] = {"per_item": 1, "blind": False, "sample_size": 100, "seed": 0, "margin": 0.05}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    row_key TEXT NOT NULL, hash TEXT NOT NULL, hash_after TEXT, where_ TEXT NOT NULL, queue TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ({", ".join(f"'{a}'" for a in ACTIONS)})),
    reason TEXT, before TEXT, after TEXT, diff TEXT, bulk TEXT, time TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_row ON decisions (row_key, seq);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
CREATE TABLE IF NOT EXISTS snapshots (row_key TEXT NOT NULL, hash TEXT NOT NULL, row TEXT NOT NULL,
    PRIMARY KEY (row_key, hash));
CREATE TABLE IF NOT EXISTS sample (row_key TEXT PRIMARY KEY, hash TEXT NOT NULL, rank INTEGER NOT NULL,
    frame INTEGER NOT NULL, drawn TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = ("seq", "row_key", "hash", "hash_after", "where_", "queue", "reviewer", "action", "reason", "before",
            "after", "diff", "bulk", "time")


class ReviewStoreError(RuntimeError):
    """The decisions file cannot be used (corrupt, not a decisions database, unwritable); it was left untouched."""


def now() -> str:
    """The current UTC time as ISO 8601 with microseconds (decisions sort by ``seq``; the time is for people)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def decisions_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/review/decisions.sqlite``."""
    return Path(run_dir) / REVIEW_DIR / DECISIONS_FILE


@dataclass(frozen=True)
class Decision:
    """One reviewer action on one row (a row of ``decisions``); ``seq`` 0 and ``time`` empty until stored."""

    key: str
    hash: str
    action: str
    reviewer: str
    queue: str = ""
    where: str = "output"
    hash_after: str | None = None
    reason: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    diff: str | None = None
    bulk: str | None = None
    seq: int = 0
    time: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def final(self) -> bool:
        """Whether the action decides the row (accept, reject, edit, label)."""
        return self.action in FINAL

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for the page and the figures."""
        return {"seq": self.seq, "key": self.key, "hash": self.hash, "hash_after": self.hash_after,
                "where": self.where, "queue": self.queue, "reviewer": self.reviewer, "action": self.action,
                "reason": self.reason, "before": self.before, "after": self.after, "diff": self.diff,
                "bulk": self.bulk, "time": self.time}


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _decision(row: Sequence[Any]) -> Decision:
    seq, key, h, after_h, where, queue, reviewer, action, reason, before, after, diff, bulk, time = row
    return Decision(key=key, hash=h, action=action, reviewer=reviewer, queue=queue, where=where, hash_after=after_h,
                    reason=reason, before=_loads(before), after=_loads(after), diff=diff, bulk=bulk, seq=seq,
                    time=time)


class Store:
    """The decisions database of one run (see the module doc). Each method opens its own connection, so one
    ``Store`` serves many threads; :meth:`check` runs once, when the store is made."""

    def __init__(self, path: str | Path, create: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not self.path.exists():
            if not create:
                raise ReviewStoreError(f"{self.path}: no decisions file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReviewStoreError(f"{self.path.parent}: cannot create the review directory ({exc})") from None
        elif not self.path.is_file():
            raise ReviewStoreError(f"{self.path}: not a file")
        self.check(create)

    # ---- connections --------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection with the store's pragmas (busy timeout, ``synchronous=FULL``), closed afterwards."""
        if self.readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            if not self.readonly:
                conn.execute("PRAGMA synchronous = FULL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on an exception)."""
        if self.readonly:
            raise ReviewStoreError(f"{self.path}: opened read-only")
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def check(self, create: bool = False) -> None:
        """Refuse a file that is not a healthy decisions database; create the tables in a new one."""
        hint = ("it was left as it is: move it away to start a new review, or restore a copy "
                "(every decision is in this one file)")
        try:
            with self.connect() as conn:
                ok = conn.execute("PRAGMA quick_check").fetchall()
                if [r[0] for r in ok] != ["ok"]:
                    detail = "; ".join(str(r[0]) for r in ok[:3])
                    raise ReviewStoreError(f"{self.path}: the decisions file is corrupt ({detail}); {hint}")
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not tables and create and not self.readonly:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.executescript(_SCHEMA)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('created', ?)",
                                 (SCHEMA_VERSION, now()))
                    return
                if "decisions" not in tables or "meta" not in tables:
                    raise ReviewStoreError(f"{self.path}: not a gristmill decisions file (no decisions table); {hint}")
                cols = [r[1] for r in conn.execute("PRAGMA table_info(decisions)")]
                if tuple(cols) != _COLUMNS:
                    raise ReviewStoreError(f"{self.path}: the decisions table has unexpected columns; {hint}")
                if not self.readonly:
                    conn.executescript(_SCHEMA)  # tables of a newer minor version, if any are missing
        except sqlite3.DatabaseError as exc:
            raise ReviewStoreError(f"{self.path}: the decisions file cannot be read as SQLite ({exc}); {hint}") from None

    # ---- decisions ------------------------------------------------------------------------------
    def append(self, decisions: Iterable[Decision], snapshots: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
               ) -> list[Decision]:
        """Store ``decisions`` (and the row ``snapshots`` by ``(key, hash)``) in one transaction; return them with
        their ``seq`` and ``time``."""
        stored: list[Decision] = []
        time = now()
        with self.write() as conn:
            for (key, h), row in (snapshots or {}).items():
                conn.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (key, h, _dumps(row)))
            for d in decisions:
                if d.action not in ACTIONS:
                    raise ValueError(f"unknown review action {d.action!r}; one of {', '.join(ACTIONS)}")
                cur = conn.execute(
                    "INSERT INTO decisions (row_key, hash, hash_after, where_, queue, reviewer, action, reason, before, "
                    "after, diff, bulk, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.key, d.hash, d.hash_after, d.where, d.queue, d.reviewer, d.action, d.reason, _dumps(d.before),
                     _dumps(d.after), d.diff, d.bulk, time))
                stored.append(Decision(**{**d.__dict__, "seq": int(cur.lastrowid or 0), "time": time}))
        return stored

    def decisions(self, keys: Iterable[str] | None = None, since: int = 0) -> list[Decision]:
        """Every decision (of ``keys`` only, when given; after ``seq`` ``since``), in ``seq`` order."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE seq > ?"
        with self.connect() as conn:
            if keys is None:
                return [_decision(r) for r in conn.execute(sql + " ORDER BY seq", (since,))]
            out: list[Decision] = []
            wanted = list(dict.fromkeys(keys))
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                out += [_decision(r) for r in conn.execute(
                    sql + f" AND row_key IN ({', '.join('?' * len(chunk))})", (since, *chunk))]
            return sorted(out, key=lambda d: d.seq)

    def last_seq(self) -> int:
        """The ``seq`` of the newest decision (0: none)."""
        with self.connect() as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM decisions").fetchone()[0])

    def snapshots(self, pairs: Iterable[tuple[str, str]] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """Stored rows by ``(key, hash)`` (all of them, or those of ``pairs``)."""
        with self.connect() as conn:
            rows = conn.execute("SELECT row_key, hash, row FROM snapshots").fetchall()
        wanted = None if pairs is None else set(pairs)
        return {(k, h): json.loads(r) for k, h, r in rows if wanted is None or (k, h) in wanted}

    # ---- the acceptance sample ----------------------------------------------------------------
    def sample(self) -> list[tuple[str, str, int, int]]:
        """The acceptance sample as ``(key, hash, rank, frame)`` by rank (``frame``: kept rows when it was drawn)."""
        with self.connect() as conn:
            return [tuple(r) for r in conn.execute("SELECT row_key, hash, rank, frame FROM sample ORDER BY rank")]

    def add_sample(self, rows: Sequence[tuple[str, str, int]], frame: int) -> None:
        """Add ``(key, hash, rank)`` rows to the sample (rows already in it are kept as they were)."""
        time = now()
        with self.write() as conn:
            conn.executemany("INSERT OR IGNORE INTO sample VALUES (?, ?, ?, ?, ?)",
                             [(k, h, r, frame, time) for k, h, r in rows])

    # ---- settings -----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The review's settings: :data:`DEFAULT_SETTINGS` updated by the stored ones."""
        with self.connect() as conn:
            stored = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM settings")}
        return {**DEFAULT_SETTINGS, **stored}

    def set_settings(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``values`` (unknown keys refused) and return the settings."""
        unknown = set(values) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown review settings: {', '.join(sorted(unknown))}")
        with self.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO settings VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in values.items()])
        return self.settings()
