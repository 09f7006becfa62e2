"""The packaged models behind ``gristmill select`` (slow: SmolLM2 and MiniLM load for real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.select.runner import SelectConfig, run_selection
from tests.conftest import SHARED_DATA

SEEDS = SHARED_DATA / "self_instruct_seed_tasks.jsonl"


@pytest.mark.slow
def test_ifd_with_smollm2_on_seed_tasks(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in SEEDS.read_text().splitlines()[:4]]
    data = tmp_path / "seeds.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "ifd"
    res = run_selection(SelectConfig(data=str(data), budget=3, strategy="ifd", out=str(out), format="self_instruct",
                                     drop_ifd_over_1=False, max_tokens=128))
    scores = [json.loads(x)["score"] for x in (out / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 4 and all(0 < s < 5 for s in scores)
    # an instruction makes its own answer easier to predict for most tasks
    assert sum(s < 1 for s in scores) >= 3
    assert res["selected"] == 3


@pytest.mark.slow
def test_bandit_with_smollm2_learner(tmp_path: Path) -> None:
    """Arms: classification vs open tasks (the seed file's is_classification column)."""
    every = [json.loads(x) for x in SEEDS.read_text().splitlines()]
    rows = [r for r in every if r["is_classification"]][:4] + [r for r in every if not r["is_classification"]][:4]
    data = tmp_path / "seeds.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "b"
    res = run_selection(SelectConfig(data=str(data), budget=2, strategy="bandit-ucb", out=str(out),
                                     format="self_instruct", arm_field="is_classification", batch_size=1, dev_size=2, max_tokens=24))
    pulls = [json.loads(x) for x in (out / "pulls.jsonl").read_text().splitlines()]
    assert len(pulls) == 2 and {p["arm_name"] for p in pulls} == {"True", "False"}
    assert res["dev_loss_start"] > 0 and res["selected"] == 2
