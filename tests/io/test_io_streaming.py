"""Readers stream: peak memory stays far below the size of what they read."""

from __future__ import annotations

import base64
import gzip
import random
import tracemalloc
from pathlib import Path

import pytest

from gristmill.io import BadRecord, ReaderOptions, open_reader

MB = 1 << 20


@pytest.fixture(scope="module")
def big_jsonl_gz(tmp_path_factory) -> tuple[Path, int]:
    """About 50 MB of JSON Lines (incompressible text, so the .gz is about 38 MB too)."""
    path = tmp_path_factory.mktemp("stream") / "big.jsonl.gz"
    rng = random.Random(7)
    rows = 0
    with gzip.open(path, "wb", compresslevel=1) as f:
        for _ in range(50):
            text = base64.b64encode(rng.randbytes(750_000)).decode()  # 1 MB of text per block
            for i in range(0, len(text), 20_000):
                f.write(b'{"id": "%d", "text": "%s"}\n' % (rows, text[i:i + 20_000].encode()))
                rows += 1
    return path, rows


def test_reading_a_large_gz_streams(big_jsonl_gz):
    path, rows = big_jsonl_gz
    reader = open_reader(path, ReaderOptions())
    assert reader.bytes_total() == path.stat().st_size > 30 * MB
    count, chars = 0, 0
    tracemalloc.start()
    try:
        for row in reader:
            assert not isinstance(row, BadRecord)
            count += 1
            chars += len(row["text"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows and chars == 50 * 1_000_000
    assert reader.bytes_read() == reader.bytes_total()
    assert peak < 10 * MB, f"peak {peak / MB:.1f} MB reading a {path.stat().st_size / MB:.0f} MB file"


def test_progress_grows_while_reading(big_jsonl_gz):
    path, _ = big_jsonl_gz
    reader = open_reader(path, ReaderOptions())
    seen = [reader.bytes_read() for i, _ in enumerate(reader) if i % 500 == 0]
    assert seen == sorted(seen) and seen[0] < seen[-1] < reader.bytes_total()
