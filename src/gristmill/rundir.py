"""Run directories for training, evaluation, experiments and data selection.

The pipeline has its own layout (:mod:`gristmill.pipeline.store`); everything else that
a user runs — ``gristmill train``, ``eval``, ``experiment``, ``select`` — writes here::

    <runs>/<name>/
        config.json      the resolved configuration (every default filled in)
        metrics.jsonl    one line per logged point: {"series", "step", <values>, "time"}
        results.json     final figures (merged by :meth:`RunDir.result`)
        report.json      the report's items in order: tables, curves, samples, text
        report.html      rendered from the files above (read here) by :func:`gristmill.report.rundir.render`
        report_title.txt the report's heading, when the command gave one
        ...              whatever the command adds (checkpoints/, model/, samples.jsonl)

Items added to the report are keyed by their title: adding an item with a title that
is already there replaces it, so a resumed run does not repeat itself.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["NotARunDirectory", "RunDir", "read_metrics"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All points of a ``metrics.jsonl``; a torn last line (killed run) is skipped."""
    points = []
    if not path.is_file():
        return points
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            points.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return points


MARKER = ".gristmill-run"


def _made_by_gristmill(path: Path) -> bool:
    """The marker, or (runs made before it) a ``config.json`` of gristmill's: a mapping with a ``kind``.
    A model's ``config.json`` has no ``kind``, so a model directory is never taken for a run."""
    if (path / MARKER).is_file():
        return True
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("kind"), str)


class NotARunDirectory(FileExistsError):
    """A directory that holds files gristmill did not write; it is never used as a run directory."""


class RunDir:
    """One run's directory. Create with :meth:`create`; call :meth:`finish` to write the report."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = Path(path)
        self.kind = kind

    @classmethod
    def create(cls, path: str | Path, kind: str, config: Mapping[str, Any], resume: bool = False) -> "RunDir":
        """Make (or, with ``resume``, reopen) the directory and save the resolved ``config``.

        Without ``resume`` an existing directory's metrics, results and report items are
        cleared (other files, e.g. checkpoints, are left for the caller to decide about).
        A non-empty directory without gristmill's marker (or, for older runs, a gristmill
        ``config.json``) was not made by gristmill: it raises :class:`NotARunDirectory` and
        nothing in it is touched.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise NotARunDirectory(f"{path}: is a file, not a run directory; choose another --out")
        if path.is_dir() and not _made_by_gristmill(path) and any(path.iterdir()):
            raise NotARunDirectory(f"{path}: exists, is not empty and was not made by gristmill; choose another "
                                   "--out (nothing was changed)")
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).touch()
        run = cls(path, kind)
        if not resume:
            for name in ("metrics.jsonl", "results.json", "report.json", "report.html"):
                (path / name).unlink(missing_ok=True)
        _write_json(path / "config.json", {"kind": kind, **dict(config)})
        return run

    # -- raw files ---------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return json.loads((self.path / "config.json").read_text(encoding="utf-8"))

    def log(self, series: str, step: float, **values: Any) -> None:
        """Append one point of ``series`` (e.g. ``train``, ``dev``) at ``step``."""
        point = {"series": series, "step": step, **values, "time": round(time.time(), 3)}
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(_jsonable(point), ensure_ascii=False) + "\n")

    def metrics(self, series: str | None = None) -> list[dict[str, Any]]:
        points = read_metrics(self.path / "metrics.jsonl")
        return [p for p in points if series is None or p.get("series") == series]

    def forget_after(self, step: float, series: Iterable[str] | None = None) -> None:
        """Drop the points logged after ``step`` (of ``series``; default every series) and any torn
        line: a run resumed from its checkpoint at ``step`` logs them again."""
        f = self.path / "metrics.jsonl"
        if not f.is_file():
            return
        only = set(series) if series is not None else None
        points = read_metrics(f)
        kept = [p for p in points
                if (only is not None and p.get("series") not in only) or float(p.get("step", 0)) <= step]
        tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in kept), encoding="utf-8")
        os.replace(tmp, f)

    def save_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as ``<run>/<name>`` atomically."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_json(target, obj)
        return target

    def results(self) -> dict[str, Any]:
        f = self.path / "results.json"
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}

    def result(self, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into ``results.json`` and return the whole mapping."""
        merged = {**self.results(), **values}
        _write_json(self.path / "results.json", merged)
        return merged

    # -- report items ------------------------------------------------------------------------
    def _items(self) -> list[dict[str, Any]]:
        f = self.path / "report.json"
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else []

    def report_title(self) -> str | None:
        """The heading a command gave the report (kept in ``report_title.txt``), or None."""
        f = self.path / "report_title.txt"
        return (f.read_text(encoding="utf-8").strip() or None) if f.is_file() else None

    def _add(self, item: dict[str, Any]) -> None:
        items = [i for i in self._items() if i.get("title") != item["title"]]
        items.append(item)
        _write_json(self.path / "report.json", items)

    def table(self, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], note: str = "") -> None:
        """A table in the report."""
        self._add({"type": "table", "title": title, "headers": list(headers),
                   "rows": [list(r) for r in rows], "note": note})

    def curve(self, title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
              xlabel: str = "", ylabel: str = "", note: str = "",
              bands: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]] | None = None,
              logy: bool = False) -> None:
        """Line curves ``name -> (xs, ys)``; ``bands`` adds shaded ``name -> (xs, lo, hi)`` intervals."""
        self._add({"type": "curve", "title": title, "xlabel": xlabel, "ylabel": ylabel, "note": note,
                   "series": {k: [list(x), list(y)] for k, (x, y) in series.items()},
                   "bands": {k: [list(x), list(lo), list(hi)] for k, (x, lo, hi) in (bands or {}).items()},
                   "logy": logy})

    def bars(self, title: str, labels: Sequence[str], values: Sequence[float], xlabel: str = "",
             note: str = "") -> None:
        """Horizontal bars (distributions over named categories)."""
        self._add({"type": "bars", "title": title, "labels": [str(x) for x in labels],
                   "values": list(values), "xlabel": xlabel, "note": note})

    def histogram(self, title: str, values: Sequence[float], xlabel: str = "", bins: int = 30,
                  note: str = "") -> None:
        """A histogram of ``values`` (e.g. lengths, scores)."""
        self._add({"type": "histogram", "title": title, "values": list(values), "xlabel": xlabel,
                   "bins": bins, "note": note})

    def samples(self, title: str, items: Iterable[tuple[str, str]], note: str = "") -> None:
        """Labelled text samples (generations, decoded outputs)."""
        self._add({"type": "samples", "title": title, "items": [list(i) for i in items], "note": note})

    def text(self, title: str, body: str) -> None:
        """A paragraph of plain text (shown preformatted)."""
        self._add({"type": "text", "title": title, "body": body})

    def finish(self, title: str | None = None) -> Path:
        """Render ``report.html`` from the run's files (a missing or unreadable one counts as empty);
        returns its path."""
        from gristmill.report.rundir import render

        if title:  # kept so that `gristmill report DIR` shows the same heading
            (self.path / "report_title.txt").write_text(title, encoding="utf-8")
        config = _read_json(self.path / "config.json", {})
        results = _read_json(self.path / "results.json", {})
        items = _read_json(self.path / "report.json", [])
        html = render(self.path, config=config if isinstance(config, dict) else {},
                      results=results if isinstance(results, dict) else {},
                      items=items if isinstance(items, list) else [], points=self.metrics(),
                      title=title or self.report_title())
        out = self.path / "report.html"
        tmp = out.with_name(f".report.{os.getpid()}.tmp")
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
        return out
