"""Progress bars with rate and ETA (rich), or nothing when progress is off."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second with the task's unit (rows/s, MB/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "rows")
        if speed is None:
            return Text(f"- {unit}/s", style="progress.data.speed")
        for scale, suffix in ((1e6, "M"), (1e3, "k"), (1, "")):
            if speed >= scale * 10 or scale == 1:
                return Text(f"{speed / scale:,.{0 if speed >= 10 else 2}f}{suffix} {unit}/s",
                            style="progress.data.speed")
        raise AssertionError  # pragma: no cover


class DoneColumn(ProgressColumn):
    """Done / total in the task's unit, with one decimal for fractional units (MB)."""

    def render(self, task: Task) -> Text:
        fmt = ",.1f" if task.fields.get("unit") == "MB" else ",.0f"
        total = "?" if task.total is None else format(task.total, fmt)
        return Text(f"{format(task.completed, fmt)}/{total}", style="progress.download")


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
    bars = Progress(TextColumn("[bold]{task.description:<24.24}"), BarColumn(bar_width=14), DoneColumn(),
                    RateColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console or Console(stderr=True), transient=False)
    with bars:
        yield bars
