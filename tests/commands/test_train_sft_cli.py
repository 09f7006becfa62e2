from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.train.checkpoint import complete_checkpoints
from tests.processes import session_members
from tests.train.test_sft import chat_rows, make_tiny_model

# torch spin-waits badly with more than one thread on a shared machine
ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


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
    assert config["kind"] == "train-sft" and config["method"] == "lora" and config["lr"] == 2e-4
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


def test_cli_resume_with_another_lora_rank_exits_2(tiny_model: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [str(data), "--model", str(tiny_model), "--batch-size", "2", "--dtype", "float32", "--checkpoint-every",
            "2", "--no-merge", "--samples", "0", "--threads", "1", "--out", str(out), "-q", "--max-steps", "2"]
    assert _run(*args).exit_code == 0
    config = (out / "config.json").read_bytes()
    res = _run(*args, "--resume", "--lora-r", "4")
    assert res.exit_code == 2, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot resume from" in error[0] and "shape changed (lora_r 8 -> 4)" in error[0]
    other = make_tiny_model(tmp_path / "other")  # another model: refused as well
    res = _run(*[a if a != str(tiny_model) else str(other) for a in args], "--resume")
    assert res.exit_code == 2 and f"model {tiny_model} -> {other}" in res.output
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000002"]  # left as it was
    assert (out / "config.json").read_bytes() == config


# -- a real process killed with SIGKILL ------------------------------------------------------------


def kill_after_first_checkpoint(cmd: list[str], run_dir: Path, timeout: float = 120) -> float:
    """Start ``cmd``, SIGKILL the process itself (not its group) once ``run_dir`` holds a complete
    checkpoint, check that nothing it started survives; returns the time of the kill."""
    with open(run_dir.parent / f"{run_dir.name}.killed.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ONE_THREAD_ENV, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not complete_checkpoints(run_dir / "checkpoints"):
            if proc.poll() is not None:
                pytest.fail(f"the run ended (exit {proc.returncode}) before its first checkpoint")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint within the time limit")
            time.sleep(0.005)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, "the run finished before it was killed; give it more steps"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    assert session_members(proc.pid) == [], "a child of the killed run survived it"
    return killed_at


def run_to_end(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, env=ONE_THREAD_ENV, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def train_points(run_dir: Path) -> list[dict]:
    return [p for p in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if p["series"] == "train"]


def assert_resumed_like_uninterrupted(clean: Path, resumed: Path, stderr: str, killed_at: float) -> int:
    """The resumed run started at the newest complete checkpoint left by the kill (the points up to it
    were logged before the kill, the ones after it by the resumed run, none twice) and its loss curve is
    the uninterrupted run's. Returns the step it resumed from."""
    import re

    match = re.search(r"resuming from step (\d+) ", stderr)
    assert match, stderr
    step = int(match.group(1))
    assert step > 0
    a, b = train_points(clean), train_points(resumed)
    assert [p["step"] for p in b] == [p["step"] for p in a]  # every step once, none twice
    assert all((p["time"] <= killed_at + 0.01) == (p["step"] <= step) for p in b), "points of the killed run were redone"
    assert [p["loss"] for p in b] == [p["loss"] for p in a]  # bitwise: same batches, weights, RNG, 1 thread
    return step


@pytest.mark.slow
def test_cli_sigkill_after_a_checkpoint_then_resume_equals_an_uninterrupted_run(tiny_model: Path,
                                                                                tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": m}) + "\n" for m in chat_rows(40)), encoding="utf-8")
    cmd = [sys.executable, "-m", "gristmill", "train", "sft", str(data), "--model", str(tiny_model), "--max-steps",
           "30", "--batch-size", "2", "--dtype", "float32", "--checkpoint-every", "3", "--lora-dropout", "0.1",
           "--no-merge", "--samples", "0", "--threads", "1", "--dev-fraction", "0.1", "-q"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run_to_end([*cmd, "--out", str(clean)])
    killed_at = kill_after_first_checkpoint([*cmd, "--out", str(killed)], killed)
    left = complete_checkpoints(killed / "checkpoints")[-1][0]
    assert left < 30 and not (killed / "adapter").exists()
    resumed = run_to_end([*cmd, "--out", str(killed), "--resume"])
    assert assert_resumed_like_uninterrupted(clean, killed, resumed.stderr, killed_at) == left
    r_clean, r_resumed = (json.loads((d / "results.json").read_text()) for d in (clean, killed))
    for key in ("steps", "train_tokens", "train_label_tokens", "train_rows", "dev_loss", "final_train_loss"):
        assert r_resumed[key] == r_clean[key], key
    assert (killed / "adapter" / "adapter_model.safetensors").read_bytes() == \
        (clean / "adapter" / "adapter_model.safetensors").read_bytes()
