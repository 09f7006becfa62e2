"""The audit's metrics, measured on a run directory, and the risk summaries of its columns.

Definitions: :data:`gristmill.audit.gates.METRICS` and :mod:`gristmill.audit.audit`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.audit.gates import DROPPED, METRICS, Gate, GateError, metric_info
from gristmill.audit.columns import (AUDIT_PREFIXES, OUTPUT, WHERE, WORST, audit_output, audit_rejected, floats,
                                     mask_secrets, number, output_and_rejected, quarantine_first, strings, worst_rows)
from gristmill.pipeline.run_reader import RunReader, rule_of
from gristmill.records import ID, LICENSE, REASON, SOURCE

__all__ = ["Measure", "measure", "applicable_metrics", "summarize_column", "summaries", "sources_and_licenses",
           "pii_types", "toxicity_threshold", "WORST", "DEFAULT_TOXICITY_THRESHOLD"]

DEFAULT_TOXICITY_THRESHOLD = 0.5


# ---- metrics -------------------------------------------------------------------------

@dataclass
class Measure:
    """A metric's value, the rows that push it the wrong way (worst first), and a note."""

    value: Any
    worst: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    rows: Callable[[Gate], list[dict[str, Any]]] | None = None  # gate-specific worst rows (set metrics)


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


def pii_types(run: RunReader) -> set[str] | None:
    """The PII types that count as remaining: the last pii.redact step's ``types`` (None: all types)."""
    redact = run.last_step("pii.redact")
    types = redact[1].get("types") if redact is not None else None
    return set(map(str, types)) if isinstance(types, list) else None


def _pii_remaining(run: RunReader) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Remaining PII spans per output row (see the module doc), and their counts by type."""
    out = audit_output(run)
    counted = pii_types(run)
    if "pii.spans" in out.column_names:
        remaining, types = np.zeros(out.num_rows), []
        for i, spans in enumerate(strings(out, "pii.spans")):
            kinds = Counter(t for t in map(span_type, spans or []) if counted is None or t in counted)
            remaining[i] = sum(kinds.values())
            types.append(dict(kinds))
        return remaining, types
    for column in ("pii.remaining", "pii.count"):
        if column in out.column_names:
            return np.nan_to_num(floats(out, column)), [{} for _ in range(out.num_rows)]
    return np.zeros(out.num_rows), [{} for _ in range(out.num_rows)]


def span_type(span: Any) -> str:
    if isinstance(span, dict):
        for key in ("type", "entity_type", "label", "entity"):
            if span.get(key) is not None:
                return str(span[key])
    return "?"


def _threshold_rows(run: RunReader, op: str, table: pa.Table) -> np.ndarray:
    """Rows of ``table`` over any max (or under any min) of ``op``'s rules in stats.json."""
    over = np.zeros(table.num_rows, bool)
    for r in run.step_rules(op):
        v = floats(table, str(r.get("column")))
        with np.errstate(invalid="ignore"):
            if isinstance(r.get("max"), (int, float)):
                over |= v > r["max"]
            if isinstance(r.get("min"), (int, float)):
                over |= v < r["min"]
    return over


def toxicity_threshold(run: RunReader) -> float:
    for r in run.step_rules("toxicity.score"):
        if r.get("column") == "toxicity.score" and isinstance(r.get("max"), (int, float)):
            return float(r["max"])
    return DEFAULT_TOXICITY_THRESHOLD


