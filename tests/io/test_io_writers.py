"""Writers: schema drift between shards, chat conversions, compression, errors."""

from __future__ import annotations

import gzip
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from pydantic import ValidationError

from gristmill.io import ReaderOptions, open_reader, open_writer


def jsonl_objects(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


SHARD1 = pa.table({"id": ["a", "b"], "text": ["x", "y"], "note": pa.nulls(2)})
SHARD2 = pa.table({"id": ["c"], "note": ["filled"], "extra": pa.nulls(1, pa.int64())})
SHARD3 = pa.table({"text": pa.array(["w"], pa.large_string()), "id": ["d"]})
EXPECTED = [{"id": i, "text": t, "note": n, "extra": None}
            for i, t, n in [("a", "x", None), ("b", "y", None), ("c", None, "filled"), ("d", "w", None)]]


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_shards_whose_schemas_differ_by_null_columns(tmp_path, fmt):
    path = tmp_path / ("out.parquet" if fmt == "parquet" else "out")
    writer = open_writer(path, fmt)
    for shard in (SHARD1, SHARD2, SHARD3):
        writer.write(shard)
    files = writer.close()
    table = pq.read_table(path) if fmt == "parquet" else datasets.load_from_disk(str(path)).data.table
    assert table.to_pylist() == EXPECTED
    assert table.schema.field("note").type == pa.string()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out" if fmt == "hf" else "out.parquet"]
    assert all(f.exists() for f in files)


def test_incompatible_shard_types_are_a_clear_error(tmp_path):
    writer = open_writer(tmp_path / "o.parquet", "parquet")
    writer.write(pa.table({"n": [1]}))
    writer.write(pa.table({"n": [[1, 2]]}))
    with pytest.raises(ValueError, match="incompatible column types"):
        writer.close()


def test_jsonl_compression_from_suffix_or_option(tmp_path):
    table = pa.table({"id": ["1"], "text": ["é 😀"], "tags": [["a", "b"]]})
    for name, opts in [("a.jsonl", {}), ("b.jsonl.gz", {}), ("c.jsonl", {"compression": "zst"})]:
        writer = open_writer(tmp_path / name, "jsonl", **opts)
        writer.write(table)
        (path,) = writer.close()
        raw = path.read_bytes()
        if path.name.endswith(".zst"):
            assert path.name == "c.jsonl.zst"
            raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
        elif path.suffix == ".gz":
            raw = gzip.decompress(raw)
        assert raw.decode("utf-8") == '{"id":"1","text":"é 😀","tags":["a","b"]}\n'


def test_openai_and_sharegpt_from_instruction_columns(tmp_path):
    table = pa.table({"id": ["1", "2"], "instruction": ["Translate", "Greet"], "input": ["chat", None],
                      "output": ["Katze", "Hello"], "score": [0.1, 0.2]})
    writer = open_writer(tmp_path / "o.jsonl", "openai", system_prompt="Be brief.")
    writer.write(table)
    writer.close()
    assert jsonl_objects(tmp_path / "o.jsonl")[0] == {"id": "1", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Translate\n\nchat"},
        {"role": "assistant", "content": "Katze"}]}
    writer = open_writer(tmp_path / "s.jsonl.gz", "sharegpt")
    writer.write(table)
    writer.close()
    assert jsonl_objects(tmp_path / "s.jsonl.gz")[1] == {"id": "2", "conversations": [
        {"from": "human", "value": "Greet"}, {"from": "gpt", "value": "Hello"}]}
    rows = list(open_reader(tmp_path / "s.jsonl.gz", ReaderOptions(format="sharegpt")))
    assert [m["role"] for m in rows[1]["messages"]] == ["user", "assistant"]


def test_alpaca_from_messages(tmp_path):
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a2"}]
    writer = open_writer(tmp_path / "a.jsonl", "alpaca")
    writer.write(pa.table({"id": ["1"], "messages": [msgs]}))
    writer.close()
    assert jsonl_objects(tmp_path / "a.jsonl") == [{"id": "1", "instruction": "q1", "input": "", "output": "a2"}]


def test_chat_writer_names_missing_columns(tmp_path):
    for fmt in ("openai", "sharegpt", "alpaca"):
        writer = open_writer(tmp_path / f"{fmt}.jsonl", fmt)
        needs = r"needs a 'messages' column or the column\(s\) 'output'.*has: id, instruction"
        with pytest.raises(ValueError, match=needs):
            writer.write(pa.table({"id": ["1"], "instruction": ["x"]}))
        writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_chat_writer_rejects_a_row_without_content(tmp_path):
    writer = open_writer(tmp_path / "o.jsonl", "openai")
    with pytest.raises(ValueError, match="row 'b' has neither 'messages' nor 'instruction' and 'output'"):
        writer.write(pa.table({"id": ["a", "b"], "instruction": ["i", None], "output": ["o", None]}))


