"""Report section "Audit": the gates (pass / fail), the audit metrics, risk summaries and worst records.

Reads ``audit.json`` (written by :func:`gristmill.audit.write_audit` at the end of a run),
so the section shows exactly what the gates decided.
"""

from __future__ import annotations

import json
from typing import Any

from gristmill.audit.card import params_text
from gristmill.pipeline.run_reader import AUDIT_FILE, RunReader
from gristmill.report.html import esc, kv, none, table

WORST_COLUMNS = ("id", "value", "where", "source", "text")


def load(run: RunReader) -> dict[str, Any] | None:
    """``audit.json`` of the run, or ``None`` when it is missing or unreadable."""
    return run.audit


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join("null" if x is None else str(x) for x in v) or "(none)"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "—" if v is None else str(v)


def _worst(records: list[dict[str, Any]]) -> str:
    extra = [k for r in records for k in r if k not in WORST_COLUMNS]
    headers = [*WORST_COLUMNS, *dict.fromkeys(extra)]
    rows = [[r.get("id"), _value(r.get("value")), r.get("where"), r.get("source"), r.get("text"),
             *(_cell(r.get(k)) for k in headers[len(WORST_COLUMNS):])] for r in records]
    return table(headers, rows, text_cols=(4,))


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return _value(v)


def _gates(audit: dict[str, Any]) -> str:
    gates = audit.get("gates") or []
    if not gates:
        return none("the recipe sets no gates")
    rows = [(g.get("expr"), g.get("error") or _value(g.get("measured")),
             "pass" if g.get("passed") else "FAIL", g.get("note") or "") for g in gates]
    failed = [g for g in gates if not g.get("passed")]
    verdict = (f'<p><strong>{len(failed)} of {len(gates)} gates failed</strong>: the run exited with code 3.</p>'
               if failed else f"<p>All {len(gates)} gates passed.</p>")
    parts = [verdict, table(["gate", "measured", "result", "note"], rows)]
    for g in failed:
        if g.get("worst"):
            parts.append(f"<h4>Worst records for {esc(g.get('expr'))}</h4>" + _worst(g["worst"]))
    return "".join(parts)


def _summary_row(column: str, s: dict[str, Any]) -> tuple[Any, ...]:
    if s.get("top"):
        figure = ", ".join(f"{k}: {_value(v)}" for k, v in list(s["top"].items())[:8])
    elif s.get("mean") is not None:
        figure = (f"mean {_value(s['mean'])}, p50 {_value(s.get('p50'))}, p90 {_value(s.get('p90'))}, "
                  f"max {_value(s.get('max'))}, non-zero {_value(s.get('nonzero'))}")
    elif "true" in s:
        figure = f"true: {_value(s['true'])}"
    else:
        figure = "—"
    return (column, s.get("rows"), s.get("nulls"), figure)


def _summaries(audit: dict[str, Any]) -> str:
    parts = []
    for family, summ in (audit.get("summaries") or {}).items():
        if not isinstance(summ, dict) or family == "rejected":
            continue
        parts.append(f"<h4>{esc(family)}</h4>")
        steps = summ.get("steps") or []
        pairs = [("steps", "<br>".join(esc(f"{s.get('index')}: {s.get('op')} ({params_text(s.get('params') or {})})")
                                        for s in steps) or "—")]
        for k, v in summ.items():
            if k not in ("steps", "columns"):
                pairs.append((k, esc(_cell(v) if isinstance(v, (dict, list)) else _value(v))))
        parts.append(kv(pairs))
        cols = summ.get("columns") or {}
        if cols:
            parts.append(table(["column (output rows)", "rows", "null", "figures"],
                               [_summary_row(c, s) for c, s in cols.items()]))
    return "".join(parts)


def render(run: RunReader) -> str:
    """The section body."""
    audit = load(run)
    if audit is None:
        return none("none: audit.json is missing (a run older than the audit, or killed before it finished)")
    parts = ["<h3>Gates</h3>", _gates(audit)]
    metrics = audit.get("metrics") or {}
    if metrics:
        parts.append("<h3>Metrics</h3>")
        parts.append(table(["metric", "value", "note"],
                           [(k, _value(m.get("value")), m.get("note") or "") for k, m in metrics.items()]))
    summaries = _summaries(audit)
    if summaries:
        parts.append("<h3>Risk summaries</h3>" + summaries)
    worst = {k: v for k, v in (audit.get("worst") or {}).items() if v}
    if worst:
        parts.append("<h3>Worst records</h3>")
        for name, records in worst.items():
            parts.append(f"<h4>{esc(name)}</h4>" + _worst(records))
    sources = audit.get("sources") or []
    if sources:
        parts.append("<h3>Sources and licenses (output rows)</h3>")
        parts.append(table(["source", "license", "rows"],
                           [(s.get("source"), s.get("license") or "(none)", s.get("rows")) for s in sources]))
    parts.append(f"<p>Details: <code>{esc(AUDIT_FILE)}</code>; datasheet: "
                 f'<a href="DATASET_CARD.md">DATASET_CARD.md</a>.</p>')
    return "".join(parts)


__all__ = ["render", "load"]
