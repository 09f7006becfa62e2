"""Progress bars with rate and ETA (rich), or nothing when progress is off."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second with the task's unit (rows/s, MB/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "rows")
        if speed is None:
            return Text(f"- {unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {unit}/s" if speed >= 10 else f"{speed:.2f} {unit}/s",
                    style="progress.data.speed")


class NullProgress:
    """The subset of rich.Progress the pipeline uses, doing nothing."""

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def progress_bars(enabled: bool = True, console: Console | None = None) -> Iterator[Any]:
    """A rich Progress showing description, bar, done/total, rate and ETA."""
    if not enabled:
        yield NullProgress()
        return
    bars = Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), RateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console or Console(stderr=True), transient=False)
    with bars:
        yield bars
