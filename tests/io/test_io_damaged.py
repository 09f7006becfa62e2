"""A truncated or corrupt file is never read as a shorter one: the reader yields a bad
record naming the file, where it stopped and why, keeps what it read before, and
``--strict`` fails on it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.pipeline.ingest import StrictInputError, ingest


def lines(n: int, width: int = 0) -> bytes:
    return b"".join(json.dumps({"id": f"r{i}", "text": f"row {i} " + "x" * (i % 50 + width)}).encode() + b"\n"
                    for i in range(n))


def split(path: Path, **options) -> tuple[list[dict], list[BadRecord]]:
    items = list(open_reader(path, ReaderOptions(**options)))
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)]


def test_small_truncated_zstd_is_not_an_empty_file(tmp_path):
    data = zstandard.ZstdCompressor().compress(lines(5))
    path = tmp_path / "a.jsonl.zst"
    path.write_bytes(data[: len(data) - 6])
    rows, bad = split(path)
    assert not rows
    assert len(bad) == 1 and bad[0].source == str(path)
    assert bad[0].reason == (f"truncated zstd stream: the file ends after {len(data) - 6} bytes, inside the frame "
                             "that starts at byte 0; the whole file is lost")


def test_truncated_zstd_keeps_the_lines_before_the_cut_and_reports_the_cut(tmp_path):
    data = zstandard.ZstdCompressor().compress(lines(20_000))
    path = tmp_path / "a.jsonl.zst"
    path.write_bytes(data[: len(data) // 2])
    rows, bad = split(path)
    assert 0 < len(rows) < 20_000
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(len(rows))]
    assert len(bad) == 1  # the line cut in half is not also reported as invalid JSON
    assert bad[0].line == len(rows) + 1
    assert bad[0].reason.startswith("truncated zstd stream") and f"after line {len(rows)} is lost" in bad[0].reason


def test_zstd_frames_one_after_another_read_whole(tmp_path):
    cctx = zstandard.ZstdCompressor()
    path = tmp_path / "a.jsonl.zst"
    path.write_bytes(cctx.compress(lines(3000)) + cctx.compress(lines(7)) + b"")
    rows, bad = split(path)
    assert len(rows) == 3007 and not bad


def test_zstd_streamed_without_content_size_reads_whole(tmp_path):
    path = tmp_path / "a.jsonl.zst"
    with open(path, "wb") as f, zstandard.ZstdCompressor(write_checksum=True).stream_writer(f) as w:
        w.write(lines(5000))
    rows, bad = split(path)
    assert len(rows) == 5000 and not bad


def test_oversize_compressed_txt_counts_its_decompressed_size(tmp_path):
    path = tmp_path / "a.txt.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"a" * (64 << 20)))  # 64 MB of one byte: ~2 KB on disk
    rows, bad = split(path, max_record_bytes=1 << 20)
    assert not rows and bad[0].reason.startswith("record is 64.0 MB")


def test_corrupt_zstd_with_checksum(tmp_path):
    data = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(lines(2000)))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "a.jsonl.zst"
    path.write_bytes(bytes(data))
    _, bad = split(path)
    assert bad and bad[-1].reason.startswith("corrupt zstd stream (at or before byte ")


def test_not_zstd_at_all(tmp_path):
    path = tmp_path / "a.jsonl.zst"
    path.write_bytes(b'{"text": "plain json, misnamed"}\n')
    rows, bad = split(path)
    assert not rows and bad[0].reason.startswith("corrupt zstd stream") and bad[0].line is None


def test_truncated_gzip_names_the_cut(tmp_path):
    data = gzip.compress(lines(20_000))
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    rows, bad = split(path)
    assert 0 < len(rows) < 20_000 and len(bad) == 1
    assert bad[0].line == len(rows) + 1
    cut_at = len(data) // 2
    assert bad[0].reason.startswith(f"truncated gzip stream: the file ends inside a member after {cut_at} bytes")


@pytest.mark.parametrize("where", ["deflate data", "checksum"])
def test_corrupt_gzip(tmp_path, where):
    data = bytearray(gzip.compress(lines(2000)))
    data[12 if where == "deflate data" else len(data) - 6] ^= 0xFF  # a block header / the CRC
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(bytes(data))
    _, bad = split(path)
    assert bad and bad[-1].reason.startswith("corrupt gzip stream (at or before byte ")
    assert bad[-1].reason.endswith("is lost")


@pytest.mark.parametrize("name, content", [
    ("a.csv", b"text\n" + b"".join(b"row %d\n" % i for i in range(5000))),
    ("a.txt", b"one document " * 5000),
    ("a.conll", b"".join(b"EU\tB-ORG\nrejects\tO\n\n" for _ in range(3000))),
    ("a.json", b"[" + b",\n".join(b'{"text": "element %d"}' % i for i in range(5000)) + b"]"),
])
@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_every_line_format_reports_a_truncated_stream(tmp_path, name, content, codec):
    data = gzip.compress(content) if codec == "gz" else zstandard.ZstdCompressor().compress(content)
    path = tmp_path / f"{name}.{codec}"
    path.write_bytes(data[: len(data) * 2 // 3])
    _, bad = split(path)
    assert len(bad) == 1 and bad[0].reason.startswith(f"truncated {'gzip' if codec == 'gz' else 'zstd'} stream")


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite the middle of the text column's pages in ``group``."""
    col = pq.ParquetFile(path).metadata.row_group(group).column(1)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(path.read_bytes())
    for i in range(start + 30, start + col.total_compressed_size - 5):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_corrupt_parquet_row_group_loses_only_that_group(tmp_path):
    path = tmp_path / "a.parquet"
    table = pa.table({"id": [f"r{i}" for i in range(1000)],
                      "text": [f"row {i} " + "abc" * (i % 7) for i in range(1000)]})
    pq.write_table(table, path, row_group_size=100, compression="zstd")
    corrupt_row_group(path, 3)
    rows, bad = split(path)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1000) if not 300 <= i < 400]
    assert len(bad) == 1 and bad[0].line == 301 and bad[0].source == str(path)
    assert bad[0].reason.startswith("corrupt parquet row group: row group 3 (rows 301-400 of 1000) cannot be read: ")


