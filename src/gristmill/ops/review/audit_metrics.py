"""The ``review`` family's part of the audit: gates on the human review, its figures, the card's Human review section.

Metrics (measured from the run's queues and the decisions file ``review.apply`` applied, else
``RUN_DIR/review/decisions.sqlite``; see :mod:`gristmill.review.figures`):

* ``review.pending``: queued rows without enough verdicts (every queue; all of them when nobody reviewed);
* ``review.agreement``: Fleiss' kappa of the reviewers' verdicts on rows several of them judged (None: no
  such rows, or kappa undefined);
* ``review.error_rate``: rejected or corrected rows among the reviewed rows of the acceptance sample (None:
  none reviewed); ``review.error_rate_high``: the upper end of its 95% Wilson interval, the figure to gate
  on (``review.error_rate_high <= 0.05``).

The card section is written for any run with a decisions file, with or without a ``review.apply`` step
(it then says the decisions are not applied yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure
from gristmill.pipeline.run_reader import RunReader
from gristmill.review.store import ReviewStoreError, decisions_path
from gristmill.review.summary import card_markdown, run_figures

__all__ = ["APPLY", "REVIEW_AUDIT", "decisions_file", "figures_of"]

APPLY = "review.apply"
_CACHE: dict[tuple[Any, ...], dict[str, Any] | None] = {}


def decisions_file(run: RunReader) -> Path:
    """The decisions the run applied (its ``review.apply`` step's summary names them), else its own."""
    for step in reversed(run.steps):
        if step.get("op") == APPLY:
            summary = run.summary(str(step.get("step"))) or {}
            if summary.get("decisions_file"):
                return Path(summary["decisions_file"])
    return decisions_path(run.run_dir)


def _identity(path: Path) -> tuple[Any, ...]:
    out: list[Any] = []
    for p in (path, Path(f"{path}-wal")):
        st = p.stat() if p.exists() else None
        out.append(None if st is None else (st.st_size, st.st_mtime_ns))
    return tuple(out)


def figures_of(run: RunReader, missing_ok: bool = False) -> dict[str, Any] | None:
    """The review figures of the run (cached while the run and the decisions file are unchanged); None when there
    is no decisions file, unless ``missing_ok`` (then the figures of no decisions: everything queued is pending)."""
    path = decisions_file(run)
    stats = run.run_dir / "stats.json"
    key = (str(run.run_dir), stats.stat().st_mtime_ns if stats.exists() else None, str(path), _identity(path),
           missing_ok)
    if key not in _CACHE:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = run_figures(run, path, missing_ok=missing_ok)
    return _CACHE[key]


def _measure(run: RunReader, name: str) -> Measure:
    try:
        f = figures_of(run, missing_ok=True)
    except ReviewStoreError as exc:
        return Measure(None, note=str(exc))
    assert f is not None
    note = None if f["decisions"] else "nobody has reviewed this run (gristmill review RUN_DIR)"
    if name == "review.pending":
        return Measure(f["pending"], note=note)
    if name == "review.agreement":
        a = f["agreement"]
        return Measure(a["fleiss"]["kappa"], note=note or (None if a["items"] else "no row was judged by two "
                                                           "reviewers or more"))
    e = f["error_rate"]
    if not e["n"]:
        return Measure(None, note=note or "no row of the acceptance sample was reviewed")
    return Measure(e["value"] if name == "review.error_rate" else e["ci95"][1],
                   note=f"{e['errors']} of {e['n']} reviewed sample rows rejected or corrected")


def _figures(run: RunReader) -> dict[str, Any]:
    try:
        f = figures_of(run)
    except ReviewStoreError as exc:
        return {"error": str(exc)}
    if f is None:
        return {"decisions_file": None}
    return {k: f[k] for k in ("decisions_file", "decisions", "actions", "reviewers", "per_item", "queued", "complete",
                              "pending", "pending_by_queue", "agreement", "error_rate", "precision")}


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    applied = summary is not None and run.last_step(APPLY) is not None
    try:
        f = figures_of(run)
    except ReviewStoreError as exc:
        return f"The review decisions could not be read: {exc}", [f"The human review could not be read: {exc}"]
    if f is None:
        return None, []
    limits = []
    if f["pending"]:
        limits.append(f"{f['pending']:,} rows queued for human review have no complete review.")
    if not applied and f["decisions"]:
        limits.append("Human review decisions exist but are not applied to this output (no review.apply step).")
    if not f["error_rate"]["n"]:
        limits.append("The error rate of the kept rows was not estimated by a human acceptance sample.")
    return card_markdown(f, applied), limits


def _metric(name: str, doc: str) -> AuditMetric:
    return AuditMetric(name, doc, _measure)


REVIEW_AUDIT = AuditSection(
    name="review",
    metrics=(
        _metric("review.pending", "rows queued for human review without enough verdicts"),
        _metric("review.agreement", "Fleiss' kappa of reviewers' verdicts on rows several of them judged"),
        _metric("review.error_rate", "share of reviewed acceptance-sample rows rejected or corrected"),
        _metric("review.error_rate_high", "upper end of the 95% Wilson interval of review.error_rate"),
    ),
    figures=_figures,
    order=90,
    card_title="Human review",
    card=_card,
    card_empty="No person reviewed this data (`gristmill review RUN_DIR`): every decision above was made by "
               "automated rules.",
)
