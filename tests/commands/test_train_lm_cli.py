from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.train.lm import TrainedLM, split_documents
from tests.train.test_lm import corpus

runner = CliRunner()
TINY = ["--steps", "30", "--context", "24", "--layers", "1", "--heads", "2", "--dim", "16", "--vocab-size", "280",
        "--batch-size", "4", "--eval-every", "10", "--checkpoint-every", "10", "--threads", "1", "--quiet"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """JSONL documents with one malformed line and one record without text."""
    lines = [json.dumps({"text": d}) for d in corpus(20)]
    lines.insert(3, '{"text": "unterminated')
    lines.insert(7, json.dumps({"body": "no text field"}))
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_train_lm_then_generate_end_to_end(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "lm", "--data", str(data), "--out", str(out), "--dev-fraction", "0.2", *TINY])
    assert res.exit_code == 0, res.output
    assert "docs.jsonl:4" in res.output  # the malformed line is named, and skipped
    results = json.loads((out / "results.json").read_text())
    assert math.isfinite(results["dev_perplexity"]) and 1 < results["dev_perplexity"] < 280
    assert results["dev_documents"] == 4 and results["train_documents"] == 16
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "train-lm" and config["n_layer"] == 1 and config["skipped_records"] == 2
    assert TrainedLM.load(out / "model").config.d_model == 16
    html = (out / "report.html").read_text()
    assert "beam 4" in html and "top-p 0.9" in html and "perplexity" in html

    # --resume of a finished run trains nothing more and repeats no logged point
    res = runner.invoke(app, ["train", "lm", "--data", str(data), "--out", str(out), "--dev-fraction", "0.2",
                              "--resume", *TINY])
    assert res.exit_code == 0, res.output
    dev_steps = [p["step"] for p in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                 if p["series"] == "dev"]
    assert dev_steps == [10, 20, 30]
    # a txt file is cut into documents on blank lines
    txt = tmp_path / "plain.txt"
    txt.write_text("\n\n".join(corpus(12)), encoding="utf-8")
    res = runner.invoke(app, ["train", "lm", "--data", str(txt), "--out", str(tmp_path / "txt"), *TINY,
                              "--steps", "5"])
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "txt" / "results.json").read_text())
    assert got["train_documents"] + got["dev_documents"] == len(split_documents(txt.read_text())) == 2

    gen = tmp_path / "gen.jsonl"
    res = runner.invoke(app, ["generate", "--model", str(out), "--prompt", "Anna", "--prompt", "", "--n", "3",
                              "--top-k", "5", "--max-new-tokens", "6", "--seed", "1", "--out-file", str(gen)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in gen.read_text().splitlines()]
    assert [(r["prompt"], r["sample"]) for r in rows] == [("Anna", 0), ("Anna", 1), ("Anna", 2), ("", 0), ("", 1),
                                                          ("", 2)]
    assert all(r["strategy"] == "sample" and r["top_k"] == 5 for r in rows)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Bram likes\nCleo\n", encoding="utf-8")
    res = runner.invoke(app, ["generate", "--model", str(out / "model"), "--prompts", str(prompts),
                              "--strategy", "beam", "--beams", "2", "--max-new-tokens", "5"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["prompt"] for x in res.stdout.splitlines()] == ["Bram likes", "Cleo"]


@pytest.mark.parametrize(("args", "message"), [
    (["train", "lm", "--data", "DATA", "--dim", "30", "--heads", "4"], "--dim (30) must be a multiple of --heads"),
    (["train", "lm", "--data", "missing.txt"], "--data: missing.txt"),
    (["train", "lm", "--data", "DATA", "--dev-fraction", "1.5"], "--dev-fraction"),
    (["train", "lm", "--data", "DATA", "--vocab-size", "100"], "--vocab-size"),
    (["generate", "--model", "MODEL", "--temperature", "0"], "--temperature"),
    (["generate", "--model", "MODEL", "--top-p", "2"], "--top-p"),
    (["generate", "--model", "MODEL", "--strategy", "nucleus"], "--strategy"),
    (["generate", "--model", "MODEL", "--strategy", "greedy", "--n", "2"], "--n 2"),
    (["generate", "--model", "nowhere"], "--model: nowhere"),
])
def test_bad_options_exit_2_with_a_located_message(tmp_path: Path, data: Path, args: list[str],
                                                   message: str) -> None:
    model = tmp_path / "m"
    model.mkdir()
    args = [str(data) if a == "DATA" else str(model) if a == "MODEL" else a for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_resume_with_another_shape_exits_2_and_changes_nothing(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "run"
    base = ["train", "lm", "--data", str(data), "--out", str(out), *TINY, "--steps", "10"]
    assert runner.invoke(app, base).exit_code == 0
    config = (out / "config.json").read_bytes()
    res = runner.invoke(app, [*base, "--layers", "2", "--resume"])
    assert res.exit_code == 2, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot resume from" in error[0] and "shape changed (n_layer 1 -> 2)" in error[0]
    assert (out / "config.json").read_bytes() == config
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-000010"]


def test_out_directory_gristmill_did_not_make_is_refused_untouched(tmp_path: Path, data: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "checkpoints").mkdir()
    (model / "checkpoints" / "keep.bin").write_bytes(b"weights")
    res = runner.invoke(app, ["train", "lm", "--data", str(data), "--out", str(model), *TINY])
    assert res.exit_code == 2 and "was not made by gristmill" in res.output
    assert (model / "config.json").read_text() == '{"model_type": "llama"}'
    assert (model / "checkpoints" / "keep.bin").read_bytes() == b"weights"
    assert sorted(p.name for p in model.iterdir()) == ["checkpoints", "config.json"]
