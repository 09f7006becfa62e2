"""Per-generation figures of a recursive-training experiment, aggregated over seeds.

A *cell* is one (condition, seed, generation) result: a dict with ``condition``, ``seed``,
``generation`` and the measured figures (see :mod:`gristmill.experiments.collapse`). These
functions turn cells into means with 95% t-intervals (:func:`gristmill.stats.t_interval`), report
tables and curves with bands. A figure measured for one seed only has a mean and no interval
(``lo`` / ``hi`` are ``None``); missing or non-finite values are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from gristmill import stats

__all__ = ["aggregate", "curve_items", "fmt_ci", "summarize", "write_tables"]


def aggregate(cells: Iterable[dict[str, Any]], metric: str) -> dict[str, dict[int, dict[str, Any]]]:
    """condition -> generation -> {"mean", "lo", "hi", "n", "values"} of ``metric`` over seeds
    (``metric`` may be dotted: ``length.p50``)."""
    vals: dict[str, dict[int, list[float | None]]] = {}
    for c in cells:
        v: Any = c
        for part in metric.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        vals.setdefault(c["condition"], {}).setdefault(c["generation"], []).append(v)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for cond, by_gen in vals.items():
        out[cond] = {}
        for g in sorted(by_gen):
            xs = [float(v) for v in by_gen[g] if v is not None and math.isfinite(float(v))]
            ci = stats.t_interval(xs) if xs else None
            m, lo, hi = (None, None, None) if ci is None else (ci.estimate, ci.lo, ci.hi)
            out[cond][g] = {"mean": m, "lo": lo, "hi": hi, "n": len(xs), "values": by_gen[g]}
    return out


def fmt_ci(a: dict[str, Any] | None, digits: int = 2) -> str:
    """``mean ± half-width`` of an :func:`aggregate` entry (just the mean with one seed; ``-`` when missing)."""
    if not a:
        return "-"
    return stats.format_interval(a["mean"], a["lo"] if a["n"] > 1 else None, a["hi"] if a["n"] > 1 else None, digits)


def curve_items(agg: dict[str, dict[int, dict[str, Any]]]) -> tuple[dict[str, tuple[list, list]], dict[str, tuple[list, list, list]]]:
    """Series and 95% bands of an :func:`aggregate` result, one line per condition."""
    series, bands = {}, {}
    for cond, by_gen in agg.items():
        gens = [g for g in sorted(by_gen) if by_gen[g]["mean"] is not None]
        series[cond] = (gens, [by_gen[g]["mean"] for g in gens])
        if any(by_gen[g]["n"] > 1 for g in gens):  # a one-seed generation has no interval: a band of width 0
            bands[cond] = (gens, [by_gen[g]["mean"] if by_gen[g]["lo"] is None else by_gen[g]["lo"] for g in gens],
                           [by_gen[g]["mean"] if by_gen[g]["hi"] is None else by_gen[g]["hi"] for g in gens])
    return series, bands


def summarize(cells: list[dict[str, Any]], metrics: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """JSON-ready per-condition, per-generation mean / 95% interval of each metric."""
    out: dict[str, Any] = {}
    for key, _label, _d in metrics:
        for cond, by_gen in aggregate(cells, key).items():
            for g, a in by_gen.items():
                out.setdefault(cond, {}).setdefault(str(g), {})[key] = {
                    "mean": a["mean"], "ci95": [a["lo"], a["hi"]], "n": a["n"], "values": a["values"]}
    return out


def write_tables(run: Any, cells: list[dict[str, Any]], metrics: Sequence[tuple[str, str, int]], note: str = "") -> None:
    """One per-generation table per condition (mean ± 95% half-width over seeds)."""
    aggs = {key: aggregate(cells, key) for key, _l, _d in metrics}
    conds = sorted({c["condition"] for c in cells}, key=lambda c: [x["condition"] for x in cells].index(c))
    for cond in conds:
        gens = sorted({c["generation"] for c in cells if c["condition"] == cond})
        rows = []
        for g in gens:
            n = aggs[metrics[0][0]][cond][g]["n"]
            rows.append([g, n] + [fmt_ci(aggs[k][cond].get(g), d) for k, _l, d in metrics])
        run.table(f"{cond}: per generation", ["generation", "seeds"] + [label for _k, label, _d in metrics], rows,
                  note=note)
