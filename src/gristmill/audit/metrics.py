"""The audit's metrics, measured on a run directory, and the risk summaries of its columns.

The audit's own metrics (rows, quarantine, ``dropped.*``, license) are measured here; every other
metric is measured by the operator that contributes it (its ``audit_section()``; see
:mod:`gristmill.audit.metric`). Definitions: :func:`gristmill.audit.gates.catalogue`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.audit.catalogue import audit_prefixes, contributions, operator_metrics
from gristmill.audit.columns import (OUTPUT, WHERE, WORST, audit_output, audit_rejected, mask_secrets, number,
                                     quarantine_first, span_type, strings, worst_rows)
from gristmill.audit.gates import DROPPED, Gate, GateError, catalogue, metric_info
from gristmill.audit.metric import Measure
from gristmill.pipeline.run_reader import RunReader, rule_of
from gristmill.records import LICENSE, REASON, SOURCE

__all__ = ["Measure", "measure", "applicable_metrics", "summarize_column", "summaries", "sources_and_licenses",
           "span_type", "WORST"]


# ---- metrics -------------------------------------------------------------------------

def _dropped(run: RunReader, target: str) -> Measure:
    steps = run.steps
    by_op = [s for s in steps if s.get("op") == target]
    if by_op:
        value = sum(sum((s.get("dropped") or {}).values()) for s in by_op)
        rej = audit_rejected(run)
        mask = np.isin(np.asarray(strings(rej, WHERE), object), [s.get("step") for s in by_op])
        note = None
    else:
        value = sum(int((s.get("dropped") or {}).get(target, 0)) for s in steps)
        rej = audit_rejected(run)
        rules = [rule_of(r) for r in strings(rej, REASON)]
        mask = np.asarray([r == target for r in rules], bool)
        seen = any(target in (s.get("dropped") or {}) for s in steps)
        note = None if seen else f"no step dropped rows under rule {target!r} in this run"
    worst = worst_rows(rej, mask, np.zeros(rej.num_rows), detail=[REASON]) if rej.num_rows else []
    for w in worst:
        w["value"] = w.pop(REASON, None)
    return Measure(value, worst, note)


def measure(run: RunReader, name: str) -> Measure:
    """The value of metric ``name`` for the run (``GateError`` for an unknown name)."""
    metric_info(name)
    stats = run.stats
    if name == "rows.in":
        return Measure(int((stats.get("input") or {}).get("rows", 0)))
    if name == "rows.out":
        return Measure(int((stats.get("output") or {}).get("rows", audit_output(run).num_rows)))
    if name == "rows.dropped":
        return Measure(sum(sum((s.get("dropped") or {}).values()) for s in run.steps))
    if name == "quarantine.count":
        return Measure(int((stats.get("input") or {}).get("quarantined", 0)), quarantine_first(run, WORST))
    if name.startswith(DROPPED):
        return _dropped(run, name[len(DROPPED):])
    if name == "license":
        out = audit_output(run)
        values = strings(out, LICENSE)
        distinct = sorted(set(values), key=lambda v: (v is not None, str(v)))

        def offenders(gate: Gate) -> list[dict[str, Any]]:
            want = set(gate.value) if isinstance(gate.value, list) else {gate.value}
            bad = (lambda v: v not in want) if gate.op in ("in", "==") else (lambda v: v in want)
            mask = np.asarray([bad(v) for v in values], bool)
            rows = worst_rows(out, mask, np.zeros(out.num_rows), [OUTPUT] * out.num_rows, [LICENSE])
            for r in rows:
                r["value"] = r.pop(LICENSE, None)
            return rows

        return Measure(distinct, rows=offenders)
    contributed = operator_metrics().get(name)
    if contributed is None:  # pragma: no cover - metric_info knows every name
        raise GateError(f"unknown metric {name!r}")
    return contributed[0].measure(run, name)


def applicable_metrics(run: RunReader) -> list[str]:
    """The metrics that mean something for this run (its steps decide), in catalogue order."""
    ops = set(run.ops())
    names = [m.name for m in catalogue().values() if not m.needs or set(m.needs) & ops]
    rules: dict[str, None] = {}
    for s in run.steps:
        rules.update(dict.fromkeys(s.get("dropped") or {}))
    return names + [DROPPED + r for r in rules]


# ---- summaries -----------------------------------------------------------------------

def summarize_column(col: pa.ChunkedArray | pa.Array, top: int = 10) -> dict[str, Any]:
    """A short, JSON-able summary of any column: numbers get quantiles, strings and list items counts."""
    t = col.type
    n = len(col)
    nulls = col.null_count
    out: dict[str, Any] = {"rows": n, "nulls": nulls}
    if pa.types.is_boolean(t):
        out["true"] = int(pc.sum(col.cast(pa.int64())).as_py() or 0)
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        v = np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
        v = v[~np.isnan(v)]
        if v.size:
            q = np.percentile(v, [50, 90, 99])
            out.update(mean=number(v.mean()), min=number(v.min()), p50=number(q[0]), p90=number(q[1]),
                       p99=number(q[2]), max=number(v.max()), nonzero=int(np.count_nonzero(v)))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        counts = Counter(x for x in col.to_pylist() if x is not None)
        out["distinct"] = len(counts)
        out["top"] = dict(counts.most_common(top))
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        values = col.to_pylist()
        items = [x for v in values if v for x in v]
        out["items"] = len(items)
        out["rows_with_items"] = sum(1 for v in values if v)
        keys = Counter(span_type(x) if isinstance(x, dict) else str(x) for x in items)
        out["top"] = dict(keys.most_common(top))
    elif pa.types.is_struct(t) or pa.types.is_map(t):
        out["kind"] = str(t)
    return out


def summaries(run: RunReader, measures: dict[str, Measure]) -> dict[str, Any]:
    """One summary per audit section the run has steps or columns for (its steps with their parameters, what
    they dropped, its metrics' values, its columns summarized, the section's own figures), and rejected rows."""
    out, rej = audit_output(run), audit_rejected(run)
    columns = {c: summarize_column(out.column(c)) for c in out.column_names if c.startswith(audit_prefixes())}
    sections: dict[str, Any] = {}

    def steps_of(prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"index": i, "op": s.get("op"), "params": mask_secrets(s.get("params") or {})}
                for i, s in enumerate(run.recipe_steps) if str(s.get("op", "")).startswith(prefixes)]

    def dropped_by(prefixes: tuple[str, ...]) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for s in run.steps:
            if str(s.get("op", "")).startswith(prefixes):
                counts.update(s.get("dropped") or {})
        return dict(counts)

    for c in contributions():
        ran = steps_of(c.prefixes)
        cols = {k: v for k, v in columns.items() if k.startswith(c.prefixes)}
        if not ran and not cols:
            continue
        section = c.section
        sections[section.name] = {"steps": ran, "dropped": dropped_by(c.prefixes),
                                  **{m.name: measures[m.name].value for m in section.metrics if m.name in measures},
                                  "columns": cols, **(section.figures(run) if section.figures else {})}
    if rej.num_rows:
        sections.setdefault("rejected", {})["rows"] = rej.num_rows
    return sections


def sources_and_licenses(run: RunReader) -> list[dict[str, Any]]:
    """Output rows per (source, license), most rows first."""
    out = audit_output(run)
    pairs = Counter(zip(strings(out, SOURCE), strings(out, LICENSE)))
    return [{"source": s, "license": lic, "rows": n}
            for (s, lic), n in sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))]


