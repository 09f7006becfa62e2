"""Executors schedule shard work; operator code never depends on which one runs it."""

from gristmill.executors.local import LocalExecutor

__all__ = ["LocalExecutor"]
