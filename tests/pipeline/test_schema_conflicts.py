"""Valid JSON never crashes a run: fields whose values do not fit one Arrow type are kept
as JSON text (with the reason in the stats) and written back as JSON values by the JSON
Lines writers, or, in payload columns (and the columns the recipe's steps read),
quarantined per record with file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.io import ReaderOptions
from gristmill.pipeline import finalize
from gristmill.pipeline.ingest import StrictInputError, build_table, ingest, payload_columns
from gristmill.recipe import load_recipe
from gristmill.records import json_text_reason
from gristmill.runner import plan, run_recipe

WORDS = "one two three four five six"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def recipe_of(src: Path, shard_rows: int = 100, output: str = "jsonl", column: str = "text") -> dict[str, Any]:
    return {"name": "t", "input": {"path": str(src), "format": "jsonl", "shard_rows": shard_rows},
            "steps": [{"op": "filter.length", "params": {"min_words": 3, "column": column}}],
            "output": {"format": output}, "executor": {"workers": 1}}


def run(tmp_path: Path, rows: list[dict[str, Any]], shard_rows: int = 100, output: str = "jsonl",
        column: str = "text", **kw: Any):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    recipe = recipe_of(src, shard_rows, output, column)
    return run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, **kw)


def out_rows(summary) -> list[dict[str, Any]]:
    path = summary.run_dir / "data" / "data.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_empty_object_in_every_row(tmp_path):
    s = run(tmp_path, [{"id": f"r{i}", "text": WORDS, "meta": {}} for i in range(3)])
    assert [r["meta"] for r in out_rows(s)] == [{}, {}, {}]
    assert s.stats["output"]["json_columns"] == {"meta": "empty object"}


def test_nested_empty_object_and_list_of_them(tmp_path):
    rows = [{"id": "a", "text": WORDS, "meta": {"x": {}}, "parts": [{}]}]
    s = run(tmp_path, rows)
    out = out_rows(s)[0]
    assert out["meta"] == {"x": {}} and out["parts"] == [{}]


def test_list_mixing_types(tmp_path):
    rows = [{"id": "a", "text": WORDS, "vals": [1, "a"]}, {"id": "b", "text": WORDS, "vals": [2.5, None, True]}]
    s = run(tmp_path, rows)
    assert [r["vals"] for r in out_rows(s)] == [[1, "a"], [2.5, None, True]]
    assert s.stats["output"]["json_columns"] == {"vals": "[]: int vs string vs float vs bool"}


def test_type_differs_between_rows_of_a_shard(tmp_path):
    rows = [{"id": "a", "text": WORDS, "meta": 1}, {"id": "b", "text": WORDS, "meta": "x"},
            {"id": "c", "text": WORDS, "meta": None}, {"id": "d", "text": WORDS, "meta": {"k": [1]}}]
    s = run(tmp_path, rows)
    assert [r["meta"] for r in out_rows(s)] == [1, "x", None, {"k": [1]}]
    assert s.stats["input"]["quarantined"] == 0
    assert s.stats["output"]["json_columns"] == {"meta": "int vs string vs object"}


def test_type_differs_between_shards(tmp_path):
    rows = [{"id": "a", "text": WORDS, "meta": 1}, {"id": "b", "text": WORDS, "meta": 2},
            {"id": "c", "text": WORDS, "meta": "x"}, {"id": "d", "text": "short", "meta": "y"},
            {"id": "e", "text": "too short", "meta": 3}]
    s = run(tmp_path, rows, shard_rows=2)
    assert [(r["id"], r["meta"]) for r in out_rows(s)] == [("a", 1), ("b", 2), ("c", "x")]
    assert s.stats["output"]["json_columns"] == {"meta": "int vs string in different shards"}
    rejected = pq.read_table(s.run_dir / "rejected" / "00-filter.length.parquet")  # d and e, from two shards
    assert sorted(zip(rejected.column("id").to_pylist(), rejected.column("meta").to_pylist())) == [
        ("d", '"y"'), ("e", "3")]


@pytest.mark.parametrize("output", ["parquet", "csv"])
def test_type_differs_between_shards_other_outputs(tmp_path, output):
    rows = [{"id": "a", "text": WORDS, "meta": 1}, {"id": "b", "text": WORDS, "meta": "x"}]
    s = run(tmp_path, rows, shard_rows=1, output=output)
    assert s.stats["output"]["rows"] == 2
    if output == "parquet":
        table = pq.read_table(s.run_dir / "data" / "data.parquet")
        assert table.column("meta").to_pylist() == ["1", '"x"']
        assert json_text_reason(table.schema.field("meta")) == "int vs string in different shards"


def test_payload_type_conflict_is_quarantined_with_file_and_line(tmp_path):
    rows = [{"id": "a", "text": WORDS, "instruction": "do it"}, {"id": "b", "text": WORDS, "instruction": 5},
            {"id": "c", "text": WORDS, "instruction": "again"}]
    s = run(tmp_path, rows)
    assert [r["instruction"] for r in out_rows(s)] == ["do it", "again"]
    quarantine = [json.loads(x) for x in (s.run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["source"], q["line"]) for q in quarantine] == [(str(tmp_path / "in.jsonl"), 2)]
    assert quarantine[0]["reason"] == "field type: 'instruction' is int64, the other records have string"


def test_payload_keeps_the_type_of_earlier_shards(tmp_path):
    rows = [{"id": "a", "text": WORDS, "tags": ["x", "y"]}, {"id": "b", "text": WORDS, "tags": [1, 2]},
            {"id": "c", "text": WORDS, "tags": []}]
    s = run(tmp_path, rows, shard_rows=1)
    assert [r["tags"] for r in out_rows(s)] == [["x", "y"], []]
    quarantine = [json.loads(x) for x in (s.run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["line"], q["reason"].split(":")[0]) for q in quarantine] == [(2, "field type")]


def test_payload_conflict_fails_a_strict_run(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": WORDS, "messages": "hi"}, {"text": WORDS, "messages": [1]},
                                              {"text": WORDS, "messages": "yo"}])
    with pytest.raises(StrictInputError, match=r"in\.jsonl:2: field type: 'messages'"):
        list(ingest([src], ReaderOptions(), 100, tmp_path / "shards", strict=True))


def test_json_text_round_trips_every_value():
    values = [1, "1", "x", None, 2.5, True, [1, "a"], {"a": {}}, {"k": [None, {"z": "é"}]}, [], 2**70]
    rows = [{"id": str(i), "text": "t", "meta": v} for i, v in enumerate(values)]
    table, bad, json_columns = build_table(rows, "s", list(range(1, len(rows) + 1)))
    assert not bad and set(json_columns) == {"meta"}
    back = [None if v is None else json.loads(v) for v in table.column("meta").to_pylist()]
    assert back == values


def test_deep_nesting_is_json_text():
    deep: Any = 1
    for _ in range(60):
        deep = [deep]
    table, bad, json_columns = build_table([{"id": "a", "text": "t", "meta": deep}], "s")
    assert not bad and json_columns["meta"].startswith("nested too deeply for Parquet")
    assert json.loads(table.column("meta")[0].as_py()) == deep


def test_unified_schema_and_conform(tmp_path):
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["1"], "m": [1], "n": [1], "s": pa.array([{"x": 1}])}), a)
    pq.write_table(pa.table({"id": ["2"], "m": ["x"], "n": [2.5], "s": pa.array([{"y": "z"}])}), b)
    pq.write_table(pa.table({"id": ["3"], "m": pa.nulls(1), "n": pa.nulls(1)}), c)
    schema = finalize.unified_schema([a, b, c])
    assert schema.field("n").type == pa.float64() and json_text_reason(schema.field("n")) is None
    assert schema.field("s").type == pa.struct([("x", pa.int64()), ("y", pa.string())])
    assert json_text_reason(schema.field("m")) == "int vs string in different shards"
    dest = tmp_path / "all.parquet"
    assert finalize.concat_parquet([a, b, c], dest) == 3
    out = pq.read_table(dest).to_pylist()
    assert [r["m"] for r in out] == ["1", '"x"', None]
    assert [r["s"] for r in out] == [{"x": 1, "y": None}, {"x": None, "y": "z"}, None]


def test_jsonl_output_rows_equal_the_input_rows(tmp_path):
    """The reviewer's shapes: {} in every row of a shard, a list mixing types, int in one
    shard and string in another (shard_rows 2): each output row is its input row, field by
    field, plus the columns the run adds."""
    rows = [{"id": "a", "text": WORDS, "meta": {}, "vals": [1, "a"], "n": 1, "deep": {"x": [{}]}},
            {"id": "b", "text": WORDS, "meta": {}, "vals": [2.5, None, True], "n": 2, "deep": None},
            {"id": "c", "text": WORDS, "meta": {"k": 1}, "vals": [], "n": "x", "deep": {"x": []}},
            {"id": "d", "text": WORDS, "meta": None, "vals": ["z"], "n": "1", "deep": {"x": [{"y": 1}]}},
            {"id": "e", "text": WORDS, "meta": {"k": [1, "a"]}, "vals": None, "n": None, "deep": {}}]
    s = run(tmp_path, rows, shard_rows=2)
    out = out_rows(s)
    assert [{k: r[k] for k in rows[0]} for r in out] == rows
    assert {k for r in out for k in r} - set(rows[0]) == {"source"}
    assert set(s.stats["output"]["json_columns"]) == {"meta", "vals", "n", "deep"}
    assert s.stats["output"]["json_columns"]["n"] == "int vs string in different shards"
    card = (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "`n` (int vs string in different shards)" in card and "as they were in the input" in card


def test_a_column_a_step_reads_keeps_its_type(tmp_path):
    """filter.length on ``body``: a record whose body is not a string is quarantined with its
    file and line, instead of the column becoming JSON text the filter would count quotes of."""
    rows = [{"id": "a", "text": "t", "body": WORDS}, {"id": "b", "text": "t", "body": 12345},
            {"id": "c", "text": "t", "body": "a b"}, {"id": "d", "text": "t", "body": {"x": WORDS}}]
    s = run(tmp_path, rows, column="body")
    assert [(r["id"], r["body"]) for r in out_rows(s)] == [("a", WORDS)]
    assert "json_columns" not in s.stats["output"]
    quarantine = [json.loads(x) for x in (s.run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["line"], q["reason"].split(":")[0]) for q in quarantine] == [(2, "field type"), (4, "field type")]
    assert s.stats["input"]["quarantined_by_reason"] == {"field type": 2}
    rejected = pq.read_table(s.run_dir / "rejected" / "00-filter.length.parquet")
    assert rejected.column("body").to_pylist() == ["a b"]  # two words, not '"a b"'


def test_a_column_a_step_reads_keeps_the_type_of_earlier_shards(tmp_path):
    rows = [{"id": "a", "text": "t", "body": WORDS}, {"id": "b", "text": "t", "body": 7},
            {"id": "c", "text": "t", "body": WORDS}]
    s = run(tmp_path, rows, shard_rows=1, column="body")
    assert [r["id"] for r in out_rows(s)] == ["a", "c"]
    quarantine = [json.loads(x) for x in (s.run_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["line"], q["reason"]) for q in quarantine] == [
        (2, "field type: 'body' is int64, the other records have string")]


def test_recipe_payload_columns_join_the_input_fingerprint(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": WORDS, "body": WORDS}])

    def input_fp(column: str, op: str = "filter.length") -> str:
        recipe = recipe_of(src, column=column)
        recipe["steps"][0]["op"] = op
        if op != "filter.length":
            recipe["steps"][0]["params"] = {"column": column}
        return plan(load_recipe(recipe), tmp_path / "cache")[0]

    assert input_fp("text") == input_fp("text", "clean.normalize")  # text is a payload column already
    assert input_fp("body") != input_fp("text")  # body now keeps its type: other shards
    assert input_fp("body") == input_fp("body", "clean.normalize")


class _Op:
    def __init__(self, reads: list[str], writes: list[str]) -> None:
        self._reads, self._writes = reads, writes

    def reads(self) -> list[str]:
        return self._reads

    def writes(self) -> list[str]:
        return self._writes


def test_payload_columns_are_the_input_columns_steps_read():
    ops = [_Op(["text", "body"], ["body", "score"]), _Op(["score", "body", "label"], []), _Op(["id", "tags"], [])]
    assert payload_columns(ops) == ["body", "label"]  # score comes from a step; text, id, tags are payload
    assert payload_columns([]) == []


def test_ingest_payload_parameter(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "t", "body": "x"},
                                              {"id": "b", "text": "t", "body": 1}])
    plain = list(ingest([src], ReaderOptions(), 100, tmp_path / "plain"))
    stats = json.loads((plain[0].path / "stats.json").read_text())
    assert plain[0].rows == 2 and stats["json_columns"] == {"body": "string vs int"}
    kept = list(ingest([src], ReaderOptions(), 100, tmp_path / "kept", payload=["body"]))
    stats = json.loads((kept[0].path / "stats.json").read_text())
    assert kept[0].rows == 1 and "json_columns" not in stats and stats["by_reason"] == {"field type": 1}
    with pytest.raises(StrictInputError, match=r"in\.jsonl:2: field type: 'body'"):
        list(ingest([src], ReaderOptions(), 100, tmp_path / "strict", strict=True, payload=["body"]))