def test_parquet_page_checksums_are_verified(tmp_path):
    path = tmp_path / "a.parquet"
    table = pa.table({"id": [f"r{i}" for i in range(200)], "text": [f"row {i}" for i in range(200)]})
    pq.write_table(table, path, row_group_size=100, compression="none", write_page_checksum=True,
                   use_dictionary=False)
    corrupt_row_group(path, 1)
    rows, bad = split(path)
    assert len(rows) == 100 and len(bad) == 1
    assert bad[0].reason.startswith("corrupt parquet row group: row group 1 (rows 101-200 of 200)")


def test_truncated_parquet_file(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), path)
    path.write_bytes(path.read_bytes()[:-20])
    rows, bad = split(path)
    assert not rows and bad[0].reason.startswith("not a readable parquet file")


@pytest.mark.parametrize("kind", ["zst", "gz", "parquet"])
def test_strict_ingest_fails_on_damaged_input(tmp_path, kind):
    if kind == "parquet":
        path = tmp_path / "a.parquet"
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(300)], "text": [f"row {i} abc" for i in range(300)]}),
                       path, row_group_size=100, compression="zstd")
        corrupt_row_group(path, 1)
    else:
        data = lines(50)
        data = gzip.compress(data) if kind == "gz" else zstandard.ZstdCompressor().compress(data)
        path = tmp_path / f"a.jsonl.{kind}"
        path.write_bytes(data[:-8])
    opts = ReaderOptions()
    with pytest.raises(StrictInputError, match=r"truncated|corrupt"):
        list(ingest([path], opts, 1000, tmp_path / "shards", strict=True))
    shards = list(ingest([path], opts, 1000, tmp_path / "lenient"))
    quarantine = (shards[0].path / "quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == 1 and json.loads(quarantine[0])["source"] == str(path)
