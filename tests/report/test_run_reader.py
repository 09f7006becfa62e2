"""The one reader of a pipeline run directory (gristmill.pipeline.run_reader): rules, cutting, rejected samples
read by row group, quarantine, output and rejected tables, the INCOMPLETE marker."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.pipeline.run_reader import NO_REASON, RunReader, cut, rejected_samples, rule_of, scan_quarantine


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


def test_run_reader_orders_steps_and_lists_rejected_files(run_dir: Path) -> None:
    run = RunReader(run_dir)
    assert run.name == "tiny"
    assert [s["index"] for s in run.steps] == [0, 1, 2, 3]
    assert [step for step, _ in run.rejected_files()] == ["01-filter.language", "02-filter.length", "03-dedup.exact"]
    assert run.recipe_text.startswith("name: tiny")


def test_incomplete_marker_missing_dir_and_missing_stats(run_dir: Path, tmp_path: Path) -> None:
    assert RunReader(run_dir).incomplete is None
    (run_dir / "INCOMPLETE").write_text("running", encoding="utf-8")
    assert "incomplete" in RunReader(run_dir).incomplete
    assert "no such run directory" in RunReader(tmp_path / "nope").incomplete
    (tmp_path / "empty").mkdir()
    assert "no stats.json" in RunReader(tmp_path / "empty").incomplete


def test_missing_files_read_as_empty(tmp_path: Path) -> None:
    run = RunReader(tmp_path)
    assert run.stats == {} and run.steps == [] and run.recipe == {} and run.recipe_text is None
    assert run.audit is None and run.summary("00-x") is None and run.rejected_files() == []
    assert run.quarantine.total == 0 and run.output_source == "none"
    assert run.output_table(["id"]).num_rows == 0 and run.rejected_table(["id"]).num_rows == 0


def test_recipe_steps_params_and_last_step(run_dir: Path) -> None:
    run = RunReader(run_dir)
    assert run.ops() == ["filter.length"]
    assert run.step_params(0)["min_words"] == 50 and run.step_params(7) == {}
    assert run.last_step("filter.length") == (0, run.step_params(0)) and run.last_step("dedup.exact") is None


def test_rejected_table_reads_only_the_columns_asked_once(run_dir: Path) -> None:
    run = RunReader(run_dir)
    t = run.rejected_table(["id", "_reason", "no_such_column"])
    assert t.column_names == ["id", "_reason", "_where"] and t.num_rows == 2 + 18 + 5
    assert set(t.column("_where").to_pylist()) == {"01-filter.language", "02-filter.length", "03-dedup.exact"}
    assert run.rejected_table(["id", "_reason", "no_such_column"]) is t  # read once
    by_test = run.rejected_table(lambda c: c.startswith("_"))
    assert "text" not in by_test.column_names and "_duplicate_of" in by_test.column_names


def test_output_from_last_step_shards_else_jsonl(run_dir: Path) -> None:
    run = RunReader(run_dir)  # no cache/: the JSON Lines output
    assert run.output_source == "data-jsonl"
    assert run.output_table(["id"]).column("id").to_pylist() == ["b"] * 9 + ["a"] * 86
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    stats["steps"][-1]["fingerprint"] = "fp"
    (run_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    shard = run_dir / "cache" / "step-03-dedup.exact-fp" / "shard-00000"
    shard.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["one", "two"], "pii.count": [0, 1]}), shard / "data.parquet")
    run = RunReader(run_dir)
    assert run.output_source == "cache"
    assert run.output_table(lambda c: c == "id" or c.startswith("pii.")).to_pylist() == [
        {"id": "x", "pii.count": 0}, {"id": "y", "pii.count": 1}]
    assert run.texts({"output": {"y"}, "01-filter.language": {"g2"}}) == {("output", "y"): "two",
                                                                         ("01-filter.language", "g2"): "hola"}


def test_report_and_audit_read_through_the_one_reader() -> None:
    import gristmill.audit.audit as audit
    import gristmill.audit.card as card
    import gristmill.report as report

    for module in (audit, card, report):
        assert "RunReader" in vars(module)
    import importlib.util

    assert importlib.util.find_spec("gristmill.audit.run_files") is None


def test_the_marker_a_run_writes_is_the_one_the_reader_refuses(run_dir: Path, tmp_path: Path) -> None:
    from gristmill.pipeline import ownership
    from gristmill.pipeline.run_reader import RunReader, incomplete_reason

    (tmp_path / "empty").mkdir()
    assert incomplete_reason(run_dir) is None
    assert "no such run directory" in incomplete_reason(tmp_path / "nope")
    assert "no stats.json" in incomplete_reason(tmp_path / "empty")
    ownership.mark_incomplete(run_dir, "r.yaml")
    assert "incomplete" in incomplete_reason(run_dir) and RunReader(run_dir).incomplete
    ownership.mark_complete(run_dir)
    assert incomplete_reason(run_dir) is None and not RunReader(run_dir).incomplete