def test_csv_writer(tmp_path):
    writer = open_writer(tmp_path / "o.csv", "csv")
    writer.write(pa.table({"id": ["1"], "text": ['a "quoted", text\r\nline'], "n": [3], "ok": [True],
                           "tags": [["x"]]}))
    writer.write(pa.table({"id": ["2"], "text": ["b"], "later": pa.nulls(1)}))
    writer.close()
    rows = list(open_reader(tmp_path / "o.csv", ReaderOptions()))
    assert [(r["id"], r["text"], r["n"], r["ok"], r["tags"]) for r in rows] == [
        ("1", 'a "quoted", text\r\nline', "3", "true", '["x"]'), ("2", "b", "", "", "")]
    writer = open_writer(tmp_path / "p.csv", "csv")
    writer.write(pa.table({"id": ["1"]}))
    with pytest.raises(ValueError, match="'late' appear after the first shard"):
        writer.write(pa.table({"id": ["2"], "late": ["v"]}))


def test_no_shards_still_gives_a_readable_output(tmp_path):
    for fmt, name in [("jsonl", "e.jsonl"), ("parquet", "e.parquet"), ("hf", "e")]:
        assert open_writer(tmp_path / name, fmt).close()
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
    assert len(datasets.load_from_disk(str(tmp_path / "e"))) == 0


def test_writer_options_are_validated(tmp_path):
    with pytest.raises(ValidationError):
        open_writer(tmp_path / "o.x", "yaml")
    with pytest.raises(ValidationError):
        open_writer(tmp_path / "o.jsonl", "jsonl", colour="red")
    with pytest.raises(ValueError, match="system_prompt applies to the openai and sharegpt formats"):
        open_writer(tmp_path / "o.jsonl", "jsonl", system_prompt="hi")


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError), open_writer(tmp_path / "o.jsonl", "openai") as writer:
        writer.write(pa.table({"id": ["1"]}))
    with open_writer(tmp_path / "p.jsonl", "jsonl") as writer:
        writer.write(pa.table({"id": ["1"]}))
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


def _json_text_table(meta, reason="int vs string"):
    from gristmill.records import json_text_array, json_text_field

    return pa.Table.from_arrays(
        [pa.array(["a", "b", "c", "d"][:len(meta)]), json_text_array(meta)],
        schema=pa.schema([pa.field("id", pa.string()), json_text_field("meta", reason)]))


META = [1, "x", None, {"k": [1, "a", {}]}]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_jsonl_writes_json_text_columns_as_their_values(tmp_path, suffix):
    path = tmp_path / f"out.jsonl{suffix}"
    with open_writer(path, "jsonl") as w:
        w.write(_json_text_table(META))
        w.write(pa.table({"id": ["e"], "meta": ['"1"']}))  # a plain string column: written as it is
    assert [r["meta"] for r in jsonl_objects(path)] == [1, "x", None, {"k": [1, "a", {}]}, '"1"']


def test_jsonl_keeps_a_json_text_cell_that_is_not_json(tmp_path):
    with open_writer(tmp_path / "out.jsonl", "jsonl") as w:
        w.write(_json_text_table(['{"a": 1}', None]).set_column(
            1, pa.field("meta", pa.string(), metadata={b"gristmill.json": b"x"}), pa.array(["not json", '2**70'])))
    assert [r["meta"] for r in jsonl_objects(tmp_path / "out.jsonl")] == ["not json", "2**70"]


def test_chat_writers_read_json_text_payload_columns(tmp_path):
    from gristmill.records import json_text_array, json_text_field

    msgs = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}]]
    table = pa.Table.from_arrays([pa.array(["a"]), json_text_array(msgs)],
                                 schema=pa.schema([pa.field("id", pa.string()),
                                                   json_text_field("messages", "[].content: string vs list")]))
    with open_writer(tmp_path / "o.jsonl", "openai") as w:
        w.write(table)
    with open_writer(tmp_path / "a.jsonl", "alpaca") as w:
        w.write(table)
    assert jsonl_objects(tmp_path / "o.jsonl") == [
        {"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]
    assert jsonl_objects(tmp_path / "a.jsonl") == [{"id": "a", "instruction": "hi", "input": "", "output": "yo"}]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "hf"])
def test_one_type_outputs_keep_json_text(tmp_path, fmt):
    from gristmill.records import json_text_reason

    path = tmp_path / {"parquet": "out.parquet", "csv": "out.csv", "hf": "out"}[fmt]
    with open_writer(path, fmt) as w:
        w.write(_json_text_table(META[:2]))
        w.write(_json_text_table(META[2:]))
    if fmt == "csv":
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[1:] == ["a,1", 'b,"""x"""', "a,", 'b,"{""k"": [1, ""a"", {}]}"']
        return
    table = pq.read_table(path) if fmt == "parquet" else datasets.load_from_disk(str(path)).data.table
    assert table.column("meta").to_pylist() == ["1", '"x"', None, '{"k": [1, "a", {}]}']
    if fmt == "parquet":
        assert json_text_reason(table.schema.field("meta")) == "int vs string"
