"""``review.apply``: decisions back into the data on the recipe's next run, and the review's gates and card text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.run_reader import RunReader
from gristmill.records import Reason
from gristmill.review.actions import make_decision
from gristmill.review.index import ReviewIndex
from gristmill.review.pages import Filter, matching
from gristmill.review.store import Decision, Store, decisions_path
from gristmill.runner import run_recipe
from tests.review.conftest import recipe, write_corpus


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_recipe(recipe(write_corpus(tmp_path)), runs_dir=tmp_path / "runs", progress=False)
    return tmp_path / "runs" / "rv"


def _item(index: ReviewIndex, queue: str, key: str) -> dict[str, Any]:
    return next(i for i in matching(index, Filter(queue, status="all"), "x", 1) if i["key"] == key)


def _decide(index: ReviewIndex, queue: str, key: str, action: str, reviewer: str = "ann", **kw: Any) -> None:
    decision, snapshot = make_decision(_item(index, queue, key), action, reviewer, **kw)
    index.store.append([decision], snapshot)


def _rerun(run_dir: Path, gates: list[str] | None = None) -> Any:
    spec = recipe(run_dir.parent.parent / "docs.jsonl")
    spec["steps"].append({"op": "review.apply", "params": {"run": str(run_dir)}})
    spec["gates"] = gates or []
    return run_recipe(spec, runs_dir=run_dir.parent, progress=False)


def _output(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in RunReader(run_dir).output_table(lambda c: True).to_pylist()}


def test_decisions_go_back_into_the_data(run_dir: Path) -> None:
    store = Store(decisions_path(run_dir), create=True)
    index = ReviewIndex(run_dir, store).open()
    _decide(index, "judge", "p00", "reject", reason="off topic")
    _decide(index, "judge", "p00", "reject", "bob", reason="wrong")
    _decide(index, "queue:custom", "p03", "edit", after={"text": "a note about the lamp, rewritten by a person"})
    _decide(index, "dropped:min_words", "tiny2", "accept")
    _decide(index, "judge", "p04", "label", label="b")
    _decide(index, "dropped:duplicate", "dup", "reject", reason="a copy")  # agrees with the rule: stays dropped
    store.append([Decision(key="p08", hash="0000000000000000", action="reject", reviewer="ann", reason="old")])

    summary = _rerun(run_dir)
    step = summary.stats["steps"][-1]
    assert step["op"] == "review.apply" and not step["cached"] and step["dropped"] == {"review": 1}
    rejected = pq.read_table(run_dir / "rejected" / "08-review.apply.parquet").to_pylist()
    assert [(r["id"], r["_reason"]) for r in rejected] == [("p00", "review: off topic (ann); wrong (bob)")]
    assert Reason.parse(rejected[0]["_reason"]).rule == "review"
    out = _output(run_dir)
    assert out["p03"]["text"] == "a note about the lamp, rewritten by a person"
    assert (out["p03"]["review.status"], out["p03"]["review.reviewers"], out["p03"]["review.changed"]) == \
        ("edited", "ann", "text")
    assert out["p04"]["label"] == "b" and out["p04"]["review.status"] == "relabelled"
    assert out["tiny2"]["text"] == "also short here" and out["tiny2"]["review.status"] == "restored"
    assert out["p08"]["review.status"] == "stale" and "dup" not in out and "p00" not in out
    assert out["p01"]["review.status"] is None and out["p03"]["review.time"]
    assert summary.stats["output"]["rows"] == 29 - 1 + 1
    fit = json.loads((run_dir / "summaries" / "08-review.apply.json").read_text())
    assert (fit["rejected"], fit["edited"], fit["relabelled"], fit["restored"], fit["stale"]) == (1, 1, 1, 1, 1)

    # the edited and relabelled rows hold their decisions; the stale one is queued again
    index = ReviewIndex(run_dir, Store(decisions_path(run_dir))).open()
    assert index.built
    with index.connect() as conn:
        state = dict(conn.execute("SELECT r.key, s.n_final FROM rows r LEFT JOIN state s ON s.rid = r.rid"))
    assert state["p03"] == 1 and state["p04"] == 1 and state["tiny2"] == 1 and state.get("p08") in (0, None)

    # unchanged decisions: the step comes from the cache; a new decision reruns it
    assert _rerun(run_dir).stats["steps"][-1]["cached"]
    _decide(index, "judge", "p12", "reject", reason="late")
    again = _rerun(run_dir)
    assert not again.stats["steps"][-1]["cached"] and again.stats["steps"][-1]["dropped"] == {"review": 2}


def test_gates_and_card(run_dir: Path) -> None:
    store = Store(decisions_path(run_dir), create=True)
    store.set_settings({"sample_size": 4})
    index = ReviewIndex(run_dir, store).open()
    sample = [k for k, _, _, _ in store.sample()]
    assert len(sample) == 4
    for n, key in enumerate(sample):
        action = "reject" if n == 0 else "accept"
        _decide(index, "sample", key, action, reason="bad" if action == "reject" else None)
        _decide(index, "sample", key, action, "bob", reason="bad" if action == "reject" else None)
    summary = _rerun(run_dir, gates=["review.error_rate_high <= 0.9", "review.pending >= 0",
                                     "review.agreement >= 0.5", "review.error_rate < 0.5"])
    assert summary.audit["passed"], summary.audit["gates"]
    metrics = summary.audit["metrics"]
    assert metrics["review.error_rate"]["value"] == pytest.approx(0.25)
    assert metrics["review.agreement"]["value"] == pytest.approx(1.0)
    figures = summary.audit["summaries"]["review"]
    assert figures["error_rate"]["n"] == 4 and figures["agreement"]["items"] == 4
    card = (run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "## Human review" in card and "Estimated error rate of the kept rows: 25.0% (95% Wilson interval" in card
    assert "Fleiss' κ = 1.000" in card
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "review.error_rate" in report and "review.agreement" in report


def test_a_run_without_decisions_applies_nothing(run_dir: Path) -> None:
    summary = _rerun(run_dir, gates=["review.pending > 0"])
    assert summary.stats["output"]["rows"] == 29 and summary.audit["passed"]
    assert summary.audit["metrics"]["review.error_rate"]["value"] is None
    card = (run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "No person reviewed this data" in card


def test_a_corrupt_decisions_file_fails_the_step_and_is_kept(run_dir: Path) -> None:
    path = decisions_path(run_dir)
    path.parent.mkdir()
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(Exception, match="review.apply: .*decisions file cannot be read") as exc:
        _rerun(run_dir)
    assert "left as it is" in str(exc.value)
    assert path.read_bytes() == b"not a database" * 100
