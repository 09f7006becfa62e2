"""The ``bias.*`` operators' part of the audit: a ``bias`` summary (their steps and ``bias.*`` columns) and the
dataset card's Bias section, with each ``bias.audit`` step's run summary (``summaries/<step>.json``) rendered
generically. No gate metrics: bias figures are for reading, not for thresholds (see :mod:`gristmill.audit.metric`).
"""

from __future__ import annotations

from typing import Any

from gristmill.audit.markdown import num, params_text, summary_markdown, table
from gristmill.audit.metric import AuditSection, CardText
from gristmill.pipeline.run_reader import RunReader

__all__ = ["BIAS_AUDIT"]


def _figure(summary: dict[str, Any]) -> str:
    """A column's summary (:func:`gristmill.audit.metrics.summarize_column`) in a few words."""
    if "top" in summary and summary["top"]:
        return ", ".join(f"{k} {num(v)}" for k, v in list(summary["top"].items())[:8])
    if summary.get("mean") is not None:
        return f"mean {num(summary['mean'])}, rows > 0: {num(summary.get('nonzero'))}"
    if "true" in summary:
        return f"true in {num(summary['true'])} rows"
    return "—"


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Representation of demographic groups was not measured."]
    lines = [f"- `{s['op']}` (step {s['index']}): {params_text(s['params']) or 'defaults'}"
             for s in summary.get("steps") or []]
    rows = [[f"`{col}`", _figure(summ)] for col, summ in (summary.get("columns") or {}).items()]
    if rows:
        lines.append("\n" + table(["column (output rows)", "figures"], rows))
    for s in summary.get("steps") or []:
        label = f"{s['index']:02d}-{s['op']}"
        step_summary = run.summary(label)
        if step_summary is not None:
            lines.append(f"\n### {s['op']} (step {s['index']}): `summaries/{label}.json`\n")
            lines += summary_markdown(step_summary)
    extra = sorted(p.relative_to(run.run_dir).as_posix() for p in run.run_dir.glob("bias*/**/*") if p.is_file())
    if extra:
        lines.append("\nBias step outputs in the run directory: " + ", ".join(f"`{e}`" for e in extra[:10]) + ".")
    return "\n".join(lines), ["Bias figures count group terms from fixed lists: they measure mentions and "
                              "co-occurrence, not how groups are portrayed, and miss groups the lists lack."]


BIAS_AUDIT = AuditSection("bias", order=30, card_title="Bias", card=_card, card_empty="No bias step ran.")
