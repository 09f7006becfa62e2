"""bias.rebalance: each strategy reaches the target on a tiny skewed set, deterministically, with reasons and a
summary of what it cost; the same output with 1 and 2 workers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from gristmill.ops.bias.audit import group_mentions, lexicon
from gristmill.ops.bias.columns import COUNTERFACTUAL_OF, REBALANCE_ACTION, REBALANCE_OF
from gristmill.ops.bias.counterfactual import GenderCounterfactual
from gristmill.ops.bias.rebalance import BiasRebalance, Unit, plan_rebalance
from gristmill.records import REASON, from_rows
from gristmill.runner import run_recipe

# 26 male terms in 14 rows, 10 female terms in 6 rows, 2 rows of both, 3 of neither: female share 12 / 40 = 0.3.
TEXTS = (["He told his brother that he was late."] * 4       # 4 male terms each
         + ["The doctor said he was busy."] * 10             # 1 male term each
         + ["She thanked her sister."] * 2                   # 3 female terms each
         + ["The nurse said she was tired."] * 4             # 1 female term each
         + ["He and she talked."] * 2                        # 1 and 1
         + ["The river was cold.", "Rain fell all day.", None])
TOL = 0.02


def _batch(texts: list[str | None] = TEXTS) -> pa.Table:
    return from_rows([{"id": f"d{i:02d}", "text": t} for i, t in enumerate(texts)])


def female_share(rows: list[dict[str, Any]]) -> float:
    lex = lexicon()
    f = m = 0
    for r in rows:
        found = group_mentions(r["text"], lex)
        f, m = f + found["gender:female"], m + found["gender:male"]
    return f / (f + m)


def _fit(op: BiasRebalance, batch: pa.Table, shards: int = 1) -> BiasRebalance:
    op.ensure_setup()
    size = math.ceil(batch.num_rows / shards)
    op.fit([op.summarize(batch.slice(i, size)) for i in range(0, batch.num_rows, size)])
    return op


def _with_counterfactuals(batch: pa.Table) -> pa.Table:
    return GenderCounterfactual().process(batch).kept


def test_the_fixture_is_skewed() -> None:
    assert female_share(_batch().to_pylist()) == pytest.approx(12 / 40)


@pytest.mark.parametrize("order", ["random", "skewed"])
@pytest.mark.parametrize("strategy", ["downsample", "upsample", "counterfactual"])
def test_each_strategy_reaches_the_target_within_tolerance(strategy: str, order: str) -> None:
    batch = _with_counterfactuals(_batch()) if strategy == "counterfactual" else _batch()
    op = _fit(BiasRebalance(strategy=strategy, order=order, tolerance=TOL, target=0.5), batch, shards=3)
    result = op.process(batch)
    kept, rejected = result.kept.to_pylist(), result.rejected.to_pylist() if result.rejected else []
    s = op.run_summary()
    assert s["reached"] is True and s["share_before"] == 0.3
    assert abs(female_share(kept) - 0.5) <= TOL
    assert s["share_after"] == pytest.approx(female_share(kept), abs=1e-4)
    assert 0.5 <= s["share_after"] <= 0.5 + TOL  # approached from below, stopped once reached
    if strategy == "downsample":
        assert not any(r["id"].endswith("~cf") for r in kept) and len(kept) + len(rejected) == len(TEXTS)
        assert s["dropped"]["rows"] == len(rejected) > 0 and s["added"]["rows"] == 0
        assert set(s["dropped"]["rows_by_majority_group"]) == {"male"}
        assert s["after"]["rows"] == len(kept) and s["cost"]["rows_dropped_pct"] == round(100 * len(rejected) / 25, 2)
    elif strategy == "upsample":
        copies = [r for r in kept if r[REBALANCE_OF] is not None]
        assert rejected == [] and len(kept) == len(TEXTS) + len(copies) and s["added"]["rows"] == len(copies)
        assert all(r["id"].startswith(r[REBALANCE_OF] + "~rb") for r in copies)
        assert all(female_share([r]) == 1 for r in copies)  # only female-leaning rows are repeated
        assert s["added"]["chars"] == sum(len(r["text"]) for r in copies)
    else:
        selected = [r for r in kept if r[COUNTERFACTUAL_OF] is not None]
        assert len([r for r in kept if r[COUNTERFACTUAL_OF] is None]) == len(TEXTS)  # every original is kept
        assert s["added"]["rows"] == len(selected) > 0 and s["candidates"]["selected"] == len(selected)
        assert s["candidates"]["rows"] == len(selected) + len(rejected)
        assert all(r[REASON].startswith("rebalance: counterfactual copy not selected") for r in rejected)
        assert s["dropped"]["rows"] == 0  # unselected candidates were never data


def test_downsample_reasons_and_the_over_represented_direction() -> None:
    op = _fit(BiasRebalance(tolerance=TOL), _batch())
    reasons = set(op.process(_batch()).rejected.column(REASON).to_pylist())
    assert reasons == {"rebalance: male-heavy row dropped to reach female share 0.50"}
    # female share 0.3 -> 0.15: female-leaning rows go
    op = _fit(BiasRebalance(target=0.15, tolerance=TOL), _batch())
    result = op.process(_batch())
    assert set(result.rejected.column(REASON).to_pylist()) == {
        "rebalance: female-heavy row dropped to reach female share 0.15"}
    assert abs(female_share(result.kept.to_pylist()) - 0.15) <= TOL


def test_counterfactual_reasons_name_why_a_copy_was_not_selected() -> None:
    batch = _with_counterfactuals(_batch())
    op = _fit(BiasRebalance(strategy="counterfactual", tolerance=TOL), batch)
    reasons = set(op.process(batch).rejected.column(REASON).to_pylist())
    assert "rebalance: counterfactual copy not selected: it would move the female share away from 0.50" in reasons
    assert "rebalance: counterfactual copy not selected: not needed" in reasons


def test_deterministic_and_seeded() -> None:
    def dropped(seed: int, shards: int = 1) -> list[str]:
        op = _fit(BiasRebalance(seed=seed, tolerance=TOL), _batch(), shards)
        return op.process(_batch()).rejected.column("id").to_pylist()

    assert dropped(0) == dropped(0) == dropped(0, shards=4)
    assert len({tuple(dropped(seed)) for seed in range(6)}) > 1  # another seed, other rows


def test_dry_run_changes_nothing_and_marks_what_it_would_do() -> None:
    for strategy in ("downsample", "upsample"):
        real = _fit(BiasRebalance(strategy=strategy, tolerance=TOL), _batch())
        dry = _fit(BiasRebalance(strategy=strategy, tolerance=TOL, dry_run=True), _batch())
        out = dry.process(_batch())
        assert out.rejected is None and out.kept.num_rows == len(TEXTS)
        actions = [a for a in out.kept.column(REBALANCE_ACTION).to_pylist() if a]
        summary, dry_summary = real.run_summary(), dry.run_summary()
        assert {k: v for k, v in dry_summary.items() if k != "dry_run"} == {
            k: v for k, v in summary.items() if k != "dry_run"}
        if strategy == "downsample":
            assert len(actions) == summary["dropped"]["rows"] and all(a.startswith("drop: male-heavy") for a in actions)
        else:
            assert sum(int(a.split(": ")[1]) for a in actions) == summary["added"]["rows"]


def test_unreachable_target_changes_nothing() -> None:
    op = _fit(BiasRebalance(strategy="upsample", max_copies=1, tolerance=TOL), _batch())
    result = op.process(_batch())
    s = op.run_summary()
    assert result.kept.num_rows == len(TEXTS) and s["reached"] is False and s["share_after"] == s["share_before"]
    assert s["note"].startswith("unreachable: with every qualifying row the female share would be 0.4400; nothing changed")  # 22 / 50


def test_plan_by_hand() -> None:
    # (female, male) terms: a (0, 3), b (0, 1), c (1, 3), d (1, 0); female share 2 / 9. Target 0.5:
    # c = 0.5 f - 0.5 m is -1.5, -0.5, -1, +0.5.
    units = [Unit("a", [0, 3, 0]), Unit("b", [0, 1, 0]), Unit("c", [1, 3, 0]), Unit("d", [1, 0, 0])]
    groups = ("female", "male", "trans_nonbinary")
    skewed = plan_rebalance(units, 2, 7, 0, groups, 0.5, "downsample", "skewed", 0, 0.0, 1)
    assert skewed.drop == {"a": "", "c": ""} and skewed.share_after == 0.5 and skewed.reached  # a, c: (1, 1)
    up = plan_rebalance(units, 2, 7, 0, groups, 0.5, "upsample", "random", 0, 0.0, 5)
    assert up.copies == {"d": 5} and up.share_after == 0.5  # 2 + 5 female, 7 male
    # a row that would carry the share past the target by more than the tolerance is skipped
    past = plan_rebalance(units, 2, 7, 0, groups, 0.4, "downsample", "skewed", 0, 0.01, 1)
    assert past.drop == {"a": "", "b": ""} and past.share_after == 0.4  # a: 2/6; c: 1/2 > 0.41, skipped; b: 2/5
    assert plan_rebalance(units, 2, 7, 0, groups, 0.22, "downsample", "random", 0, 0.01, 1).drop == {}
    assert plan_rebalance([], 0, 0, 0, groups, 0.5, "downsample", "random", 0, 0.0, 1).note.startswith("no terms")


def test_params_name_a_known_axis_and_group() -> None:
    with pytest.raises(ValidationError, match="unknown axis 'genre'"):
        BiasRebalance(axis="genre")
    with pytest.raises(ValidationError, match="unknown gender group 'woman'; known: female, male"):
        BiasRebalance(group="woman")
    assert BiasRebalance(axis="religion", group="jewish").reads() == ["text"]
    assert BiasRebalance(strategy="counterfactual").reads() == ["text", COUNTERFACTUAL_OF]


def _recipe(path: Path, strategy: str, workers: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"op": "bias.audit"},
                                   {"op": "bias.rebalance", "params": {"strategy": strategy, "tolerance": TOL}}]
    if strategy == "counterfactual":
        steps.insert(0, {"op": "bias.counterfactual"})
    return {"name": f"rb-{strategy}-{workers}", "input": {"path": str(path), "format": "jsonl", "shard_rows": 4},
            "steps": steps, "gates": ["bias.gender.female_share >= 0.48", "dropped.rebalance >= 0"],
            "output": {"format": "parquet"}, "executor": {"workers": workers}}


@pytest.mark.parametrize("strategy", ["downsample", "upsample", "counterfactual"])
def test_the_same_output_with_one_and_two_workers(tmp_path: Path, strategy: str) -> None:
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _batch().to_pylist() if r["text"]), encoding="utf-8")
    outputs = []
    for workers in (1, 2):
        s = run_recipe(_recipe(data, strategy, workers), runs_dir=tmp_path / "runs", progress=False, report=False)
        assert s.audit["passed"], s.audit["gates"]
        rows = pq.read_table(s.outputs[0]).to_pylist()
        step = len(_recipe(data, strategy, workers)["steps"]) - 1
        summary = json.loads((s.run_dir / "summaries" / f"{step:02d}-bias.rebalance.json").read_text())
        outputs.append((rows, summary))
    assert outputs[0] == outputs[1]
    assert abs(outputs[0][1]["share_after"] - 0.5) <= TOL
