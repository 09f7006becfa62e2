"""Executors schedule shard work; operator code never depends on which one runs it."""

from gristmill.executors.base import EXECUTORS, Executor, get_executor
from gristmill.executors.local import LocalExecutor

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "get_executor"]