def measure(run: RunReader, name: str) -> Measure:
    """The value of metric ``name`` for the run (``GateError`` for an unknown name)."""
    metric_info(name)
    stats, out = run.stats, audit_output(run)
    rows_out = int((stats.get("output") or {}).get("rows", out.num_rows))
    if name == "rows.in":
        return Measure(int((stats.get("input") or {}).get("rows", 0)))
    if name == "rows.out":
        return Measure(rows_out)
    if name == "rows.dropped":
        return Measure(sum(sum((s.get("dropped") or {}).values()) for s in run.steps))
    if name == "quarantine.count":
        return Measure(int((stats.get("input") or {}).get("quarantined", 0)), quarantine_first(run, WORST))
    if name.startswith(DROPPED):
        return _dropped(run, name[len(DROPPED):])
    if name.startswith("contamination."):
        step = run.last_step("decontam.ngram")
        if step is None:
            return Measure(None, note="no decontam.ngram step ran")
        threshold = int(step[1].get("min_overlap", 1))
        table, where = (output_and_rejected(run) if name == "contamination.count" else (out, [OUTPUT] * out.num_rows))
        overlap = floats(table, "decontam.overlap")
        with np.errstate(invalid="ignore"):
            flagged = overlap >= threshold
        return Measure(int(flagged.sum()), worst_rows(table, flagged, overlap, where,
                                                  ["decontam.benchmark", "decontam.item"]),
                       f"decontam.overlap >= {threshold}")
    if name in ("pii.remaining", "pii.rows"):
        if run.last_step("pii.detect") is None and run.last_step("pii.redact") is None:
            return Measure(None, note="no pii step ran")
        remaining, types = _pii_remaining(run)
        value = int(remaining.sum()) if name == "pii.remaining" else int((remaining > 0).sum())
        worst = worst_rows(out, remaining > 0, remaining, [OUTPUT] * out.num_rows)
        ids = strings(out, ID)
        by_id = {ids[i]: types[i] for i in range(out.num_rows) if remaining[i] > 0}
        for w in worst:
            w["types"] = by_id.get(w["id"], {})
        return Measure(value, worst)
    if name.startswith("toxicity."):
        if run.last_step("toxicity.score") is None:
            return Measure(None, note="no toxicity.score step ran")
        threshold = toxicity_threshold(run)
        score = floats(out, "toxicity.score")
        with np.errstate(invalid="ignore"):
            above = score > threshold
        count = int(above.sum())
        value = count if name == "toxicity.count" else (round(count / rows_out, 6) if rows_out else 0.0)
        return Measure(value, worst_rows(out, above, score, [OUTPUT] * out.num_rows),
                       f"toxicity.score > {threshold:g}")
    if name.startswith("copyright."):
        if run.last_step("copyright.overlap") is None:
            return Measure(None, note="no copyright.overlap step ran")
        if name == "copyright.max_span":
            span = floats(out, "copyright.longest_span")
            finite = span[~np.isnan(span)]
            value = int(finite.max()) if finite.size else 0
            return Measure(value, worst_rows(out, span > 0, span, [OUTPUT] * out.num_rows, ["copyright.source"]))
        table, where = (output_and_rejected(run) if name == "copyright.count" else (out, [OUTPUT] * out.num_rows))
        over = _threshold_rows(run, "copyright.overlap", table)
        span = floats(table, "copyright.longest_span")
        return Measure(int(over.sum()), worst_rows(table, over, span, where, ["copyright.source",
                                                                           "copyright.overlap_ratio"]))
    if name == "license":
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
    raise GateError(f"unknown metric {name!r}")  # pragma: no cover - metric_info knows every name


def applicable_metrics(run: RunReader) -> list[str]:
    """The metrics that mean something for this run (its steps decide), in catalogue order."""
    ops = set(run.ops())
    names = [m.name for m in METRICS.values() if not m.needs or set(m.needs) & ops]
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
    out, rej = audit_output(run), audit_rejected(run)
    columns = {c: summarize_column(out.column(c)) for c in out.column_names if c.startswith(AUDIT_PREFIXES)}
    sections: dict[str, Any] = {}

    def steps_of(prefix: str) -> list[dict[str, Any]]:
        return [{"index": i, "op": s.get("op"), "params": mask_secrets(s.get("params") or {})}
                for i, s in enumerate(run.recipe_steps) if str(s.get("op", "")).startswith(prefix)]

    def dropped_by(prefix: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for s in run.steps:
            if str(s.get("op", "")).startswith(prefix):
                counts.update(s.get("dropped") or {})
        return dict(counts)

    for family, prefix, metrics in (
            ("pii", "pii.", ["pii.remaining", "pii.rows"]),
            ("toxicity", "toxicity.", ["toxicity.fraction", "toxicity.count"]),
            ("contamination", "decontam.", ["contamination.count", "contamination.remaining"]),
            ("copyright", "copyright.", ["copyright.count", "copyright.remaining", "copyright.max_span"]),
            ("bias", "bias.", [])):
        ran = steps_of(prefix)
        cols = {c: v for c, v in columns.items() if c.startswith(prefix)}
        if not ran and not cols:
            continue
        sections[family] = {"steps": ran, "dropped": dropped_by(prefix),
                            **{m: measures[m].value for m in metrics if m in measures}, "columns": cols}
    if "pii" in sections:
        counted = pii_types(run)
        sections["pii"]["types_counted"] = sorted(counted) if counted is not None else "all"
        if "pii.redacted" in out.column_names:
            sections["pii"]["spans_redacted"] = int(np.nansum(floats(out, "pii.redacted")))
    if "toxicity" in sections:
        sections["toxicity"]["threshold"] = toxicity_threshold(run)
    if "contamination" in sections:
        bench = Counter(v for v in strings(output_and_rejected(run)[0], "decontam.benchmark") if v is not None)
        sections["contamination"]["matched_rows_by_benchmark"] = dict(bench.most_common())
    if "copyright" in sections:
        srcs = Counter(v for v in strings(output_and_rejected(run)[0], "copyright.source") if v is not None)
        sections["copyright"]["matched_rows_by_document"] = dict(srcs.most_common(20))
    if rej.num_rows:
        sections.setdefault("rejected", {})["rows"] = rej.num_rows
    return sections


def sources_and_licenses(run: RunReader) -> list[dict[str, Any]]:
    """Output rows per (source, license), most rows first."""
    out = audit_output(run)
    pairs = Counter(zip(strings(out, SOURCE), strings(out, LICENSE)))
    return [{"source": s, "license": lic, "rows": n}
            for (s, lic), n in sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))]


