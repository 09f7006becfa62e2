"""The ``pii.*`` operators' part of the audit: ``pii.remaining`` and ``pii.rows``, the summary's figures and
the card's Personal information section (see :mod:`gristmill.audit.metric`).

``pii.remaining`` counts, for each output row, the spans in ``pii.spans`` whose type the last
``pii.redact`` step redacts (its ``types`` as the run recorded them, else that parameter's
default; every type when no redact step ran). ``pii.redact`` replaces ``pii.spans`` by the
spans it still detects after redacting (a redacted value, tag or pseudonym, is not detected
again), so this counts PII the pipeline meant to remove and did not; types it keeps on purpose
(by default dates and plain URLs) do not count. Without ``pii.spans``: the row's
``pii.remaining`` (all types), else ``pii.count``.

:func:`pii_audit_section` builds the section from the column names ``pii.detect`` defines
(``pii.detect`` and ``pii.redact`` both return it); this module imports neither operator.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import numpy as np

from gristmill.audit.columns import OUTPUT, audit_output, floats, span_type, strings, worst_rows
from gristmill.audit.markdown import num, params_text
from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure, recorded_param
from gristmill.pipeline.run_reader import RunReader
from gristmill.records import ID

__all__ = ["DETECT", "REDACT", "pii_audit_section", "pii_types"]

DETECT = "pii.detect"
REDACT = "pii.redact"


def pii_types(run: RunReader) -> set[str] | None:
    """The PII types that count as remaining: the last pii.redact step's ``types`` (None: all types, also when no
    pii.redact step ran)."""
    if run.last_step(REDACT) is None:
        return None
    types = recorded_param(run, REDACT, "types")
    return set(map(str, types)) if isinstance(types, (list, tuple)) else None


def _remaining(run: RunReader, spans_column: str,
               fallbacks: tuple[str, ...]) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Remaining PII spans per output row (see the module doc), and their counts by type."""
    out = audit_output(run)
    counted = pii_types(run)
    if spans_column in out.column_names:
        remaining, types = np.zeros(out.num_rows), []
        for i, spans in enumerate(strings(out, spans_column)):
            kinds = Counter(t for t in map(span_type, spans or []) if counted is None or t in counted)
            remaining[i] = sum(kinds.values())
            types.append(dict(kinds))
        return remaining, types
    for column in fallbacks:
        if column in out.column_names:
            return np.nan_to_num(floats(out, column)), [{} for _ in range(out.num_rows)]
    return np.zeros(out.num_rows), [{} for _ in range(out.num_rows)]


def _measure(run: RunReader, name: str, *, spans: str, fallbacks: tuple[str, ...]) -> Measure:
    if run.last_step(DETECT) is None and run.last_step(REDACT) is None:
        return Measure(None, note="no pii step ran")
    out = audit_output(run)
    remaining, types = _remaining(run, spans, fallbacks)
    value = int(remaining.sum()) if name == "pii.remaining" else int((remaining > 0).sum())
    worst = worst_rows(out, remaining > 0, remaining, [OUTPUT] * out.num_rows)
    ids = strings(out, ID)
    by_id = {ids[i]: types[i] for i in range(out.num_rows) if remaining[i] > 0}
    for w in worst:
        w["types"] = by_id.get(w["id"], {})
    return Measure(value, worst)


def _figures(run: RunReader, *, redacted: str) -> dict[str, Any]:
    counted = pii_types(run)
    figures: dict[str, Any] = {"types_counted": sorted(counted) if counted is not None else "all"}
    out = audit_output(run)
    if redacted in out.column_names:
        figures["spans_redacted"] = int(np.nansum(floats(out, redacted)))
    return figures


def _card(summary: dict[str, Any] | None, run: RunReader, *, spans_column: str) -> CardText:
    if not summary or not summary.get("steps"):
        return None, ["Not checked for personal information."]
    lines = ["Steps:"]
    for s in summary["steps"]:
        lines.append(f"- `{s['op']}` (step {s['index']}): {params_text(s['params'], 10) or 'defaults'}")
    modes = [s["params"].get("mode") for s in summary["steps"] if s["op"] == REDACT and s["params"].get("mode")]
    if modes:
        lines.append(f"\nRedaction mode: {', '.join(map(str, modes))}.")
    elif not any(s["op"] == REDACT for s in summary["steps"]):
        lines.append("\nPII was detected but not redacted.")
    counted = summary.get("types_counted")
    counted = "all types" if counted in (None, "all") else ", ".join(counted)
    lines.append(f"\nPII spans remaining in the output: **{num(summary.get('pii.remaining'))}** in "
                 f"{num(summary.get('pii.rows'))} rows (still detected in the output text; types counted: {counted}).")
    if summary.get("spans_redacted") is not None:
        lines.append(f"Spans redacted: {num(summary['spans_redacted'])}.")
    spans = (summary.get("columns") or {}).get(spans_column) or {}
    if spans.get("top"):
        lines.append("\nSpans still detected in the output, by type: "
                     + ", ".join(f"{k} {num(v)}" for k, v in spans["top"].items()) + ".")
    limits = ["PII detection misses what its patterns and NER model do not cover (unusual formats, names in "
              "other languages, indirect identifiers); a zero count is not proof of absence."]
    if summary.get("pii.remaining"):
        limits.append(f"{num(summary['pii.remaining'])} detected PII spans remain in the output.")
    return "\n".join(lines), limits


def pii_audit_section(*, spans: str, count: str, remaining: str, redacted: str) -> AuditSection:
    """The ``pii`` audit section over the columns ``pii.detect`` and ``pii.redact`` write: the spans, their count,
    what redaction left (``remaining``) and what it replaced (``redacted``)."""
    measure = partial(_measure, spans=spans, fallbacks=(remaining, count))
    return AuditSection(
        "pii",
        metrics=(AuditMetric("pii.remaining", "PII spans still detected in the output, of the types the last "
                             "pii.redact step redacts (all types when none ran)", measure),
                 AuditMetric("pii.rows", "output rows with at least one remaining PII span", measure)),
        figures=partial(_figures, redacted=redacted), order=10, card_title="Personal information",
        card=partial(_card, spans_column=spans),
        card_empty="No PII step ran: the output was not checked for personal information (names, contact details, "
                   "identifiers, secrets) and may contain it.")
