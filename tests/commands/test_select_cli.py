from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from tests.select.conftest import tiny_lm_dir  # noqa: F401 (fixture)
from tests.select.data import write_instructions


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_instructions(tmp_path / "d.jsonl")


def _run(*args: str):
    return CliRunner().invoke(app, ["select", *args])


def test_cli_random_end_to_end(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _run("--data", str(data), "--budget", "5", "--strategy", "random", "--out", str(out), "--seed", "3", "-q")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    assert "1 malformed records skipped" in res.output
    assert "d.jsonl:4" in res.output  # the malformed line, located
    results = json.loads((out / "results.json").read_text())
    assert results["selected"] == 5 and results["candidates"] == 30


def test_cli_judge_takes_the_best_scores(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "j"
    res = _run("--data", str(data), "--budget", "3", "--strategy", "judge", "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    assert [r["select.score"] for r in rows] == [10, 10, 10]


def test_cli_bandit_ucb_over_a_column(data: Path, tmp_path: Path, tiny_lm_dir: Path) -> None:  # noqa: F811
    lm = tiny_lm_dir
    out = tmp_path / "b"
    res = _run("--data", str(data), "--budget", "6", "--strategy", "bandit-ucb", "--out", str(out),
               "--arm-field", "topic", "--learner-model", str(lm), "--batch-size", "2", "--dev-size", "4",
               "--max-tokens", "32", "-q")
    assert res.exit_code == 0, res.output
    pulls = [json.loads(x) for x in (out / "pulls.jsonl").read_text().splitlines()]
    assert [p["round"] for p in pulls] == [0, 1, 2]
    assert sorted(p["arm_name"] for p in pulls) == ["colour", "math", "story"]  # UCB1 tries every arm first
    assert all("ucb" in p for p in pulls)


@pytest.mark.parametrize("args, needle", [
    (["--budget", "0", "--strategy", "random"], "--budget"),
    (["--budget", "3", "--strategy", "best"], "--strategy"),
    (["--budget", "3", "--strategy", "judge", "--score-field", "nope"], "nope"),
    (["--budget", "3", "--strategy", "bandit-exp3", "--arm-field", "nope"], "--arm-field nope"),
])
def test_cli_bad_options_exit_2(args: list[str], needle: str, data: Path, tmp_path: Path) -> None:
    res = _run("--data", str(data), "--out", str(tmp_path / "o"), "-q", *args)
    assert res.exit_code == 2
    assert needle in res.output
    assert not (tmp_path / "o" / "subset.jsonl").exists()


def test_cli_missing_data_file(tmp_path: Path) -> None:
    res = _run("--data", str(tmp_path / "none.jsonl"), "--budget", "3", "--strategy", "random")
    assert res.exit_code == 2 and "--data" in res.output and "none.jsonl" in res.output


def test_cli_rejects_an_unknown_reward(data: Path, tmp_path: Path) -> None:
    res = _run("--data", str(data), "--budget", "3", "--strategy", "bandit-ucb", "--reward", "loss",
               "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "--reward" in res.output
