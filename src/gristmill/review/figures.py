"""The review's figures: agreement between reviewers, each rule's precision as judged by them, the error rate of
the kept data from the acceptance sample, and what is still pending.

* **Agreement** on rows two or more reviewers judged, each verdict counted as ``accept``, ``reject`` or
  ``correct`` (an edit or a label change, :data:`gristmill.review.state.CATEGORY`): Cohen's kappa for every
  pair of reviewers over the rows both judged, and Fleiss' kappa over the rows judged by the most common
  number of reviewers (Fleiss' kappa needs the same number of ratings per row; rows with another number
  are left out of it, and counted). A kappa is None when it is undefined: no shared rows, or every verdict
  in one category (chance agreement is then 1).
* **Rule precision**: for the rows a rule dropped (``dropped:<rule>``) or a check flagged (``pii``,
  ``toxicity``, ``copyright``, ``contamination``, ``near_duplicates``, ``quarantine``, ``queue:<name>``),
  the share of decided rows whose outcome confirms it (rejected, or kept only with a correction), with a
  Wilson interval.
* **Error rate** of the kept data: the share of reviewed rows of the acceptance sample that were rejected
  or corrected, with its Wilson interval (:func:`gristmill.stats.wilson`), and that interval scaled to the
  kept rows the sample was drawn from. Rows of the sample not reviewed yet are not counted: the estimate
  is of the rows reviewed, which are a random sample when they are reviewed in the sample's order.
* **Pending**: queued rows not yet complete (fewer verdicts than reviewers per item), all queues together
  and per queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from gristmill.review.state import RowState, by_key, category, resolve
from gristmill.review.store import Decision
from gristmill.stats import wilson

__all__ = ["FLAG_QUEUES", "agreement", "cohen_kappa", "compute", "error_rate", "fleiss_kappa", "rule_precision"]

FLAG_QUEUES = ("pii", "toxicity", "copyright", "contamination", "near_duplicates", "quarantine")
CATEGORIES = ("accept", "reject", "correct")


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items: (p_o - p_e) / (1 - p_e), with p_e from each
    rater's own label frequencies; None for no items or when p_e is 1 (one label throughout)."""
    if len(a) != len(b):
        raise ValueError(f"two raters need the same items ({len(a)} vs {len(b)} labels)")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[c] * cb[c] for c in ca.keys() | cb.keys()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of ``counts[i][j]``, the raters who put item ``i`` in category ``j`` (every item rated by
    the same number of raters, at least 2); None for no items or when chance agreement is 1."""
    rows = [list(map(int, r)) for r in counts]
    if not rows:
        return None
    n = sum(rows[0])
    if n < 2 or any(sum(r) != n for r in rows):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    items, k = len(rows), len(rows[0])
    p_j = [sum(r[j] for r in rows) / (items * n) for j in range(k)]
    p_i = [(sum(c * c for c in r) - n) / (n * (n - 1)) for r in rows]
    p_bar, p_e = sum(p_i) / items, sum(p * p for p in p_j)
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def _interval(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"value": None, "k": 0, "n": 0, "ci95": None}
    ci = wilson(k, n)
    return {"value": ci.estimate, "k": k, "n": n, "ci95": ci.bounds}


def agreement(ratings: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Agreement figures of ``ratings`` (row key -> reviewer -> category); see the module doc."""
    shared = {k: r for k, r in ratings.items() if len(r) >= 2}
    reviewers = sorted({rev for r in shared.values() for rev in r})
    pairs = []
    for a, b in combinations(reviewers, 2):
        both = [r for r in shared.values() if a in r and b in r]
        if both:
            xa, xb = [r[a] for r in both], [r[b] for r in both]
            pairs.append({"a": a, "b": b, "items": len(both), "observed": sum(x == y for x, y in zip(xa, xb)) / len(both),
                          "kappa": cohen_kappa(xa, xb)})
    sizes = Counter(len(r) for r in shared.values())
    raters = max(sizes, key=lambda s: (sizes[s], s)) if sizes else 0
    table = [[sum(v == c for v in r.values()) for c in CATEGORIES] for r in shared.values() if len(r) == raters]
    unanimous = sum(len(set(r.values())) == 1 for r in shared.values())
    return {"items": len(shared), "reviewers": reviewers,
            "observed": unanimous / len(shared) if shared else None,
            "fleiss": {"kappa": fleiss_kappa(table) if table else None, "items": len(table), "raters": raters,
                       "left_out": len(shared) - len(table)},
            "cohen": pairs}


