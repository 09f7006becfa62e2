"""The audit of a finished run: metrics, gates and risk summaries, as ``audit.json``.

Everything is read from the run directory, as the report is: ``stats.json`` (rows and drops
per step, the rules of scoring steps), ``recipe.yaml`` (steps with their parameters, the
gates), ``quarantine.jsonl``, ``rejected/*.parquet`` and the output rows. The output rows
are read from the last step's committed shards in ``cache/`` (Parquet with every column,
whatever the output format); a run directory without them falls back to ``data/*.parquet``
or JSON Lines (:class:`gristmill.pipeline.run_reader.RunReader`). Only generic things are
read: columns by their namespaced names (the families of the operators that contribute audit
sections: ``pii.*``, ``toxicity.*``, ...), ``source`` and ``license``, and the steps' names and
parameters.

The audit's own metrics (rows, quarantine, ``dropped.*``, license) are measured in
:mod:`gristmill.audit.metrics`; every other metric, its summary figures and its dataset card
text come from the operator that contributes it (its ``audit_section()`` hook, see
:mod:`gristmill.audit.metric`: ``toxicity.fraction`` in :mod:`gristmill.ops.toxicity`,
``pii.remaining`` in :mod:`gristmill.ops.pii.audit_metrics`, ...). The catalogue of them all:
:func:`gristmill.audit.gates.catalogue`.

Each gate gets the measured value, whether it passed, and its worst records (up to 5:
id, the value, where the row is, its source and the start of its text).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gristmill.audit.columns import OUTPUT, snippets
from gristmill.audit.gates import DROPPED, GateError, compare, parse_gate
from gristmill.audit.metrics import Measure, applicable_metrics, measure, sources_and_licenses, summaries
from gristmill.pipeline.run_reader import AUDIT_FILE, RunReader

__all__ = ["AUDIT_NAME", "build_audit", "failure_message", "evaluate_gates", "load_audit"]

AUDIT_NAME = AUDIT_FILE


# ---- the audit -----------------------------------------------------------------------

def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_gates(run: RunReader, measures: dict[str, Measure]) -> list[dict[str, Any]]:
    """Each gate of the run's recipe with its measured value, pass/fail and worst records."""
    results = []
    for expr in run.recipe.get("gates") or []:
        entry: dict[str, Any] = {"expr": str(expr)}
        try:
            gate = parse_gate(expr)
            m = measures.get(gate.metric) or measure(run, gate.metric)
            measures.setdefault(gate.metric, m)
        except GateError as exc:
            entry.update(passed=False, error=str(exc), measured=None, worst=[])
            results.append(entry)
            continue
        passed = m.value is not None and compare(gate, m.value)
        worst = m.rows(gate) if m.rows is not None else m.worst
        entry.update(metric=gate.metric, op=gate.op, value=gate.value, measured=_json_value(m.value),
                     passed=bool(passed), worst=[] if passed else worst)
        if m.note:
            entry["note"] = m.note
        results.append(entry)
    return results


def _fill_snippets(run: RunReader, groups: Iterable[list[dict[str, Any]]]) -> None:
    groups = list(groups)
    wanted: dict[str, set[str]] = {}
    for g in groups:
        for w in g:
            if w.get("where") != "quarantine" and w.get("id") is not None:
                wanted.setdefault(str(w["where"]), set()).add(str(w["id"]))
    if not wanted:
        return
    texts = snippets(run, wanted)
    for g in groups:
        for w in g:
            if (str(w.get("where")), w.get("id")) in texts:
                w["text"] = texts[(str(w["where"]), w["id"])]


def build_audit(run_dir: Path | RunReader) -> dict[str, Any]:
    """The audit of the run in ``run_dir`` as a JSON-able dict (see the module doc)."""
    run = run_dir if isinstance(run_dir, RunReader) else RunReader(run_dir)
    measures = {name: measure(run, name) for name in applicable_metrics(run)}
    gates = evaluate_gates(run, measures)
    metrics = {name: {"value": _json_value(m.value), **({"note": m.note} if m.note else {})}
               for name, m in measures.items()}
    worst = {name: m.worst for name, m in measures.items()
             if m.worst and not name.startswith(("rows.", DROPPED))}
    _fill_snippets(run, [*(g["worst"] for g in gates), *worst.values()])
    return {
        "run": run.stats.get("run", run.run_dir.name),
        "passed": all(g["passed"] for g in gates),
        "gates": gates,
        "metrics": metrics,
        "worst": worst,
        "summaries": summaries(run, measures),
        "sources": sources_and_licenses(run),
        "output_read_from": run.output_source,
    }


def load_audit(run: RunReader) -> dict[str, Any]:
    """The run's ``audit.json``, or the audit built now when there is none (a run finished before audits)."""
    return run.audit if run.audit is not None else build_audit(run)


def failure_message(audit: dict[str, Any]) -> str | None:
    """One paragraph per violated gate: the gate, the measured value and its worst records; None if all pass."""
    failed = [g for g in audit.get("gates") or [] if not g.get("passed")]
    if not failed:
        return None
    lines = [f"{len(failed)} of {len(audit['gates'])} gate(s) failed:"]
    for g in failed:
        if g.get("error"):
            lines.append(f"  {g['expr']}: {g['error']}")
            continue
        measured = g.get("measured")
        shown = ", ".join(map(str, measured)) if isinstance(measured, list) else measured
        lines.append(f"  {g['expr']}: measured {shown}" + (f" ({g['note']})" if g.get("note") else ""))
        worst = g.get("worst") or []
        if worst:
            lines.append("    worst records:")
            lines += [f"      {_describe(w)}" for w in worst]
    return "\n".join(lines)


def _describe(w: dict[str, Any]) -> str:
    """``id (value, where, detail=...)`` of one worst record."""
    parts = [str(w.get("value"))]
    if w.get("where") not in (OUTPUT, None):
        parts.append(f"in {w['where']}")
    for k, v in w.items():
        if k not in ("id", "value", "where", "source", "text"):
            parts.append(f"{k}={_short(v)}")
    return f"{w.get('id')} ({', '.join(parts)})"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {x}" for k, x in v.items()) + "}"
    return str(v)
