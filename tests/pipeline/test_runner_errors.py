"""The runner's error paths: an operator raising mid-run, an interrupt, a killed main process
whose workers must not survive it, a full disk, a read-only output path (issue 15, items 6, 9, 10)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pydantic import Field
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.ops.base import Mapper, Params
from gristmill.pipeline.ownership import RunDirError
from gristmill.pipeline.worker import StepFailed
from gristmill.recipe import Step, load_recipe
from gristmill.runner import run_recipe
from tests.conftest import recipe_dict
from tests.pipeline.test_kill_resume import make_corpus, snapshot
from tests.processes import session_members

cli = CliRunner()


class Boom(Mapper):
    """Test operator: logs each shard's first id to ``log``; raises on ``bad_id`` while ``trigger`` exists."""

    name = "test.boom"

    class Params(Params):
        log: str
        trigger: str
        bad_id: str = Field("d30")

    def map(self, batch: pa.Table) -> pa.Table:
        ids = batch.column("id").to_pylist()
        with open(self.params.log, "a", encoding="utf-8") as f:
            f.write(f"{ids[0] if ids else '-'}\n")
        if self.params.bad_id in ids and Path(self.params.trigger).exists():
            raise ValueError(f"cannot handle {self.params.bad_id}")
        return batch


def boom_recipe(docs_file: Path, tmp_path: Path) -> Any:
    recipe = load_recipe(recipe_dict(docs_file))
    op = Boom(log=str(tmp_path / "log.txt"), trigger=str(tmp_path / "trigger"))
    recipe.steps[1] = Step(1, op)
    return recipe


def test_an_operator_raising_mid_run_names_step_and_shard_and_the_rerun_resumes(
        tmp_path: Path, docs_file: Path) -> None:
    (tmp_path / "trigger").touch()
    runs = tmp_path / "runs"
    with pytest.raises(StepFailed, match=r"01-test\.boom failed on shard-00004: ValueError: cannot handle d30"):
        run_recipe(boom_recipe(docs_file, tmp_path), runs_dir=runs, progress=False)
    seen_first = (tmp_path / "log.txt").read_text().split()
    assert "d28" in seen_first  # shard 4 starts at d28 (a broken line and shard_rows 7 before it)
    assert (runs / "t" / "INCOMPLETE").is_file() and not (runs / "t" / "stats.json").exists()
    (tmp_path / "trigger").unlink()  # "the fix"
    (tmp_path / "log.txt").unlink()
    s = run_recipe(boom_recipe(docs_file, tmp_path), runs_dir=runs, progress=False)
    seen_again = (tmp_path / "log.txt").read_text().split()
    assert seen_again == ["d28"], "only the failed shard is redone; the committed ones are kept"
    assert s.stats["output"]["rows"] > 0
    assert not (runs / "t" / "INCOMPLETE").exists()