def rule_precision(items: Iterable[tuple[str, str, str | None]], states: Mapping[str, RowState]) -> dict[str, Any]:
    """Per dropping rule or flag queue: decided rows, rows whose outcome confirms it, precision and its interval.
    ``items`` are ``(queue, key, rule)``."""
    seen: dict[str, dict[str, str]] = {}
    for queue, key, rule in items:
        if not (queue.startswith(("dropped:", "queue:")) or queue in FLAG_QUEUES):
            continue
        st = states.get(key)
        result = None if st is None else st.result
        if result is not None:
            seen.setdefault(queue, {})[key] = result
    return {q: {**_interval(sum(r != "accept" for r in rows.values()), len(rows)),
                "accepted": sum(r == "accept" for r in rows.values()),
                "rejected": sum(r == "reject" for r in rows.values()),
                "corrected": sum(r == "correct" for r in rows.values())}
            for q, rows in sorted(seen.items())}


def error_rate(sample: Sequence[tuple[str, str, int, int]], states: Mapping[str, RowState]) -> dict[str, Any]:
    """The acceptance sample's error rate (rejected or corrected among reviewed rows) with its Wilson interval,
    and the interval scaled to the kept rows it was drawn from."""
    frame = max((f for _, _, _, f in sample), default=0)
    results = [states[k].result for k, _, _, _ in sample if k in states and states[k].result is not None]
    errors = sum(r != "accept" for r in results)
    out = {"sample": len(sample), "reviewed": len(results), "errors": errors, "frame": frame,
           **_interval(errors, len(results))}
    out["rows_estimate"] = None if out["ci95"] is None else [round(b * frame) for b in out["ci95"]]
    return out


def compute(items: Sequence[tuple[str, str, str | None]], hashes: Mapping[str, str], decisions: Sequence[Decision],
            sample: Sequence[tuple[str, str, int, int]], per_item: int) -> dict[str, Any]:
    """Every figure of the review from the queue ``items`` (``(queue, key, rule)``), the rows' current content
    ``hashes``, the ``decisions``, the acceptance ``sample`` and the reviewers wanted per row."""
    grouped = by_key(decisions)
    states = {k: resolve(k, ds, hashes.get(k)) for k, ds in grouped.items()}
    queued: dict[str, set[str]] = {}
    for queue, key, _ in items:
        queued.setdefault(queue, set()).add(key)
    keys = set().union(*queued.values()) if queued else set()
    complete = {k for k in keys if k in states and states[k].complete(per_item)}
    ratings = {k: {r: category(d.action) for r, d in st.verdicts.items()} for k, st in states.items()}
    actions = Counter(d.action for d in decisions)
    return {
        "decisions": len(decisions), "actions": dict(sorted(actions.items())),
        "reviewers": sorted({d.reviewer for d in decisions}), "per_item": per_item,
        "queued": len(keys), "complete": len(complete), "pending": len(keys - complete),
        "pending_by_queue": {q: len(ks - complete) for q, ks in sorted(queued.items())},
        "stale": sum(1 for k in keys if k in states and states[k].stale and not states[k].verdicts),
        "sent_back": sum(1 for k in keys if k in states and states[k].sent_back is not None),
        "agreement": agreement(ratings),
        "precision": rule_precision(items, states),
        "error_rate": error_rate(sample, states),
    }
