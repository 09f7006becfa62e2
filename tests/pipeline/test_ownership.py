"""gristmill deletes only what it created: run names, foreign directories, output paths, --fresh,
the run lock and the incomplete-run marker (issue 15, items 1, 2 and 7)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.pipeline import finalize, ownership
from gristmill.pipeline.ownership import RunDirError
from gristmill.runner import RunBusy, _lock, run_recipe
from tests.conftest import recipe_dict

cli = CliRunner()


def victim(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "important.txt").write_text("do not delete")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "notes.md").write_text("mine")
    return root


def untouched(root: Path) -> bool:
    return ((root / "important.txt").read_text() == "do not delete"
            and (root / "sub" / "notes.md").read_text() == "mine")


def write_recipe(tmp_path: Path, data: dict) -> Path:
    import yaml

    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("name", ["../../victim2", "..", ".", "a/b", "/abs", ".hidden", "x y", ""])
def test_run_names_that_leave_the_runs_directory_are_refused(tmp_path: Path, docs_file: Path, name: str) -> None:
    runs = tmp_path / "a" / "runs"
    runs.mkdir(parents=True)
    v = victim(tmp_path / "victim2")
    other = victim(runs / "other-run")
    with pytest.raises(RunDirError, match="not a valid name"):
        run_recipe(recipe_dict(docs_file), runs_dir=runs, name=name, fresh=True, progress=False)
    assert untouched(v) and untouched(other)


def test_cli_name_dot_fresh_keeps_other_runs(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    other = victim(runs / "other")
    recipe = write_recipe(tmp_path, recipe_dict(docs_file))
    for name in (".", "../../victim2"):
        res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "--name", name, "--fresh", "-q"])
        assert res.exit_code == 2 and "not a valid name" in res.output
    assert untouched(other)


def test_recipe_name_with_dots_only_is_invalid(docs_file: Path) -> None:
    from gristmill.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"name: .*not a valid name"):
        load_recipe(recipe_dict(docs_file, name=".."))


def test_existing_foreign_run_directory_is_refused_even_with_fresh(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    v = victim(runs / "t")
    for fresh in (False, True):
        with pytest.raises(RunDirError, match="was not made by gristmill"):
            run_recipe(recipe_dict(docs_file), runs_dir=runs, fresh=fresh, progress=False)
    assert untouched(v) and sorted(p.name for p in v.iterdir()) == ["important.txt", "sub"]


def test_an_empty_existing_directory_is_adopted(tmp_path: Path, docs_file: Path) -> None:
    (tmp_path / "runs" / "t").mkdir(parents=True)
    s = run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "runs", progress=False)
    assert (s.run_dir / ownership.MARKER).is_file() and s.stats["output"]["rows"] > 0


def test_fresh_clears_only_run_files_and_keeps_llm_cache(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    first = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    run = first.run_dir
    (run / "my-notes.txt").write_text("user file")
    (run / ownership.LLM_CACHE).write_bytes(b"cached answers")
    again = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False, fresh=True)
    assert not any(st["cached"] for st in again.stats["steps"])  # the step cache was really cleared
    assert (run / "my-notes.txt").read_text() == "user file"
    assert (run / ownership.LLM_CACHE).read_bytes() == b"cached answers"
    run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False, fresh=True, fresh_cache=True)
    assert not (run / ownership.LLM_CACHE).exists() and (run / "my-notes.txt").exists()


def test_fresh_waits_for_the_lock_of_a_live_run(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    before = sorted(p.name for p in (runs / "t" / "data").iterdir())
    held = _lock(runs / "t")  # another process's run, as far as flock is concerned
    try:
        with pytest.raises(RunBusy):
            run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False, fresh=True)
        assert sorted(p.name for p in (runs / "t" / "data").iterdir()) == before
        assert (runs / "t" / "cache").is_dir() and (runs / "t" / "stats.json").is_file()
    finally:
        held.close()


def test_fresh_against_a_live_run_in_another_process(tmp_path: Path, docs_file: Path) -> None:
    """The lock is an flock: a second process sees it (the reviewer's reproduction, via the CLI)."""
    import sys

    runs = tmp_path / "runs"
    run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               str(runs / "t" / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        recipe = write_recipe(tmp_path, recipe_dict(docs_file))
        res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "--fresh", "-q"])
        assert res.exit_code == 1 and "in use by another gristmill run" in res.output
        assert (runs / "t" / "stats.json").is_file() and (runs / "t" / "cache").is_dir()
    finally:
        holder.kill()
        holder.wait()


# ---- output.path --------------------------------------------------------------------------

def test_output_path_that_holds_other_files_is_refused_before_work(tmp_path: Path, docs_file: Path) -> None:
    v = victim(tmp_path / "exported")
    data = recipe_dict(docs_file, output={"format": "jsonl", "path": str(v)})
    with pytest.raises(RunDirError, match="exists and is not empty"):
        run_recipe(data, runs_dir=tmp_path / "runs", progress=False)
    assert untouched(v) and sorted(p.name for p in v.iterdir()) == ["important.txt", "sub"]
    assert not (tmp_path / "runs" / "t" / "cache").exists()  # refused before any step ran


