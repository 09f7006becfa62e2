"""The local executor: a process pool over shards (or inline, with one worker)."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from gristmill.executors.base import Executor


def _die_with(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as ``parent_pid`` (the run) ends.

    A pool worker's parent is the forkserver, and its task pipe stays open while the worker
    itself holds the other end, so a SIGKILLed run would otherwise leave its workers (and
    through them the forkserver and the resource tracker) alive for ever. A thread waits on
    a pidfd of the run's process — woken by the kernel when it exits — and kills this one.
    """
    try:
        fd = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll instead
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while True:
                try:
                    os.kill(parent_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="gristmill-die-with-run", daemon=True).start()


class LocalExecutor(Executor):
    """Runs shard tasks on ``workers`` processes; ``workers=1`` runs them in this process.

    Processes are started with ``forkserver`` so a parent holding threads (progress bar,
    model runtimes) never forks a locked state into a worker. Workers end when the process
    that started them ends, however it ends (see :func:`_die_with`).
    """

    name = "local"

    def __init__(self, workers: int = 2) -> None:
        super().__init__(workers)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        if self.workers > 1:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=_die_with, initargs=(os.getpid(),))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._pool = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Schedule ``fn(*args)``; inline execution returns an already finished future."""
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut
