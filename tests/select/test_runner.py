from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.select.runner import SelectConfig, SelectionError, run_selection
from tests.select.data import write_instructions


def _subset(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_instructions(tmp_path / "d.jsonl")


@pytest.mark.parametrize("strategy", ["random", "quality", "judge"])
def test_budget_respected_ids_unique(strategy: str, data: Path, tmp_path: Path) -> None:
    out = tmp_path / strategy
    res = run_selection(SelectConfig(data=str(data), budget=7, strategy=strategy, out=str(out), seed=1))
    rows = _subset(out)
    assert len(rows) == res["selected"] == 7 and len({r["id"] for r in rows}) == 7
    assert res["malformed_records"] == 1 and res["rows_read"] == 30
    assert [r["select.rank"] for r in rows] == list(range(7))
    assert (out / "report.html").is_file() and json.loads((out / "config.json").read_text())["kind"] == "select"
    if strategy == "judge":
        assert sorted(r["judge.score"] for r in rows) == [9, 9, 9, 10, 10, 10, 10][-7:] or \
            min(r["judge.score"] for r in rows) >= 8


def test_judge_without_the_column_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "plain.jsonl"
    p.write_text(json.dumps({"id": "a", "instruction": "x", "output": "y"}) + "\n")
    with pytest.raises(SelectionError, match="judge.score"):
        run_selection(SelectConfig(data=str(p), budget=1, strategy="judge", out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_quality_heuristic_prefers_long_varied_answers(tmp_path: Path) -> None:
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [
        {"id": "short", "instruction": "a", "output": "ok"},
        {"id": "rep", "instruction": "b", "output": "yes yes yes yes yes yes yes yes"},
        {"id": "good", "instruction": "c", "output": "A careful answer explains each step and gives a reason."},
    ]) + "\n")
    res = run_selection(SelectConfig(data=str(p), budget=1, strategy="quality", out=str(tmp_path / "o")))
    assert _subset(tmp_path / "o")[0]["id"] == "good" and "heuristic" in res["scoring"]


def test_kcenter_with_a_tiny_encoder(data: Path, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    out = tmp_path / "kc"
    run_selection(SelectConfig(data=str(data), budget=5, strategy="kcenter", out=str(out),
                               embed_model=str(tiny_encoder_dir)))
    assert len({r["id"] for r in _subset(out)}) == 5


def test_ifd_scores_written(data: Path, tmp_path: Path, tiny_lm_dir: Path) -> None:
    out = tmp_path / "ifd"
    res = run_selection(SelectConfig(data=str(data), budget=4, strategy="ifd", out=str(out), lm=str(tiny_lm_dir),
                                     drop_ifd_over_1=False))
    rows = _subset(out)
    scores = [json.loads(x)["score"] for x in (out / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 30 and all(s > 0 for s in scores)
    assert [r["select.score"] for r in rows] == sorted(scores, reverse=True)[:4]
    assert "ifd_over_1" in res


def test_bandit_writes_pulls(data: Path, tmp_path: Path, tiny_lm_dir: Path) -> None:
    out = tmp_path / "b"
    res = run_selection(SelectConfig(data=str(data), budget=10, strategy="bandit-exp3", out=str(out),
                                     arm_field="topic", learner_model=str(tiny_lm_dir), learner_dtype="float32",
                                     learner_lr=1e-3, batch_size=3, dev_size=6, max_tokens=32))
    pulls = [json.loads(x) for x in (out / "pulls.jsonl").read_text().splitlines()]
    assert len(pulls) == res["rounds"] == 4  # 3 + 3 + 3 + 1 rows
    assert sum(p["n_rows"] for p in pulls) == 10
    for p in pulls:
        assert set(p) >= {"round", "arm", "arm_name", "reward", "raw_reward", "counts", "probabilities",
                          "dev_loss_before", "dev_loss_after"}
        assert sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    rows = _subset(out)
    assert len({r["id"] for r in rows}) == 10 and res["dev_rows"] == 6
    assert {p["arm_name"] for p in pulls} <= {"math", "colour", "story"}
    report = (out / "report.html").read_text()
    assert "Pulls per arm" in report and "EXP3 pull probabilities" in report


def test_self_instruct_seed_file_is_read_without_format(tmp_path):
    import json

    from gristmill.select.runner import read_rows

    f = tmp_path / "seeds.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"s{i}", "name": "n", "instruction": f"Task {i}?",
                                       "instances": [{"input": "", "output": f"Answer {i}."}],
                                       "is_classification": False}) for i in range(3)) + "\n")
    rows, bad = read_rows(f)
    assert len(rows) == 3 and not bad
