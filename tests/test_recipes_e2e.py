"""The shipped recipes, end to end: the default job (fast) and the Gutenberg sample (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.runner import run_recipe
from tests.conftest import REPO, SHARED_DATA


def test_default_recipe_runs_from_the_repository_alone(tmp_path: Path) -> None:
    s = run_recipe(REPO / "recipes" / "default.yaml", runs_dir=tmp_path, progress=False)
    stats = s.stats
    assert stats["input"]["quarantined"] == 5  # the five malformed lines written on purpose
    reasons = {json.loads(line)["reason"].split(":")[0] for line in (s.run_dir / "quarantine.jsonl").open()}
    assert reasons == {"invalid JSON", "invalid UTF-8 at byte 48", "empty text", "missing required field 'text'",
                       "not a JSON object"}
    by_op = {st["op"]: st for st in stats["steps"]}
    assert by_op["dedup.exact"]["dropped"].get("duplicate", 0) >= 5
    assert by_op["filter.length"]["dropped"].get("min_words", 0) >= 1
    text = (s.run_dir / "data" / "train.jsonl").read_text(encoding="utf-8")
    assert "<script>" not in text and "â€" not in text  # HTML stripped, mojibake repaired
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Rows through the steps" in html and "<svg" in html


@pytest.mark.slow
def test_gutenberg_recipe_writes_a_complete_run(tmp_path: Path) -> None:
    assert (SHARED_DATA / "gutenberg_sample.jsonl.gz").exists()
    s = run_recipe(REPO / "recipes" / "gutenberg.yaml", runs_dir=tmp_path, progress=False)
    stats = s.stats
    assert stats["input"]["rows"] > 10_000 and stats["input"]["ids_renamed"] > 0  # one book appears twice
    assert stats["steps"][2]["dropped"]["duplicate"] > 100  # licence boilerplate and the repeated book
    assert {p.name for p in (s.run_dir / "data").iterdir()} == {"train.parquet", "test.parquet"}
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    for step in stats["steps"]:
        assert step["step"] in html
