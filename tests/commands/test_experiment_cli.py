from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.experiments.collapse import cell_path

TINY = ["--steps", "2", "--n-layer", "1", "--d-model", "16", "--n-head", "2", "--context", "16", "--batch-size", "4",
        "--vocab-size", "300", "--max-new-tokens", "8", "--doc-chars", "150", "--quiet"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rng = random.Random(0)
    vocab = "she he her his king queen nurse doctor lady lord said the a".split()
    p = tmp_path / "c.txt"
    p.write_text("\n".join(" ".join(rng.choice(vocab) for _ in range(9)) for _ in range(80)), encoding="utf-8")
    return p


def test_collapse_cli_writes_report_and_resumes(corpus: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = ["experiment", "collapse", "--data", str(corpus), "--generations", "2", "--regimes", "replace,keep-real",
            "--out", str(out), *TINY]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "report.html").is_file() and "held-out real perplexity" in r.output
    html = (out / "report.html").read_text()
    assert "replace: per generation" in html and "tail coverage by generation" in html
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "experiment-collapse" and [x["regime"] for x in cfg["conditions"]] == ["replace", "keep-real"]
    r = CliRunner().invoke(app, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert len(list((out / "cells").rglob("gen*.json"))) == 4
    r = CliRunner().invoke(app, [*args, "--resume", "--keep-real", "0.5"])
    assert r.exit_code == 2 and "keep_real" in r.output


def test_bias_amplification_cli(corpus: Path, tmp_path: Path):
    out = tmp_path / "bias"
    r = CliRunner().invoke(app, ["experiment", "bias-amplification", "--data", str(corpus), "--generations", "2",
                                 "--prompt-words", "3", "--out", str(out), *TINY])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").is_file() and "female share" in r.output
    assert json.loads((out / "config.json").read_text())["kind"] == "experiment-bias-amplification"
    results = json.loads((out / "results.json").read_text())
    assert set(results["by_condition"]) == {"greedy", "sample"} and results["real_data"]["female_terms"] > 0
    assert "female_share" in results["by_condition"]["greedy"]["1"]
    # both strategies continue the same prompts (the first 3 words of real documents)
    docs = {}
    for cond in ("greedy", "sample"):
        lines = cell_path(out, cond, 0, 1, ".jsonl").read_text().splitlines()
        docs[cond] = [json.loads(x) for x in lines]
    assert [d["prompt"] for d in docs["greedy"]] == [d["prompt"] for d in docs["sample"]]
    assert all(len(d["prompt"].split()) == 3 and d["doc"].startswith(d["prompt"]) for d in docs["greedy"])


@pytest.mark.parametrize("extra, message", [
    (["--regimes", "replace,mix"], "--regimes"),
    (["--seeds", "0,x"], "--seeds"),
    (["--strategy", "greedy"], "--prompt-words"),
    (["--strategy", "nucleus"], "--strategy"),
    (["--d-model", "30", "--n-head", "4"], "--d-model"),
    (["--temperature", "0"], "temperature"),
    (["--data", "/nonexistent.txt"], "--data"),
])
def test_collapse_cli_rejects_bad_options_before_work(extra, message, tmp_path: Path, corpus: Path):
    out = tmp_path / "bad"
    r = CliRunner().invoke(app, ["experiment", "collapse", "--data", str(corpus), "--out", str(out), *TINY, *extra])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not out.exists()
