from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from gristmill import registry
from gristmill.cli import app
from tests.conftest import recipe_dict

runner = CliRunner()


def write_recipe(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_ops_lists_every_operator_with_a_doc() -> None:
    res = runner.invoke(app, ["ops"])
    assert res.exit_code == 0
    for name in registry.names():
        assert name in res.output


def test_ops_show_prints_parameters_types_defaults() -> None:
    res = runner.invoke(app, ["ops", "show", "filter.length"])
    assert res.exit_code == 0
    assert "min_words" in res.output and "max_chars" in res.output and ">= 0" in res.output
    res = runner.invoke(app, ["ops", "show", "filter.lenght"])
    assert res.exit_code == 2 and "filter.length" in res.output


def test_run_then_rerun_and_exit_codes(tmp_path: Path, docs_file: Path) -> None:
    recipe = write_recipe(tmp_path, recipe_dict(docs_file))
    res = runner.invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "t" / "report.html").exists()
    res = runner.invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 0 and "(cached)" in res.output

    res = runner.invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "-q", "--strict", "--fresh"])
    assert res.exit_code == 1 and "docs.jsonl:11" in res.output

    res = runner.invoke(app, ["run", str(recipe), "--set", "steps.1.params.min_words=-3", "-q"])
    assert res.exit_code == 2 and "steps[1].params.min_words: must be >= 0" in res.output


def test_unreadable_path_fails_before_work_in_one_line(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, recipe_dict(tmp_path / "missing.jsonl"))
    res = runner.invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing.jsonl" in lines[0]
    assert not (tmp_path / "runs").exists()
