"""Report section for score-then-decide steps: each score's distribution, and what other thresholds would keep.

A step that scores rows (a :class:`~gristmill.ops.base.Filter`) has
``score_columns`` and ``rules`` in ``stats.json``, and ``scores/<step>.parquet`` holds
its score columns and ``_kept`` for every row it saw. For each such step the section
shows a histogram per score column with its rules' thresholds marked, and per rule (per
bound, when a rule has a lower and an upper one) a table of alternative thresholds: the
current one and the 1st, 5th, 10th, 25th, 50th, 75th, 90th, 95th and 99th percentiles of
the observed scores. For each, the rows that would pass this rule alone, and the rows
that would pass all of the step's rules with only this one changed. Rules pass a null
score, as :class:`~gristmill.ops.scoring.Rule` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.pipeline.run_reader import RunReader
from gristmill.report import charts
from gristmill.report.html import esc, none, num, table

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
BINS = 30
KEPT = "_kept"


@dataclass(frozen=True)
class Bound:
    """One side of a rule: scores must be ``>= value`` (``side == "min"``) or ``<= value``."""

    rule: str
    column: str
    side: str
    value: float
    zero_passes: bool = False

    @property
    def label(self) -> str:
        return f"{self.rule} {'≥' if self.side == 'min' else '≤'} {fmt(self.value)}"

    def passes(self, values: np.ndarray, value: float | None = None) -> np.ndarray:
        """Which rows pass with threshold ``value`` (default: the current one); nulls (NaN) pass."""
        t = self.value if value is None else value
        with np.errstate(invalid="ignore"):
            ok = values >= t if self.side == "min" else values <= t
        ok |= np.isnan(values)
        if self.zero_passes:
            ok |= values == 0
        return ok


def fmt(x: float) -> str:
    """A threshold for display: integers plainly, other numbers to 4 significant digits."""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.4g}"


def bounds(rules: Sequence[dict[str, Any]]) -> list[Bound]:
    """The bounds of the rules recorded in ``stats.json``, in rule order (min before max)."""
    out = []
    for r in rules:
        if not isinstance(r, dict) or not r.get("column"):
            continue
        for side in ("min", "max"):
            v = r.get(side)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.append(Bound(str(r.get("name", r["column"])), str(r["column"]), side, float(v),
                                 bool(r.get("zero_passes", False))))
    return out


def as_float(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric (or boolean) column as float64 with NaN for nulls; other types give all-NaN."""
    t = column.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return np.full(len(column), np.nan)
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


@dataclass
class WhatIf:
    """One row of a threshold table."""

    threshold: float
    source: str
    pass_rule: int
    pass_all: int


def what_if(bound: Bound, values: dict[str, np.ndarray], others: Sequence[Bound],
            percentiles: Sequence[int] = PERCENTILES) -> list[WhatIf]:
    """Rows passing ``bound`` alone, and all bounds, at the current and at percentile thresholds."""
    v = values[bound.column]
    rest = np.ones(len(v), bool)
    for o in others:
        if o is not bound:
            rest &= o.passes(values[o.column])
    candidates: dict[float, list[str]] = {bound.value: ["current"]}
    finite = v[~np.isnan(v)]
    if finite.size:
        for q, t in zip(percentiles, np.percentile(finite, percentiles, method="nearest")):
            candidates.setdefault(float(t), []).append(f"p{q}")
    rows = []
    for t in sorted(candidates):
        ok = bound.passes(v, t)
        rows.append(WhatIf(t, ", ".join(candidates[t]), int(ok.sum()), int((ok & rest).sum())))
    return rows


def score_steps(run: RunReader) -> list[dict[str, Any]]:
    """Steps of the run that recorded score columns and rules."""
    return [s for s in run.steps if s.get("score_columns") and isinstance(s.get("rules"), list)]


def read_scores(path: Path, columns: Sequence[str]) -> tuple[dict[str, np.ndarray], int, int | None]:
    """Score columns as float arrays, the number of rows, and how many were kept (if recorded)."""
    names = pq.read_schema(path).names
    have = [c for c in dict.fromkeys([*columns, KEPT]) if c in names]
    t = pq.read_table(path, columns=have)
    values = {c: as_float(t.column(c)) if c in have else np.full(t.num_rows, np.nan) for c in columns}
    kept = int(np.count_nonzero(t.column(KEPT).to_numpy(zero_copy_only=False))) if KEPT in have else None
    return values, t.num_rows, kept


def render(run: RunReader) -> str:
    """The section body: one part per scoring step."""
    steps = score_steps(run)
    if not steps:
        return none("none: no step wrote scores")
    parts = ["<p>Distributions of each step's scores over every row it saw (kept and dropped), its "
             "thresholds marked, and how many rows other thresholds would keep: the current threshold and "
             "percentiles of the observed scores, for the rule alone and with the step's other rules.</p>"]
    for step in steps:
        parts.append(_step(run, step))
    return "".join(parts)


def _step(run: RunReader, step: dict[str, Any]) -> str:
    label = str(step.get("step"))
    head = f'<h3 id="scores-{esc(label)}">{esc(label)}</h3>'
    columns = [str(c) for c in step["score_columns"]]
    path = run.scores_file(label)
    if not path.is_file():
        return head + none(f"scores/{label}.parquet is missing")
    rules = bounds(step["rules"])
    values, n, kept = read_scores(path, list(dict.fromkeys(columns + [b.column for b in rules])))
    note = "" if step.get("drops", True) else " The step only annotated (drop: false); nothing was dropped."
    kept_text = f", {num(kept)} kept" if kept is not None else ""
    parts = [head, f"<p>{num(n)} rows scored{kept_text}.{esc(note)}</p>"]
    parts.append(table(["score", "rows", "null", "min", "p50", "mean", "max"],
                       [_summary(c, values[c]) for c in columns]))
    for c in columns:
        v = values[c]
        finite = v[~np.isnan(v)]
        if finite.size == 0:
            continue
        marks = {b.label: b.value for b in rules if b.column == c}
        parts.append(charts.histogram(finite, bins=BINS, title=c, xlabel=c, thresholds=marks))
    for b in rules:
        if b.column not in values:
            continue
        rows = what_if(b, values, rules)
        parts.append(f"<h4>{esc(b.label)}</h4>")
        parts.append(table(
            ["threshold", "from", "pass this rule", "share", "pass all rules", "share"],
            [(fmt(r.threshold), r.source, r.pass_rule, _share(r.pass_rule, n), r.pass_all, _share(r.pass_all, n))
             for r in rows]))
    return "".join(parts)


def _summary(column: str, v: np.ndarray) -> tuple[Any, ...]:
    finite = v[~np.isnan(v)]
    if finite.size == 0:
        return (column, len(v), len(v), "—", "—", "—", "—")
    return (column, len(v), len(v) - finite.size, fmt(finite.min()), fmt(float(np.median(finite))),
            fmt(float(finite.mean())), fmt(finite.max()))


def _share(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "—"
