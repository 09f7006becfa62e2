"""What every executor offers the runner, and the registry of executors by recipe name.

The runner plans (fingerprints, segments, which shards are done) and hands the work to an
executor as plain functions over file-named tasks (:mod:`gristmill.pipeline.worker`); the
executor only schedules them. An executor is a context manager (start and stop its
workers) with ``submit(fn, *args) -> Future``; ``map`` is built on it. A recipe picks one
with ``executor: {type: <name>}``; a new executor (e.g. Ray) registers in
:data:`EXECUTORS` and needs nothing else from the runner.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, ClassVar

EXECUTORS: dict[str, str] = {
    "local": "gristmill.executors.local:LocalExecutor",
}


class Executor(ABC):
    """Schedules shard tasks. Subclasses set ``name`` and implement ``submit``, ``__enter__``, ``__exit__``."""

    name: ClassVar[str] = ""

    def __init__(self, workers: int = 2) -> None:
        self.workers = max(1, workers)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Schedule ``fn(*args)``; its result or exception arrives through the future."""

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> list[Any]:
        """``[fn(t) for t in tasks]`` run by this executor, in the order of ``tasks``."""
        futures = [self.submit(fn, t) for t in tasks]
        return [f.result() for f in futures]


def names() -> list[str]:
    return sorted(EXECUTORS)


def get_executor(name: str) -> type[Executor]:
    """The executor class registered under ``name``; raises ``KeyError`` naming the known ones."""
    target = EXECUTORS.get(name)
    if target is None:
        raise KeyError(f"unknown executor {name!r}; known: {', '.join(names())}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
