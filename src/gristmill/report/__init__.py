"""The HTML report of a run: a pure function of the run directory.

:func:`build_report` reads only files inside ``run_dir`` (``stats.json``, ``recipe.yaml``,
``rejected/*.parquet``, ``quarantine.jsonl``, ``data/``), all through
:class:`gristmill.pipeline.run_reader.RunReader`, and returns one self-contained
HTML page (inline CSS, charts as inline SVG, no external scripts, styles or fonts), so it
can be rebuilt at any time. :func:`write_report` saves it as ``run_dir/report.html``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gristmill.pipeline.run_reader import RunReader
from gristmill.report.html import esc, page
from gristmill.report.sections import SECTIONS, Section, header

REPORT_NAME = "report.html"


def build_report(run_dir: Path, sections: Sequence[Section] = SECTIONS) -> str:
    """The report of the run in ``run_dir`` as one HTML string. Raises if ``run_dir`` is not a directory.
    (It renders what is there: callers refuse an unfinished run with :attr:`RunReader.incomplete`.)"""
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    run = RunReader(run_dir)
    body = [
        f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>\n{s.render(run)}\n</section>' for s in sections
    ]
    return page(f"gristmill · {run.name}", header(run), [(s.id, s.title) for s in sections], body)


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` (atomically, via a temporary file) and return its path."""
    run_dir = Path(run_dir)
    target = run_dir / REPORT_NAME
    tmp = target.with_name(f".{REPORT_NAME}.{os.getpid()}.tmp")
    tmp.write_text(build_report(run_dir), encoding="utf-8")
    os.replace(tmp, target)
    return target


__all__ = ["SECTIONS", "Section", "build_report", "write_report"]
