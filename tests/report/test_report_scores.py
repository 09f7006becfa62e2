"""The "Scores and thresholds" section: histograms per score column and what-if threshold tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.report import build_report
from gristmill.pipeline.run_reader import RunReader
from gristmill.report.scores import Bound, bounds, render, what_if
from gristmill.runner import run_recipe

RULES = [
    {"name": "min_a", "column": "q.a", "min": 3, "max": None},
    {"name": "b_range", "column": "q.b", "min": 0.2, "max": 0.8},
]
A = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
B = [0.1, 0.5, 0.5, 0.9, None, 0.3, 0.3, 0.7, 0.75, 0.95]


def _section(html: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, f"section {anchor} missing"
    return m.group(1)


def _rows(html: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", html)]


def add_score_step(run_dir: Path, drops: bool = True) -> None:
    """Give the fake run a scoring step: stats with score_columns and rules, and its scores file."""
    stats = json.loads((run_dir / "stats.json").read_text())
    kept = [a >= 3 and (b is None or 0.2 <= b <= 0.8) for a, b in zip(A, B)]
    stats["steps"].append({"index": 4, "step": "04-quality.test", "op": "quality.test", "kind": "filter",
                           "rows_in": 10, "rows_out": sum(kept), "dropped": {"min_a": 3, "b_range": 2},
                           "seconds": 0.1, "rows_per_s": 100.0, "cached": False,
                           "score_columns": ["q.a", "q.b"], "rules": RULES, "drops": drops})
    (run_dir / "stats.json").write_text(json.dumps(stats))
    (run_dir / "scores").mkdir()
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(10)], "q.a": pa.array(A, pa.int64()),
                             "q.b": pa.array(B, pa.float64()), "_kept": kept}),
                   run_dir / "scores" / "04-quality.test.parquet")


def test_bounds_split_rules_into_sides() -> None:
    bs = bounds(RULES + [{"name": "none", "column": "q.c", "min": None, "max": None}, "junk"])
    assert [(b.rule, b.side, b.value) for b in bs] == [("min_a", "min", 3), ("b_range", "min", 0.2),
                                                       ("b_range", "max", 0.8)]
    assert bs[0].label == "min_a ≥ 3" and bs[2].label == "b_range ≤ 0.8"


def test_nulls_pass_and_zero_passes_option() -> None:
    v = np.array([0.0, 0.05, 0.2, np.nan])
    assert Bound("p", "c", "min", 0.12).passes(v).tolist() == [False, False, True, True]
    assert Bound("p", "c", "min", 0.12, zero_passes=True).passes(v).tolist() == [True, False, True, True]


def test_what_if_counts_by_hand() -> None:
    values = {"q.a": np.array(A, float), "q.b": np.array([np.nan if b is None else b for b in B])}
    bs = bounds(RULES)
    rows = what_if(bs[0], values, bs)
    by_t = {r.threshold: r for r in rows}
    # Current threshold 3: a >= 3 holds for 7 rows; with b in [0.2, 0.8] (or null): rows 4,5,6,7,8 -> 5.
    assert by_t[3.0].source == "current" and (by_t[3.0].pass_rule, by_t[3.0].pass_all) == (7, 5)
    # Percentiles of 0..9 (nearest): p1 0, p5 0, p10 1, p25 2, p50 4 (or 5), p75 7, p90 8, p95 9, p99 9.
    assert by_t[0.0].source == "p1, p5" and (by_t[0.0].pass_rule, by_t[0.0].pass_all) == (10, 7)
    assert by_t[9.0].pass_rule == 1 and by_t[9.0].pass_all == 0  # b = 0.95 fails b_range
    assert [r.threshold for r in rows] == sorted(by_t)
    # The upper side of b_range: at 0.95 every row passes it, and min_a leaves 7, all of which pass b >= 0.2.
    upper = {r.threshold: r for r in what_if(bs[2], values, bs)}
    assert (upper[0.8].pass_rule, upper[0.8].pass_all) == (8, 5)  # b <= 0.8 or null: 8 rows
    assert (upper[0.95].pass_rule, upper[0.95].pass_all) == (10, 7)


def test_section_shows_histograms_and_tables(run_dir: Path) -> None:
    add_score_step(run_dir)
    html = _section(build_report(run_dir), "scores")
    assert '<h3 id="scores-04-quality.test">04-quality.test</h3>' in html
    assert "10 rows scored, 5 kept." in html
    assert html.count("<svg") == 2  # one histogram per score column
    assert "min_a ≥ 3" in html and "b_range ≤ 0.8" in html
    rows = _rows(html)
    assert ["q.b", "10", "1", "0.1", "0.5", "0.5556", "0.95"] in rows  # summary: 1 null
    assert ["3", "current", "7", "70.0%", "5", "50.0%"] in rows
    assert ["0", "p1, p5", "10", "100.0%", "7", "70.0%"] in rows


def test_rule_on_a_column_without_scores_passes_everything(run_dir: Path) -> None:
    add_score_step(run_dir)
    stats = json.loads((run_dir / "stats.json").read_text())
    stats["steps"][-1]["rules"].append({"name": "ghost", "column": "q.missing", "min": 1, "max": None})
    (run_dir / "stats.json").write_text(json.dumps(stats))
    rows = _rows(_section(build_report(run_dir), "scores"))
    assert ["3", "current", "7", "70.0%", "5", "50.0%"] in rows  # nulls pass the ghost rule
    assert ["1", "current", "10", "100.0%", "5", "50.0%"] in rows


def test_annotate_only_step_is_noted(run_dir: Path) -> None:
    add_score_step(run_dir, drops=False)
    assert "only annotated (drop: false)" in _section(build_report(run_dir), "scores")


def test_no_score_steps_or_missing_file(run_dir: Path) -> None:
    assert "none: no step wrote scores" in render(RunReader(run_dir))
    add_score_step(run_dir)
    (run_dir / "scores" / "04-quality.test.parquet").unlink()
    assert "scores/04-quality.test.parquet is missing" in render(RunReader(run_dir))


def test_real_run_with_fineweb(tmp_path: Path) -> None:
    prose = [f"Line {i} of a document that reads like ordinary prose." for i in range(8)]
    docs = []
    for k in range(12):
        lines = prose if k % 3 else [p.rstrip(".") for p in prose]  # every third document lacks punctuation
        docs.append({"id": f"d{k}", "text": f"Document {k}.\n" + "\n".join(lines)})
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    recipe = {"name": "fw", "input": {"path": str(path), "format": "jsonl", "shard_rows": 5},
              "steps": [{"op": "quality.fineweb"}], "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    step = summary.stats["steps"][0]
    assert step["dropped"] == {"line_punct_ratio": 4}
    html = _section((summary.run_dir / "report.html").read_text(encoding="utf-8"), "scores")
    assert "12 rows scored, 8 kept." in html
    assert html.count("<svg") == 5  # lines, line_punct_ratio, short_line_ratio, char_dup_ratio, newline_ratio
    assert "line_punct_ratio ≥ 0.12" in html
    rows = _rows(html)
    # 4 documents have 1 of 9 lines punctuated (0.1111), 8 have all 9 (1.0).
    assert ["0.12", "current", "8", "66.7%", "8", "66.7%"] in rows
    assert ["0.1111", "p1, p5, p10, p25", "12", "100.0%", "12", "100.0%"] in rows
