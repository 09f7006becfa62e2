"""What decisions add up to, and the review's figures: kappas against hand-computed values and scikit-learn."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import cohen_kappa_score

from gristmill.review.figures import agreement, cohen_kappa, compute, error_rate, fleiss_kappa
from gristmill.review.state import resolve
from gristmill.review.store import Decision
from gristmill.stats import wilson

_seq = iter(range(1, 10_000))


def d(action: str, reviewer: str = "ann", h: str = "h0", **kw: object) -> Decision:
    return Decision(key="k", hash=h, action=action, reviewer=reviewer, seq=next(_seq), time="t", **kw)  # type: ignore[arg-type]


def test_latest_verdict_per_reviewer_and_majority() -> None:
    st = resolve("k", [d("accept"), d("reject", reason="bad"), d("accept", "bob"), d("reject", "cy", reason="no")], "h0")
    assert {r: v.action for r, v in st.verdicts.items()} == {"ann": "reject", "bob": "accept", "cy": "reject"}
    assert st.outcome == "reject" and st.reject_reason() == "bad (ann); no (cy)"
    assert st.complete(3) and not st.complete(4)
    tie = resolve("k", [d("reject", reason="x"), d("accept", "bob")], "h0")
    assert tie.outcome == "keep"  # a tie goes to the latest verdict


def test_edits_merge_and_skips_are_no_verdict() -> None:
    st = resolve("k", [d("skip"), d("edit", after={"text": "a"}, hash_after="h1"), d("label", "bob", after={"label": "x"}),
                       d("edit", "cy", after={"text": "b"})], "h0")
    assert st.outcome == "keep" and st.changes() == {"text": "b", "label": "x"} and st.result == "correct"
    assert resolve("k", [d("skip")], "h0").verdicts == {} and resolve("k", [d("skip")], "h0").skipped == {"ann"}


def test_changed_content_makes_decisions_stale_but_an_applied_edit_holds() -> None:
    made = [d("edit", after={"text": "new"}, hash_after="h1")]
    assert resolve("k", made, "h1").outcome == "keep"  # the edit produced this content
    other = resolve("k", made, "h2")
    assert other.verdicts == {} and other.stale == 1


def test_send_back_voids_what_came_before() -> None:
    st = resolve("k", [d("reject", reason="x"), d("send_back", "lead", reason="look again")], "h0")
    assert st.verdicts == {} and st.sent_back is not None and st.sent_back.reason == "look again"
    again = resolve("k", [d("reject", reason="x"), d("send_back", "lead"), d("accept")], "h0")
    assert again.outcome == "keep" and again.sent_back is None


def test_cohen_kappa_matches_scikit_learn() -> None:
    rng = random.Random(3)
    for _ in range(25):
        n = rng.randint(2, 60)
        a = [rng.choice("xyz") for _ in range(n)]
        b = [x if rng.random() < 0.6 else rng.choice("xyz") for x in a]
        if len(set(a) | set(b)) > 1:
            assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # by hand: 50 items, 20 yes/yes, 15 no/no, 5 yes/no, 10 no/yes: p_o 0.7, p_e 0.5 x 0.6 + 0.5 x 0.4 = 0.5
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None and cohen_kappa([], []) is None


def test_fleiss_kappa_by_hand() -> None:
    # Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa": 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-5)
    # two raters, four items: (a,a) (a,b) (b,b) (b,b): P_bar = 0.75, p = (3/8, 5/8), P_e = 34/64
    assert fleiss_kappa([[2, 0], [1, 1], [0, 2], [0, 2]]) == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64))
    assert fleiss_kappa([[2, 0], [2, 0]]) is None
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 0], [1, 2]])


def test_agreement_uses_rows_with_the_common_number_of_verdicts() -> None:
    ratings = {"r1": {"ann": "accept", "bob": "accept"}, "r2": {"ann": "reject", "bob": "accept"},
               "r3": {"ann": "reject", "bob": "reject"}, "r4": {"ann": "accept", "bob": "accept", "cy": "accept"},
               "r5": {"ann": "accept"}}
    a = agreement(ratings)
    assert a["items"] == 4 and a["fleiss"]["items"] == 3 and a["fleiss"]["left_out"] == 1
    pair = next(p for p in a["cohen"] if (p["a"], p["b"]) == ("ann", "bob"))
    assert pair["items"] == 4 and pair["kappa"] == pytest.approx(
        cohen_kappa_score(["accept", "reject", "reject", "accept"], ["accept", "accept", "reject", "accept"]))


def test_error_rate_and_precision_and_pending() -> None:
    decisions = []
    for i in range(10):  # 10 sample rows reviewed: 2 rejected, 1 edited
        action = "reject" if i < 2 else "edit" if i == 2 else "accept"
        decisions.append(Decision(key=f"s{i}", hash="h", action=action, reviewer="ann", seq=i + 1, reason="x",
                                  after={"text": "y"} if action == "edit" else None))
    decisions.append(Decision(key="d1", hash="h", action="reject", reviewer="ann", seq=20, reason="right"))
    decisions.append(Decision(key="d2", hash="h", action="accept", reviewer="ann", seq=21))
    sample = [(f"s{i}", "h", i, 500) for i in range(20)]
    items = [("sample", f"s{i}", "sample") for i in range(20)] + [("dropped:min_words", k, "min_words")
                                                                  for k in ("d1", "d2", "d3")]
    f = compute(items, {k: "h" for _, k, _ in items}, decisions, sample, per_item=1)
    e = f["error_rate"]
    want = wilson(3, 10)
    assert (e["errors"], e["n"], e["sample"], e["frame"]) == (3, 10, 20, 500)
    assert e["value"] == pytest.approx(0.3) and e["ci95"] == pytest.approx([want.lo, want.hi])
    assert e["rows_estimate"] == [round(want.lo * 500), round(want.hi * 500)]
    p = f["precision"]["dropped:min_words"]
    assert (p["k"], p["n"], p["value"]) == (1, 2, 0.5)
    assert f["pending"] == 10 + 1 and f["complete"] == 12
    assert error_rate([], {})["value"] is None
