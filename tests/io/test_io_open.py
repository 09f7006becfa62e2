"""open_reader: paths, format detection, errors before any work, ids, columns, progress."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.io import BadRecord, InputError, ReaderOptions, open_reader


def lines(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rows_of(path, **options):
    items = list(open_reader(path, ReaderOptions(**options)))
    assert not [i for i in items if isinstance(i, BadRecord)]
    return items


def one_line_error(path, **options) -> str:
    with pytest.raises(InputError) as info:
        open_reader(path, ReaderOptions(**options))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_missing_path(tmp_path):
    message = one_line_error(tmp_path / "nope.jsonl")
    assert "no such file or directory" in message and "expected one of" in message


def test_unknown_suffix(tmp_path):
    (tmp_path / "x.foo").write_text("hello")
    message = one_line_error(tmp_path / "x.foo")
    assert "unknown format '.foo'" in message and "jsonl" in message and "parquet" in message


def test_unknown_format_name(tmp_path):
    path = lines(tmp_path / "a.jsonl", {"text": "x"})
    assert "unknown format 'yaml'" in one_line_error(path, format="yaml")


def test_glob_without_matches_and_empty_directory(tmp_path):
    assert "no files match" in one_line_error(tmp_path / "*.jsonl")
    (tmp_path / "d").mkdir()
    assert "no files of a known format" in one_line_error(tmp_path / "d")


def test_mixed_directory_needs_a_format(tmp_path):
    lines(tmp_path / "a.jsonl", {"text": "x"})
    (tmp_path / "b.csv").write_text("text\ny\n")
    assert "mixes formats (csv, jsonl)" in one_line_error(tmp_path)
    assert [r["text"] for r in rows_of(tmp_path, format="csv")] == ["y"]


def test_chunk_chars_on_conll_is_refused(tmp_path):
    (tmp_path / "a.conll").write_text("a\tO\n")
    assert "chunk_chars" in one_line_error(tmp_path / "a.conll", chunk_chars=10)


def test_directory_and_glob_read_in_sorted_order(tmp_path):
    lines(tmp_path / "b.jsonl", {"text": "b1"}, {"text": "b2"})
    lines(tmp_path / "a.jsonl", {"text": "a1"})
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "c1"}) + "\n")
    expected = ["a1", "b1", "b2", "c1"]
    assert [r["text"] for r in rows_of(tmp_path)] == expected
    assert [r["text"] for r in rows_of(tmp_path / "*.jsonl*")] == expected
    assert [r["id"] for r in rows_of(tmp_path)] == ["a.jsonl:1", "b.jsonl:1", "b.jsonl:2", "c.jsonl.gz:1"]


def test_txt_directory_recursive(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("bee")
    (tmp_path / "a.txt").write_text("\ufeffay")
    (tmp_path / "notes.md").write_text("ignored")
    (tmp_path / ".hidden.txt").write_text("ignored")
    rows = rows_of(tmp_path)
    assert [(r["id"], r["text"], r["source"]) for r in rows] == [
        ("a.txt", "ay", str(tmp_path / "a.txt")), ("sub/b.txt", "bee", str(tmp_path / "sub" / "b.txt"))]
    assert [r["id"] for r in rows_of(tmp_path, format="txt", glob="*.md")] == ["notes.md"]


def test_ids_text_column_and_license(tmp_path):
    path = lines(tmp_path / "a.jsonl", {"uid": 7, "body": "x", "license": "MIT"}, {"body": "y"},
                 {"uid": "", "body": "z"})
    rows = rows_of(path, id_column="uid", text_column="body", license="CC-BY-4.0")
    assert rows == [
        {"id": "7", "license": "MIT", "text": "x", "source": str(path)},
        {"id": "a.jsonl:2", "text": "y", "source": str(path), "license": "CC-BY-4.0"},
        {"id": "a.jsonl:3", "text": "z", "source": str(path), "license": "CC-BY-4.0"},
    ]


def test_columns_are_cheap_and_complete(tmp_path):
    path = lines(tmp_path / "a.jsonl", {"id": "1", "body": "x", "meta": {"k": 1}})
    assert open_reader(path, ReaderOptions(text_column="body")).columns() == ["id", "meta", "text", "source"]
    pq.write_table(pa.table({"text": ["t"], "score": [0.5]}), tmp_path / "p.parquet")
    assert open_reader(tmp_path / "p.parquet", ReaderOptions(license="MIT")).columns() == [
        "id", "text", "score", "source", "license"]
    (tmp_path / "c.csv").write_text("text,label\n")
    assert open_reader(tmp_path / "c.csv", ReaderOptions()).columns() == ["id", "text", "source"]
    (tmp_path / "s.conll").write_text("a\tO\n")
    assert open_reader(tmp_path / "s.conll", ReaderOptions()).columns() == ["id", "tokens", "tags", "text", "source"]


def test_bytes_read_reaches_total(tmp_path):
    lines(tmp_path / "a.jsonl", *({"text": f"row {i}"} for i in range(100)))
    pq.write_table(pa.table({"text": [f"r{i}" for i in range(100)]}), tmp_path / "b.parquet")
    (tmp_path / "t").mkdir()
    for i in range(100):
        (tmp_path / "t" / f"{i:03d}.txt").write_text(f"doc {i}")
    for name in ("a.jsonl", "b.parquet", "t"):
        reader = open_reader(tmp_path / name, ReaderOptions())
        assert reader.bytes_read() == 0
        progress = [reader.bytes_read() for _ in reader]
        assert len(progress) == 100 and progress == sorted(progress)
        size = sum(p.stat().st_size for p in [tmp_path / name, *(tmp_path / name).glob("*")] if p.is_file())
        assert reader.bytes_read() == reader.bytes_total() == size


def test_reader_options_reject_unknown_keys_and_bad_sizes():
    from pydantic import ValidationError

    for bad in ({"colour": "red"}, {"chunk_chars": 0}, {"max_record_bytes": -1}):
        with pytest.raises(ValidationError):
            ReaderOptions(**bad)
