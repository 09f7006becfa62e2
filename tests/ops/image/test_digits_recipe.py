"""recipes/digits.yaml end to end: make_digits.py writes the folder (with planted problems), the recipe runs
every image operator, and each planted problem ends where it should, with the report's pictures."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

import gristmill
from gristmill.records import rule_of

REPO = Path(__file__).resolve().parents[3]


def make_digits():
    spec = importlib.util.spec_from_file_location("make_digits", REPO / "recipes" / "data" / "make_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_digits(tmp_path: Path, limit: int | None) -> tuple[gristmill.RunSummary, dict]:
    counts = make_digits().write(tmp_path / "data" / "digits", plant=True, limit=limit)
    recipe = yaml.safe_load((REPO / "recipes" / "digits.yaml").read_text())
    if limit is not None:
        recipe["gates"] = [f"rows.out >= {limit}"]
        recipe["input"]["shard_rows"] = 150  # several shards: the global steps fit across them
    summary = gristmill.run(recipe, base_dir=tmp_path, runs_dir=tmp_path / "runs", progress=False)
    return summary, counts


def check(summary: gristmill.RunSummary, counts: dict) -> None:
    run = gristmill.load_run(summary.run_dir)
    assert summary.audit["passed"]
    quarantined = Counter(rule_of(r) for r in run.quarantine.column("reason").to_pylist())
    assert quarantined == {"not_image": 6, "zero_size": 6}
    rejected = run.rejected.to_pylist()
    where = {(r["_where"], rule_of(r["_reason"])) for r in rejected}
    assert {("00-image.validate", "truncated"), ("02-image.dedup", "duplicate"),
            ("02-image.dedup", "near_duplicate")} <= where
    by_id = {r["id"]: (r["_where"], rule_of(r["_reason"])) for r in rejected}
    for kind, step in (("truncated", "00-image.validate"), ("blank", "01-image.quality"), ("copy", "02-image.dedup"),
                       ("near", "02-image.dedup")):
        planted = [rid for rid in by_id if f"plant-{kind}-" in rid]
        assert len(planted) == 6 and {by_id[rid][0] for rid in planted} == {step}, (kind, planted)
    assert not [rid for rid, (step, _) in by_id.items() if "plant-" not in rid]  # no real digit dropped
    data = run.data.to_pylist()
    originals = [r for r in data if r["augment.of"] is None]
    copies = [r for r in data if r["augment.of"] is not None]
    assert len(originals) == len(copies) == counts["digits"] + 6  # the digits and the mislabelled ones
    assert {(r["image.width"], r["image.height"], r["image.mode"]) for r in data} == {(16, 16, "L")}
    flagged = {r["id"] for r in originals if r["label_issues.flag"]}
    wrong = {r["id"] for r in originals if "plant-wrong-" in r["id"]}
    assert len(flagged & wrong) >= 4 and len(flagged - wrong) <= 10
    assert {r["label"] for r in data} == {str(i) for i in range(10)}
    summary_file = json.loads((summary.run_dir / "summaries" / "02-image.dedup.json").read_text())
    assert summary_file["duplicates"] == 12
    report = (summary.run_dir / "report.html").read_text()
    assert 'id="images"' in report and report.count("data:image/png;base64") > 50
    assert "cluster of 2" in report and "given " in report and "(original)" in report


def test_the_digits_recipe_on_part_of_the_digits(tmp_path: Path) -> None:
    check(*run_digits(tmp_path, limit=500))


@pytest.mark.slow
def test_the_digits_recipe_on_every_digit(tmp_path: Path) -> None:
    check(*run_digits(tmp_path, limit=None))
