from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from tests.train.test_sft import chat_rows, make_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    lines = [json.dumps({"messages": m}) for m in chat_rows(10)]
    lines.insert(3, '{"messages": [')
    lines.append(json.dumps({"instruction": "Say hi", "input": "", "output": "hi"}))  # alpaca rows mix in
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["train", "sft", *args])


def test_cli_end_to_end(tiny_model: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _run(str(data), "--model", str(tiny_model), "--max-steps", "3", "--batch-size", "4", "--dtype", "float32",
               "--dev-fraction", "0.2", "--checkpoint-every", "2", "--samples", "1", "--threads", "1",
               "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    assert "chat.jsonl:4" in res.output and "1 lines skipped" in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "train-sft" and config["method"] == "lora" and config["learning_rate"] == 2e-4
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 3 and results["train_rows"] == 9 and results["skipped_lines"] == 1
    assert results["train_tokens"] > 0 and results["tokens_per_s"] > 0 and results["dev_perplexity"] > 1
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "merged" / "config.json").is_file()
    assert (out / "checkpoints" / "step-000002").is_dir()
    html = (out / "report.html").read_text()
    assert "Loss" in html and "Answers of the fine-tuned model" in html
    assert json.loads((out / "bad_rows.json").read_text())[0]["line"] == 4


def test_cli_resume_finishes_the_run(tiny_model: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [str(data), "--model", str(tiny_model), "--batch-size", "2", "--dtype", "float32", "--checkpoint-every",
            "1", "--no-merge", "--samples", "0", "--threads", "1", "--out", str(out), "-q"]
    assert _run(*args, "--max-steps", "2").exit_code == 0
    res = _run(*args, "--max-steps", "4", "--resume")  # a longer schedule from the step-2 checkpoint
    assert res.exit_code == 0, res.output
    assert [p["step"] for p in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if p["series"] == "train"] == [1, 2, 3, 4]


@pytest.mark.parametrize("args, message", [
    (["--method", "bogus"], "--method"),
    (["--dtype", "half"], "--dtype"),
    (["--batch-size", "0"], "--batch-size"),
    (["--dev-fraction", "1.5"], "--dev-fraction"),
    (["--model", "/nonexistent/model"], "--model"),
])
def test_cli_rejects_bad_options(data: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = _run(str(data), "--out", str(tmp_path / "r"), *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "r").exists()


def test_cli_missing_file_and_all_bad_rows(tmp_path: Path) -> None:
    res = _run(str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "missing.jsonl" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no chat here"}\nnot json\n', encoding="utf-8")
    res = _run(str(bad), "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "no usable chat rows (2 lines skipped)" in res.output
