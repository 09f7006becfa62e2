"""generate.preference_pairs: groups across shards, best/worst and all pairs, margins, ties and reasons."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill import registry
from gristmill.ops.generate.preference_pairs import PreferencePairs, score_value
from gristmill.records import REASON, from_rows
from gristmill.runner import run_recipe


def _rows(spec: list[tuple[str, str, str, Any]], **extra: Any) -> list[dict[str, Any]]:
    return [{"id": rid, "instruction": prompt, "output": response, "judge.score": score, **extra}
            for rid, prompt, response, score in spec]


def _run(op: PreferencePairs, shards: list[list[dict[str, Any]]], scratch: Path | None = None):
    if scratch is not None:
        op.bind(scratch=scratch)
    tables = [from_rows(s) for s in shards]
    op.fit([op.summarize(t) for t in tables])
    results = [op.process(t) for t in tables]
    kept = [r for res in results for r in res.kept.to_pylist()]
    rejected = {r["id"]: r[REASON] for res in results if res.rejected is not None for r in res.rejected.to_pylist()}
    return kept, rejected


QA = [("a1", "What is 2+2?", "4", 9), ("a2", "What is 2+2?", "5", 2), ("a3", "What is 2+2?", "four", 7),
      ("b1", "Name a colour.", "blue", 8), ("b2", "Name a colour.", "blue!", 8),
      ("c1", "Say hi.", "hi", 6), ("c2", "Say hi.", "hello", 5.5),
      ("d1", "Alone?", "yes", 7),
      ("e1", "Unscored?", "maybe", None), ("e2", "Unscored?", "no", float("nan"))]


@pytest.mark.parametrize("scratch", [False, True])
def test_best_against_worst_per_prompt_across_shards_with_every_row_accounted(tmp_path: Path, scratch: bool) -> None:
    rows = _rows(QA, license="MIT")
    rows[1]["license"] = "CC-BY-4.0"  # the rejected response of a1's pair
    op = PreferencePairs()
    # the prompt "What is 2+2?" straddles two shards; a2 (the worst) lives in the second one
    kept, rejected = _run(op, [rows[:1] + rows[3:6], rows[1:3] + rows[6:]], tmp_path if scratch else None)
    assert [(r["id"], r["chosen"], r["rejected"], r["pref.margin"]) for r in kept] == [("a1", "4", "5", 7.0)]
    pair = kept[0]
    assert pair["prompt"] == "What is 2+2?" and pair["pref.rejected_id"] == "a2" and pair["pref.responses"] == 3
    assert pair["license"] == "CC-BY-4.0 AND MIT"  # both texts are in the pair
    assert rejected == {
        "a2": "paired: the rejected response of pair a1",
        "a3": "unpaired: neither the best (9) nor the worst (2) of 3 responses",
        "b1": "tie: all 2 responses score 8", "b2": "tie: all 2 responses score 8",
        "c1": "margin: 6 - 5.5 = 0.5 < 1 (scores 6, 5.5)", "c2": "margin: 6 - 5.5 = 0.5 < 1 (scores 6, 5.5)",
        "d1": "single: the only scored response to its prompt",
        "e1": "unscored: no score", "e2": "unscored: score nan is not finite"}
    assert len(kept) + len(rejected) == len(rows)
    assert op.run_summary() == {"pairs_tied": 1, "pairs_below_margin": 1, "groups": 4, "pairs": 1, "rows_by_reason": {
        "margin": 2, "paired": 1, "single": 1, "tie": 2, "unpaired": 1, "unscored": 2}}


def test_all_pairs_min_margin_zero_and_pickled_state() -> None:
    rows = _rows([("x1", "p", "r1", 3), ("x2", "p", "r2", 1), ("x3", "p", "r3", 3), ("x4", "p", "r1", 1)])
    op = PreferencePairs(pairs="all", min_margin=0)
    kept, rejected = _run(op, [rows[:2], rows[2:]])
    assert [(r["id"], r["pref.chosen_score"], r["pref.rejected_score"]) for r in kept] == [
        ("x1~x2", 3.0, 1.0), ("x3~x2", 3.0, 1.0), ("x3~x4", 3.0, 1.0)]  # x1 vs x4: the same text, identical
    assert rejected == {"x2": "paired: the rejected response of pair x1~x2",  # in pairs, chosen in none
                        "x4": "paired: the rejected response of pair x3~x4"}
    assert op.run_summary()["pairs_tied"] == 2 and op.run_summary()["pairs_identical"] == 1
    clone = pickle.loads(pickle.dumps(op))
    assert clone.process(from_rows(rows[2:])).kept.to_pylist() == [r for r in kept if r["id"].startswith("x3")]


def test_identical_responses_and_ties_in_all_mode_keep_their_reasons() -> None:
    rows = _rows([("y1", "p", "same", 9), ("y2", "p", "same", 2), ("z1", "q", "a", 4), ("z2", "q", "b", 4)])
    kept, rejected = _run(PreferencePairs(pairs="all"), [rows])
    assert kept == []
    assert rejected == {"y1": "identical: the same response scored 9 and 2",
                        "y2": "identical: the same response scored 9 and 2",
                        "z1": "tie: all 2 responses score 4", "z2": "tie: all 2 responses score 4"}


def test_verifier_pass_fail_scores_group_column_and_input_in_the_prompt() -> None:
    rows = [{"id": "v1", "instruction": "Add", "input": "2 and 3", "output": "5", "passed": "pass", "task": "t1"},
            {"id": "v2", "instruction": "Add", "input": "2 and 3", "output": "6", "passed": "fail", "task": "t1"},
            {"id": "v3", "instruction": "Add", "input": "2 and 3", "output": "five", "passed": "PASS", "task": "t1"}]
    kept, rejected = _run(PreferencePairs(score_column="passed", group_column="task"), [rows])
    assert [(r["id"], r["prompt"], r["chosen"], r["rejected"]) for r in kept] == [("v1", "Add\n\n2 and 3", "5", "6")]
    assert rejected["v3"].startswith("unpaired:")
    assert [score_value(v) for v in (True, "fail", " 7.5 ", "n/a", [1])] == [
        (1.0, None), (0.0, None), (7.5, None), (None, "score 'n/a' is not a number or pass/fail"),
        (None, "score of type list is not a number or pass/fail")]


def test_message_prompts_and_a_shard_without_pairs_keep_the_pair_columns() -> None:
    msgs = [{"role": "user", "content": "Hi?"}]
    rows = [{"id": "m1", "messages": msgs, "output": "Hello!", "judge.score": 8.0},
            {"id": "m2", "messages": msgs, "output": "go away", "judge.score": 1.0}]
    op = PreferencePairs(prompt_column="messages")
    kept, _ = _run(op, [rows])
    assert kept[0]["prompt"] == msgs and kept[0]["chosen"] == "Hello!" and kept[0]["rejected"] == "go away"
    empty = op.process(from_rows(rows[1:]))
    assert empty.kept.num_rows == 0 and {"prompt", "chosen", "rejected", "pref.margin"} <= set(empty.kept.column_names)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        registry.create("generate.preference_pairs", {"min_margin": -1})
    with pytest.raises(ValueError):
        registry.create("generate.preference_pairs", {"pairs": "best"})
    assert registry.get("generate.preference_pairs").kind == "global"


def test_a_recipe_scores_with_the_judge_then_pairs_into_preference_output(tmp_path: Path) -> None:
    """Responses scored by judge.score (mock backend), paired across 2-row shards, written as TRL preference data."""
    data = tmp_path / "responses.jsonl"
    lines = []
    for p in range(3):
        for level in ("HIGH", "MID", "LOW"):
            lines.append({"id": f"p{p}-{level}", "instruction": f"Question {p}?", "output": f"RESP_{level} {p}",
                          "license": "MIT"})
    data.write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    judge = {"type": "mock", "responses": {"RESP_HIGH": "Score: 9\nRationale: right.",
                                           "RESP_MID": "Score: 6\nRationale: partly.",
                                           "RESP_LOW": "Score: 2\nRationale: wrong."}}
    recipe = {"name": "prefs", "input": {"path": str(data), "format": "alpaca", "shard_rows": 2},
              "steps": [{"op": "judge.score", "params": {"backend": judge}},
                        {"op": "generate.preference_pairs"}],
              "output": {"format": "preference"}, "executor": {"workers": 1}}
    s = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    (out,) = [p for p in s.outputs if p.suffix == ".jsonl"]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in records] == [
        (f"p{p}-HIGH", f"RESP_HIGH {p}", f"RESP_LOW {p}") for p in range(3)]
    assert records[0]["prompt"] == [{"role": "user", "content": "Question 0?"}]
    meta = records[0]["metadata"]
    assert meta["license"] == "MIT" and meta["judge.score"] == 9.0 and meta["pref.margin"] == 7.0
    assert meta["gristmill.ops"] == ["judge.score@1", "generate.preference_pairs@1"]
    step = s.stats["steps"][1]
    assert step["rows_in"] == 9 and step["rows_out"] == 3 and step["dropped"] == {"paired": 3, "unpaired": 3}
    card = (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "- machine-generated" in card.split("---")[1]  # judged rows: machine-generated annotations
