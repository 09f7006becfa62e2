"""Each kind of bad input becomes a BadRecord, and the good records around it are still read."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.io import BadRecord, ReaderOptions, open_reader

MB = 1 << 20


def split(path: Path, **options) -> tuple[list[dict], list[BadRecord]]:
    items = list(open_reader(path, ReaderOptions(**options)))
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)]


def jsonl(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


GOOD1 = b'{"id": "g1", "text": "first good"}'
GOOD2 = b'{"id": "g2", "text": "second good"}'


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def test_malformed_json_line(tmp_path):
    rows, bad = split(jsonl(tmp_path / "a.jsonl", GOOD1, b'{"id": "x" "text": "no comma"}', GOOD2))
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.source) for b in bad] == [(2, str(tmp_path / "a.jsonl"))]
    assert bad[0].reason == "invalid JSON: Expecting ',' delimiter (col 12)"
    assert bad[0].raw == '{"id": "x" "text": "no comma"}\n'
    assert bad[0].to_json() == {"source": bad[0].source, "line": 2, "reason": bad[0].reason, "raw": bad[0].raw}


def test_invalid_utf8(tmp_path):
    rows, bad = split(jsonl(tmp_path / "a.jsonl", GOOD1, b'{"text": "caf\xe9"}', GOOD2))
    assert ids(rows) == ["g1", "g2"]
    assert (bad[0].line, bad[0].reason) == (2, "invalid UTF-8 at byte 13")
    assert "caf\ufffd" in bad[0].raw


def test_not_an_object_and_blank_lines(tmp_path):
    rows, bad = split(jsonl(tmp_path / "a.jsonl", GOOD1, b"", b"   ", b"[1, 2]", GOOD2))
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(4, "not a JSON object: got list")]


def test_missing_required_field(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", b'{"id": "g1", "text": "t", "label": 1}', b'{"id": "x", "body": "no text"}',
                 b'{"id": "y", "text": "no label"}', b'{"id": "g2", "text": "t", "label": 0}')
    rows, bad = split(path, required=["label"])
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(2, "missing required field 'label'"),
                                                 (3, "missing required field 'label'")]
    rows, bad = split(path)
    assert ids(rows) == ["g1", "y", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(2, "missing required field 'text'")]


def test_empty_or_whitespace_text(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", GOOD1, b'{"text": ""}', b'{"text": " \\n\\t "}', b'{"text": 7}', GOOD2)
    rows, bad = split(path)
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(2, "empty text"), (3, "empty text"),
                                                 (4, "field 'text' is int, expected a string")]


def test_huge_record_is_quarantined_without_holding_it(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        f.write(GOOD1 + b"\n")
        f.write(b'{"id": "huge", "text": "' + b"x" * (50 * MB) + b'"}\n')
        f.write(GOOD2 + b"\n")
    tracemalloc.start()
    try:
        rows, bad = split(path, max_record_bytes=1 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(2, "record is 50.0 MB, over max_record_bytes (1.0 MB)")]
    assert len(bad[0].raw) == 1000 and bad[0].raw.startswith('{"id": "huge"')
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MB while skipping a 50 MB record"


def test_huge_txt_file_is_not_read_whole(tmp_path):
    (tmp_path / "a.txt").write_text("small")
    (tmp_path / "b.txt").write_bytes(b"y" * (3 * MB))
    rows, bad = split(tmp_path, max_record_bytes=1 * MB)
    assert ids(rows) == ["a.txt"]
    assert [(b.source, b.line, b.reason) for b in bad] == [
        (str(tmp_path / "b.txt"), None, "record is 3.0 MB, over max_record_bytes (1.0 MB)")]


def test_txt_invalid_utf8(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"ok \xff\xfe")
    (tmp_path / "b.txt").write_text("fine")
    rows, bad = split(tmp_path)
    assert ids(rows) == ["b.txt"]
    assert (bad[0].line, bad[0].reason) == (None, "invalid UTF-8 at byte 3")


def test_csv_ragged_row(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('id,text,label\ng1,"first, good",a\nx,too,many,fields\ny,few\ng2,"multi\nline",b\n')
    rows, bad = split(path)
    assert [(r["id"], r["text"], r["label"]) for r in rows] == [("g1", "first, good", "a"), ("g2", "multi\nline", "b")]
    assert [(b.line, b.reason) for b in bad] == [(3, "ragged row: 4 fields, header has 3"),
                                                 (4, "ragged row: 2 fields, header has 3")]
    assert bad[0].raw == "x,too,many,fields\n"


def test_csv_invalid_utf8_and_empty_text(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,text\ng1,good\nx,bad \xff\ny,  \ng2,also good\n")
    rows, bad = split(path)
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(3, "invalid UTF-8 at byte 6"), (4, "empty text")]


def test_conll_wrong_column_count(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART-\tO\n\nHello\tO\nParis\tB-location\n\nbad\tO\textra\nline\tO\n\nBye\tO\n")
    rows, bad = split(path, format="conll")
    assert [(r["tokens"], r["tags"], r["text"]) for r in rows] == [
        (["Hello", "Paris"], ["O", "B-location"], "Hello Paris"), (["Bye"], ["O"], "Bye")]
    assert ids(rows) == ["a.conll:3", "a.conll:9"]
    assert [(b.line, b.reason, b.raw) for b in bad] == [(6, "CoNLL line has 3 columns, expected 2", "bad\tO\textra")]


def test_conll_whitespace_separated(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("EU B-ORG\nrejects O\n \nGerman B-MISC\n")
    rows, bad = split(path)
    assert [r["tags"] for r in rows] == [["B-ORG", "O"], ["B-MISC"]] and not bad


def test_parquet_unexpected_schema(tmp_path):
    pq.write_table(pa.table({"a": ["x"], "b": [1]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "2.parquet")
    pq.write_table(pa.table({"id": ["g1", "n", "e", "g2"], "text": ["good", None, " ", "also good"]}),
                   tmp_path / "3.parquet")
    rows, bad = split(tmp_path)
    assert ids(rows) == ["g1", "g2"]
    assert [(Path(b.source).name, b.line, b.reason) for b in bad] == [
        ("1.parquet", None, "parquet schema has no column 'text' (columns: a, b)"),
        ("2.parquet", None, "parquet column 'text' is int64, expected a string"),
        ("3.parquet", 2, "null text"),
        ("3.parquet", 3, "empty text"),
    ]


def test_parquet_oversize_row(tmp_path):
    pq.write_table(pa.table({"text": ["ok", "z" * (2 * MB), "fine"]}), tmp_path / "a.parquet")
    rows, bad = split(tmp_path / "a.parquet", max_record_bytes=MB)
    assert ids(rows) == ["a.parquet:1", "a.parquet:3"]
    assert [(b.line, b.reason) for b in bad] == [(2, "record is 2.0 MB, over max_record_bytes (1.0 MB)")]


def test_not_parquet_at_all(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"not parquet")
    rows, bad = split(tmp_path / "a.parquet")
    assert not rows and bad[0].line is None and bad[0].reason.startswith("not a readable parquet file")


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    data = gzip.compress(b"".join(json.dumps({"text": f"row {i}"}).encode() + b"\n" for i in range(20_000)))
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    rows, bad = split(path)
    assert 0 < len(rows) < 20_000
    assert bad[-1].line == len(rows) + 1 and bad[-1].reason.startswith("truncated gzip stream")


def test_json_array_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n {"id": "g1", "text": "one"},\n 5,\n {"id": "g2",\n  "text": "two"}\n]\n')
    rows, bad = split(path)
    assert ids(rows) == ["g1", "g2"]
    assert [(b.line, b.reason) for b in bad] == [(3, "not a JSON object: got int")]


def test_json_array_malformed_element_ends_the_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"text": "one"},\n {"text": oops},\n {"text": "never read"}]')
    rows, bad = split(path)
    assert [r["text"] for r in rows] == ["one"]
    assert bad[0].line == 2 and bad[0].reason.startswith("invalid JSON")
    assert bad[0].reason.endswith("rest of the JSON array skipped")


def test_csv_oversize_record(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'text\nfirst\n"' + b"x" * (3 * MB) + b'"\nlast\n')
    rows, bad = split(path, max_record_bytes=MB)
    assert [r["text"] for r in rows] == ["first", "last"]
    assert [(b.line, b.reason) for b in bad] == [(3, "record is 3.0 MB, over max_record_bytes (1.0 MB)")]
    assert bad[0].raw.startswith('"xxx') and len(bad[0].raw) == 1000


def test_csv_without_the_text_column(tmp_path):
    (tmp_path / "a.csv").write_text("body,label\nx,1\n")
    (tmp_path / "b.csv").write_text("text\nfine\n")
    rows, bad = split(tmp_path)
    assert [r["text"] for r in rows] == ["fine"]
    assert [(b.line, b.reason) for b in bad] == [(None, "CSV header has no column 'text' (columns: body, label)")]


def test_jsonl_with_byte_order_mark(tmp_path):
    rows, bad = split(jsonl(tmp_path / "a.jsonl", b"\xef\xbb\xbf" + GOOD1, GOOD2))
    assert ids(rows) == ["g1", "g2"] and not bad


def test_json_array_oversize_elements(tmp_path):
    (tmp_path / "a.json").write_text('[{"text": "' + "y" * (3 * MB) + '"}, {"text": "after"}]')
    rows, bad = split(tmp_path / "a.json", max_record_bytes=4 * MB)
    assert [r["text"] for r in rows] == ["y" * (3 * MB), "after"] and not bad
    rows, bad = split(tmp_path / "a.json", max_record_bytes=MB)
    assert not rows
    assert bad[0].reason == ("array element over max_record_bytes (1.0 MB) or invalid JSON; "
                             "rest of the JSON array skipped")