def test_overwrite_replaces_same_names_only(tmp_path: Path, docs_file: Path) -> None:
    v = victim(tmp_path / "exported")
    (v / "train.jsonl").write_text("old\n")
    data = recipe_dict(docs_file, output={"format": "jsonl", "path": str(v)})
    s = run_recipe(data, runs_dir=tmp_path / "runs", progress=False, overwrite=True)
    assert untouched(v)
    assert (v / "train.jsonl").read_text() != "old\n" and (v / "test.jsonl").is_file()
    assert sorted(p.name for p in s.outputs) == ["test.jsonl", "train.jsonl"]


def test_output_path_created_then_rerun_replaces_its_own_files(tmp_path: Path, docs_file: Path) -> None:
    out = tmp_path / "new" / "exported"
    data = recipe_dict(docs_file, output={"format": "jsonl", "path": str(out)})
    run_recipe(data, runs_dir=tmp_path / "runs", progress=False)
    assert sorted(p.name for p in out.iterdir()) == [ownership.OUTPUT_MANIFEST, "test.jsonl", "train.jsonl"]
    # the same run again, now without a split: its old split files go, a user's file stays
    (out / "readme.txt").write_text("added by the user")
    data["steps"] = data["steps"][:3]
    with pytest.raises(RunDirError):  # a foreign file is there now: explicit consent needed
        run_recipe(data, runs_dir=tmp_path / "runs", progress=False)
    run_recipe(data, runs_dir=tmp_path / "runs", progress=False, overwrite=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == [ownership.OUTPUT_MANIFEST, "data.jsonl", "readme.txt"]
    manifest = json.loads((out / ownership.OUTPUT_MANIFEST).read_text())
    assert manifest["files"] == ["data.jsonl"]
    (out / "readme.txt").unlink()
    run_recipe(data, runs_dir=tmp_path / "runs", progress=False)  # only its own files: no flag needed


def test_output_path_that_is_a_file_is_refused(tmp_path: Path, docs_file: Path) -> None:
    f = tmp_path / "out.jsonl"
    f.write_text("keep")
    with pytest.raises(RunDirError, match="is a file"):
        run_recipe(recipe_dict(docs_file, output={"format": "jsonl", "path": str(f)}),
                   runs_dir=tmp_path / "runs", progress=False)
    assert f.read_text() == "keep"


# ---- incomplete runs ----------------------------------------------------------------------

def test_a_run_that_dies_while_finalising_is_marked_and_report_refuses_it(
        tmp_path: Path, docs_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    recipe = write_recipe(tmp_path, recipe_dict(docs_file))
    assert cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "-q"]).exit_code == 0
    run = runs / "t"
    assert not (run / ownership.INCOMPLETE).exists()

    def die(*args: object) -> None:
        raise KeyboardInterrupt  # as a kill between writing data/ and the rest would leave it

    monkeypatch.setattr(finalize, "write_rejected", die)
    res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "-q", "--set", "steps.1.params.min_words=30"])
    assert res.exit_code == 130
    assert (run / ownership.INCOMPLETE).is_file()
    for command in ("report", "card"):
        res = cli.invoke(app, [command, str(run)])
        assert res.exit_code == 2 and "incomplete" in res.output, command
    monkeypatch.undo()
    res = cli.invoke(app, ["run", str(recipe), "--runs-dir", str(runs), "-q", "--set", "steps.1.params.min_words=30"])
    assert res.exit_code == 0 and not (run / ownership.INCOMPLETE).exists()
    assert cli.invoke(app, ["report", str(run)]).exit_code == 0
    assert cli.invoke(app, ["card", str(run)]).exit_code == 0
    stats = json.loads((run / "stats.json").read_text())
    assert stats["steps"][1]["dropped"]["min_words"] > 0


@pytest.mark.parametrize("where", ["runs/t", "runs", ".", "runs/t/cache", "runs/t/cache/x", "runs/t/rejected"])
def test_output_path_that_is_or_holds_the_run_directory_is_refused(tmp_path: Path, docs_file: Path,
                                                                    where: str) -> None:
    runs = tmp_path / "runs"
    first = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    (first.run_dir / "my-notes.txt").write_text("user file")
    before = sorted(p.name for p in first.run_dir.iterdir())
    data = recipe_dict(docs_file, output={"format": "jsonl", "path": str(tmp_path / where)})
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="run directory or contains it|inside the run's own"):
            run_recipe(data, runs_dir=runs, progress=False, overwrite=overwrite)
    assert sorted(p.name for p in first.run_dir.iterdir()) == before
    assert (first.run_dir / "my-notes.txt").read_text() == "user file"


def test_output_path_in_a_new_folder_of_the_run_directory(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    data = recipe_dict(docs_file, output={"format": "parquet", "path": str(runs / "t" / "export")})
    s = run_recipe(data, runs_dir=runs, progress=False)
    assert sorted(p.name for p in s.outputs) == ["test.parquet", "train.parquet"]
    assert (runs / "t" / "stats.json").is_file()
