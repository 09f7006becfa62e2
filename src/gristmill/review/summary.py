"""The review's figures for a run directory or an open index, and the dataset card's text about them.

:func:`run_figures` builds the queues from the run's files (the audit uses it: what a run's ``audit.json``
says must not depend on a cache); :func:`index_figures` reads the same from the review index (the page's
figures panel, fast at 100,000 rows). Both end in :func:`gristmill.review.figures.compute`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.pipeline.run_reader import RunReader
from gristmill.review.figures import compute
from gristmill.review.index import ReviewIndex
from gristmill.review.queues import build_queues, queue_title
from gristmill.review.store import DEFAULT_SETTINGS, Store, decisions_path

__all__ = ["card_markdown", "index_figures", "run_figures"]


def run_figures(run: RunReader, decisions: Path | None = None, missing_ok: bool = False) -> dict[str, Any] | None:
    """The figures of the decisions in ``decisions`` (default ``RUN_DIR/review/decisions.sqlite``) over the run's
    queues; None when there is no decisions file, unless ``missing_ok`` (then: no decisions, the default
    settings, no sample). Raises :class:`~gristmill.review.store.ReviewStoreError` for a corrupt one."""
    path = decisions or decisions_path(run.run_dir)
    if path.is_file():
        store = Store(path, readonly=True)
        settings, sample, made = store.settings(), store.sample(), store.decisions()
    elif missing_ok:
        settings, sample, made = dict(DEFAULT_SETTINGS), [], []
    else:
        return None
    queues = build_queues(run, float(settings["margin"]), [k for k, _, _, _ in sample])
    figures = compute([(i.queue, i.key, i.rule) for i in queues.items], {k: r.hash for k, r in queues.rows.items()},
                      made, sample, int(settings["per_item"]))
    return {**figures, "decisions_file": str(path) if path.is_file() else None, "blind": bool(settings["blind"])}


def index_figures(index: ReviewIndex) -> dict[str, Any]:
    """The same figures from an open :class:`~gristmill.review.index.ReviewIndex`."""
    with index.connect() as conn:
        items = [(q, k, r) for q, k, r in conn.execute("SELECT i.queue, r.key, i.rule FROM items i JOIN rows r "
                                                        "ON r.rid = i.rid")]
        hashes = dict(conn.execute("SELECT key, hash FROM rows").fetchall())
    settings = index.store.settings()
    figures = compute(items, hashes, index.store.decisions(), index.store.sample(), int(settings["per_item"]))
    return {**figures, "decisions_file": str(index.store.path), "blind": bool(settings["blind"])}


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _kappa(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.3f}"


def card_markdown(f: dict[str, Any], applied: bool) -> str:
    """The dataset card's Human review section from figures ``f``; ``applied``: whether a ``review.apply`` step
    put the decisions into this output."""
    e, a = f["error_rate"], f["agreement"]
    lines = [f"{f['decisions']:,} review decisions by {len(f['reviewers'])} reviewer(s) "
             f"({', '.join(f['reviewers']) or 'none'}); {f['per_item']} reviewer(s) wanted per row"
             f"{', blind' if f.get('blind') else ''}. {f['queued']:,} rows were queued for review: "
             f"{f['complete']:,} complete, **{f['pending']:,} pending**."]
    if not applied:
        lines.append("The decisions are **not applied** to this output yet: add a `review.apply` step to the recipe "
                     "and run it again.")
    if e["n"]:
        lo, hi = e["ci95"]
        lines.append(f"\n**Estimated error rate of the kept rows: {_pct(e['value'])} (95% Wilson interval "
                     f"{_pct(lo)} – {_pct(hi)})**, from {e['n']} reviewed rows of a random acceptance sample of "
                     f"{e['sample']} drawn from {e['frame']:,} kept rows ({e['errors']} rejected or corrected); that "
                     f"is about {e['rows_estimate'][0]:,} – {e['rows_estimate'][1]:,} rows with an error.")
    else:
        lines.append("\nNo row of the acceptance sample was reviewed: the error rate of the kept data is not "
                     "estimated.")
    if a["items"]:
        fl = a["fleiss"]
        pairs = "; ".join(f"{p['a']} vs {p['b']}: κ = {_kappa(p['kappa'])} on {p['items']} rows "
                          f"({_pct(p['observed'])} the same)" for p in a["cohen"])
        lines.append(f"\nAgreement on {a['items']} rows judged by several reviewers ({_pct(a['observed'])} unanimous;"
                     f" verdicts counted as accept, reject or correct): Fleiss' κ = {_kappa(fl['kappa'])} over "
                     f"{fl['items']} rows with {fl['raters']} verdicts each; Cohen's κ {pairs}.")
    if f["precision"]:
        rows = ["| rule or check | decided | confirmed | precision (95% interval) |", "|---|---|---|---|"]
        for q, p in f["precision"].items():
            ci = p["ci95"]
            rows.append(f"| {queue_title(q)} | {p['n']} | {p['k']} | {_pct(p['value'])} "
                        f"({_pct(ci[0]) if ci else '—'} – {_pct(ci[1]) if ci else '—'}) |")
        lines.append("\nEach automated rule's precision as judged by reviewers (confirmed: the row was rejected, "
                     "or kept only corrected):\n\n" + "\n".join(rows))
    return "\n".join(lines)
