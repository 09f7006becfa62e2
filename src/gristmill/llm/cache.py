"""A response cache in SQLite: a rerun sends only missing requests, a killed generation resumes.

The key is the sha256 of the backend name, the model identity, the prompt (canonical JSON)
and every decoding setting including the seed; the value is the completion as JSON.
Error completions are never stored, so a rerun retries them. The database runs in WAL
mode with a busy timeout, one connection per process and path, so several worker
processes can read and write the same file at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gristmill.llm.backends.base import BaseBackend, prompt_key
from gristmill.llm.types import Completion, Decoding, Prompt

_SCHEMA = "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)"
_CONNECTIONS: dict[tuple[int, str], sqlite3.Connection] = {}
_LOCK = threading.Lock()


def connect(path: str | Path) -> sqlite3.Connection:
    """This process's connection to the cache at ``path`` (created on first use)."""
    path = str(Path(path).resolve())
    key = (os.getpid(), path)
    with _LOCK:
        conn = _CONNECTIONS.get(key)
        if conn is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=60.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
            _CONNECTIONS[key] = conn
    return conn


def cache_key(backend: str, model: str, prompt: Prompt, decoding: Decoding) -> str:
    """The sha256 hex key of one request."""
    payload = json.dumps([backend, model, prompt_key(prompt), decoding.model_dump(mode="json")],
                         ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Get and put completions by key in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        """The cached completions among ``keys``."""
        found: dict[str, Completion] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(uniq), 500):
                chunk = uniq[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in self._conn.execute(
                        f"SELECT key, value FROM completions WHERE key IN ({marks})", chunk):
                    found[key] = Completion(**json.loads(value))
        return found

    def put(self, key: str, completion: Completion) -> None:
        """Store one completion (errors are ignored: they must be retried on the next run)."""
        if completion.finish_reason == "error":
            return
        value = json.dumps(dataclasses.replace(completion, cached=False).to_json(), ensure_ascii=False)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO completions (key, value, created) VALUES (?, ?, ?)",
                               (key, value, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0])


class CachedBackend(BaseBackend):
    """Wraps any backend: answers cached requests from SQLite and sends only the misses.

    Completions are stored one by one as the wrapped backend yields them, so a run killed
    half-way keeps what it had. Identical requests within one call are sent once.
    Cached answers come back with ``cached=True``; ``hits``/``misses`` count requests.
    """

    def __init__(self, backend: Any, path: str | Path) -> None:
        self.backend = backend
        self.name = backend.name
        self.model = backend.model
        self.identity = getattr(backend, "identity", backend.model)
        self.cache = ResponseCache(path)
        self.hits = 0
        self.misses = 0

    def check(self, decoding: Decoding) -> None:
        check = getattr(self.backend, "check", None)
        if check is not None:
            check(decoding)

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        self.check(decoding)
        keys = [cache_key(self.name, self.identity, p, decoding) for p in prompts]
        found = self.cache.get_many(keys)
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in found:
                self.hits += 1
                yield i, dataclasses.replace(found[key], cached=True)
            else:
                todo.setdefault(key, []).append(i)
        if not todo:
            return
        order = list(todo)
        self.misses += len(order)
        send = [prompts[todo[k][0]] for k in order]
        inner = getattr(self.backend, "stream", None)
        pairs = inner(send, decoding) if inner else enumerate(self.backend.generate(send, decoding))
        for j, completion in pairs:
            key = order[j]
            self.cache.put(key, completion)
            for i in todo[key]:
                yield i, completion

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