def test_cli_operator_failure_is_one_line_exit_1(tmp_path: Path, docs_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "trigger").touch()
    import gristmill.runner as runner_mod

    monkeypatch.setattr(runner_mod, "load_recipe", lambda *a, **k: boom_recipe(docs_file, tmp_path))
    import gristmill.api.runs as api_runs
    import gristmill.cli as cli_mod

    for module in (cli_mod, api_runs):  # the CLI validates, then runs through the API (gristmill.run)
        monkeypatch.setattr(module, "load_recipe", lambda *a, **k: boom_recipe(docs_file, tmp_path))
    res = cli.invoke(app, ["run", str(tmp_path / "any.yaml"), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "shard-00004" in lines[0] and "Traceback" not in res.output


# ---- real processes -------------------------------------------------------------------------

def _recipe_file(tmp_path: Path, rows: int = 4000, shard_rows: int = 150) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    make_corpus(corpus, rows)
    data = recipe_dict(corpus, executor={"workers": 2})
    data["input"]["shard_rows"] = shard_rows
    data["steps"][3]["params"]["label_column"] = "label"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    return recipe


def _start(recipe: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gristmill", "run", str(recipe), "--runs-dir", str(runs), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_workers(proc: subprocess.Popen, n: int, timeout: float = 60) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        others = [p for p in session_members(proc.pid) if p != proc.pid]
        if len(others) >= n:
            return others
        time.sleep(0.05)
    raise AssertionError(f"the run did not start {n} child processes in time (exit {proc.poll()})")


def test_sigkill_of_the_main_process_leaves_no_child_alive(tmp_path: Path) -> None:
    recipe = _recipe_file(tmp_path, rows=20000)
    proc = _start(recipe, tmp_path / "runs")
    try:
        children = _wait_for_workers(proc, 3)  # forkserver and two workers at least
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: its children must follow
        proc.wait(timeout=30)
        end = time.monotonic() + 15
        while session_members(proc.pid) and time.monotonic() < end:
            time.sleep(0.1)
        left = session_members(proc.pid)
        assert not left, f"children of the killed run still alive: {left} (children were {children})"
    finally:
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_sigint_exits_130_and_the_same_command_resumes(tmp_path: Path) -> None:
    recipe = _recipe_file(tmp_path, rows=6000)
    clean = _start(recipe, tmp_path / "clean")
    assert clean.wait(timeout=300) == 0, clean.stderr.read()
    runs = tmp_path / "runs"
    proc = _start(recipe, runs)
    _wait_for_workers(proc, 3)  # the pool starts with the first of 40 shards: the run is far from done
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    end = time.monotonic() + 15
    while session_members(proc.pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert not session_members(proc.pid)
    again = _start(recipe, runs)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert snapshot(runs / "t") == snapshot(tmp_path / "clean" / "t")


# ---- disks ----------------------------------------------------------------------------------

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="a full or read-only disk is a tmpfs mounted for the "
                                "test, and mounting needs root (this machine and its CI run as root)")


@pytest.fixture
def mount_tmpfs(tmp_path: Path):
    mounted: list[Path] = []

    def mount(where: Path, options: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if res.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs as root: {res.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("workers,size", [(1, "256k"), (2, "1m")])
@NEEDS_ROOT
def test_full_disk_is_one_line_exit_1_and_the_run_resumes_after(tmp_path: Path, mount_tmpfs: Any,
                                                                workers: int, size: str) -> None:
    corpus = tmp_path / "big.jsonl"
    make_corpus(corpus, 3000)
    runs = mount_tmpfs(tmp_path / "small", f"size={size}")
    recipe = tmp_path / "r.yaml"
    data = recipe_dict(corpus, executor={"workers": workers})
    data["input"]["shard_rows"] = 200
    recipe.write_text(yaml.safe_dump(data))
    res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "-q"])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no space left on device" in lines[0], res.output
    assert "Traceback" not in res.output
    subprocess.run(["mount", "-o", "remount,size=64m", str(runs)], check=True)
    res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads((runs / "t" / "stats.json").read_text())["input"]["rows"] == 3000 - 8


@NEEDS_ROOT
def test_read_only_output_path_is_refused_before_work(tmp_path: Path, docs_file: Path, mount_tmpfs: Any) -> None:
    ro = mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    data = recipe_dict(docs_file, output={"format": "jsonl", "path": str(ro / "export")})
    with pytest.raises(RunDirError, match="read-only file system"):
        run_recipe(data, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs" / "t" / "cache").exists()


@NEEDS_ROOT
def test_read_only_runs_directory_is_one_line_exit_2(tmp_path: Path, docs_file: Path, mount_tmpfs: Any) -> None:
    ro = mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(recipe_dict(docs_file)))
    res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(ro / "runs"), "-q"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "read-only file system" in lines[0], res.output


def test_runs_directory_occupied_by_a_file_is_one_line_exit_2(tmp_path: Path, docs_file: Path) -> None:
    (tmp_path / "runs").write_text("a file")
    (tmp_path / "runs2").mkdir()
    (tmp_path / "runs2" / "t").write_text("a file where the run directory goes")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(recipe_dict(docs_file)))
    for runs in ("runs", "runs2"):
        res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / runs), "-q"])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and "file" in lines[0], res.output
    assert (tmp_path / "runs").read_text() == "a file"


# ---- validate and report commands -----------------------------------------------------------

def test_validate_reports_ok_and_every_error(tmp_path: Path, docs_file: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(recipe_dict(docs_file)))
    res = cli.invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 0 and res.output.startswith("ok: t: 4 steps")
    data = recipe_dict(docs_file, executor={"workers": 0})
    data["steps"][1]["params"]["min_words"] = -1
    data["steps"][0]["op"] = "clean.nope"
    data["input"]["path"] = str(tmp_path / "missing.jsonl")
    recipe.write_text(yaml.safe_dump(data))
    res = cli.invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 2
    for where in ("executor.workers", "steps[0].op", "steps[1].params.min_words", "input.path"):
        assert where in res.output, (where, res.output)


def test_report_and_card_of_a_missing_or_unfinished_directory_exit_2(tmp_path: Path) -> None:
    for command in ("report", "card"):
        res = cli.invoke(app, [command, str(tmp_path / "nope")])
        assert res.exit_code == 2 and "no such run directory" in res.output
        (tmp_path / "empty").mkdir(exist_ok=True)
        res = cli.invoke(app, [command, str(tmp_path / "empty")])
        assert res.exit_code == 2 and "no stats.json" in res.output


def test_report_and_card_of_a_finished_run(tmp_path: Path, docs_file: Path) -> None:
    s = run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "runs", progress=False, report=False)
    res = cli.invoke(app, ["report", str(s.run_dir)])
    assert res.exit_code == 0 and (s.run_dir / "report.html").stat().st_size > 1000
    (s.run_dir / "DATASET_CARD.md").unlink()
    res = cli.invoke(app, ["card", str(s.run_dir)])
    assert res.exit_code == 0 and "rows" in (s.run_dir / "DATASET_CARD.md").read_text().lower()
    assert json.loads((s.run_dir / "stats.json").read_text())["output"]["rows"] > 0
