"""Readers behind the report: rules, cutting, rejected samples read by row group, quarantine."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.report.data import NO_REASON, RunData, cut, rejected_samples, rule_of, scan_quarantine


def test_rule_is_the_part_before_the_first_colon() -> None:
    assert rule_of("min_words: 12 < 50") == "min_words"
    assert rule_of("url: http://x: y") == "url"
    assert rule_of("duplicate") == "duplicate"
    assert rule_of(None) == NO_REASON and rule_of("") == NO_REASON and rule_of(": x") == NO_REASON


def test_cut_adds_an_ellipsis_only_when_cutting() -> None:
    assert cut("abc", 3) == "abc"
    assert cut("abcd", 3) == "abc…"
    assert cut(None, 3) == ""
    assert cut(12, 3) == "12"
    assert cut(["a", "b"], 100) == '["a", "b"]'


def _write(path: Path, reasons: list[str | None], **extra: list) -> Path:
    cols = {"id": [f"r{i}" for i in range(len(reasons))], "_reason": reasons, **extra}
    pq.write_table(pa.table(cols), path, row_group_size=3)
    return path


def test_samples_pick_the_first_rows_of_each_rule_across_row_groups(tmp_path: Path) -> None:
    reasons = [f"a: {i}" for i in range(10)] + ["b: late", None, "a: 10", "b: again"]
    path = _write(tmp_path / "x.parquet", reasons, text=[f"t{i}" for i in range(len(reasons))])
    samples = rejected_samples(path, per_rule=2)
    assert list(samples) == ["a", "b", NO_REASON]
    assert [r["id"] for r in samples["a"]] == ["r0", "r1"]
    assert [(r["id"], r["_reason"], r["text"]) for r in samples["b"]] == [("r10", "b: late", "t10"), ("r13", "b: again", "t13")]
    assert samples[NO_REASON] == [{"id": "r11", "_reason": "", "text": "t11"}]
    # Knowing the rules up front gives the same rows.
    assert rejected_samples(path, per_rule=2, expected_rules=["a", "b"])["b"] == samples["b"]


def test_samples_read_only_id_reason_text_and_underscore_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.parquet", ["dup: 1"], text=["z" * 400], meta=["secret"], _duplicate_of=["r9"],
                  **{"quality.score": [0.5]})
    [row] = rejected_samples(path)["dup"]
    assert row == {"id": "r0", "_reason": "dup: 1", "text": "z" * 300 + "…", "_duplicate_of": "r9"}


def test_samples_without_text_or_reason_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.parquet", ["r: 1"])
    assert rejected_samples(path) == {"r": [{"id": "r0", "_reason": "r: 1"}]}
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "y.parquet")
    assert rejected_samples(tmp_path / "y.parquet") == {}
    assert rejected_samples(tmp_path / "missing.parquet") == {}


def test_quarantine_missing_or_blank_lines(tmp_path: Path) -> None:
    assert scan_quarantine(tmp_path / "none.jsonl").total == 0
    path = tmp_path / "q.jsonl"
    path.write_text('\n{"source": "s", "line": 1, "reason": "bad: x", "raw": "r"}\n\n[1, 2]\n', encoding="utf-8")
    q = scan_quarantine(path, keep=1)
    assert q.total == 2 and q.by_rule == {"bad": 1, "unreadable entry": 1}
    assert q.first == [{"source": "s", "line": 1, "reason": "bad: x", "raw": "r"}]


def test_run_data_orders_steps_and_lists_rejected_files(run_dir: Path) -> None:
    run = RunData(run_dir)
    assert run.name == "tiny"
    assert [s["index"] for s in run.steps] == [0, 1, 2, 3]
    assert [step for step, _ in run.rejected_files()] == ["01-filter.language", "02-filter.length", "03-dedup.exact"]
    assert run.recipe_text.startswith("name: tiny")
