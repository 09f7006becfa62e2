"""Every writer's output reads back (or loads back) with the same payload."""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.io import BadRecord, ReaderOptions, open_reader, open_writer

CHARS = st.characters(exclude_categories=("Cs",))  # any code point UTF-8 can encode
TEXT = st.text(CHARS, min_size=1, max_size=200).filter(lambda s: not s.isspace())
ANY_TEXT = st.text(CHARS, max_size=200)
IDS = st.text(CHARS, min_size=1, max_size=20)
SPECIAL = st.sampled_from(["a\nb", "tab\there", 'say "hi", ok', "emoji 😀🧪", "line\r\nend", "\u2028sep", "x\x00y"])
TEXT_OR_SPECIAL = st.one_of(TEXT, SPECIAL)

RECORDS = st.lists(st.fixed_dictionaries({"id": IDS, "text": TEXT_OR_SPECIAL}),
                   min_size=1, max_size=8, unique_by=lambda r: r["id"])
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def write(path: Path, fmt: str, records: list[dict], **options) -> list[Path]:
    """Write ``records`` in two shards (so multi-shard writing is always exercised)."""
    writer = open_writer(path, fmt, **options)
    half = len(records) // 2
    for part in (records[:half], records[half:]):
        if part:
            writer.write(pa.Table.from_pylist(part))
    return writer.close()


def read(path: Path, fmt: str | None = None) -> list[dict]:
    items = list(open_reader(path, ReaderOptions(format=fmt)))
    assert not [i for i in items if isinstance(i, BadRecord)]
    return items


def payload(rows: list[dict], keys: tuple[str, ...]) -> list[tuple]:
    return [tuple(r[k] for k in keys) for r in rows]


def roundtrip_text(name: str, fmt: str, records: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        assert write(path, fmt, records) == [path]
        rows = read(path)
        assert payload(rows, ("id", "text")) == payload(records, ("id", "text"))
        assert {r["source"] for r in rows} == {str(path)}


@SETTINGS
@given(RECORDS)
def test_jsonl_roundtrip(records):
    roundtrip_text("out.jsonl", "jsonl", records)


@SETTINGS
@given(RECORDS)
def test_jsonl_gz_roundtrip(records):
    roundtrip_text("out.jsonl.gz", "jsonl", records)


@SETTINGS
@given(RECORDS)
def test_jsonl_zst_roundtrip(records):
    roundtrip_text("out.jsonl.zst", "jsonl", records)


@SETTINGS
@given(RECORDS)
def test_parquet_roundtrip(records):
    roundtrip_text("out.parquet", "parquet", records)


@SETTINGS
@given(st.lists(st.fixed_dictionaries({"id": IDS, "text": TEXT_OR_SPECIAL, "label": ANY_TEXT}),
                min_size=1, max_size=8, unique_by=lambda r: r["id"]))
def test_csv_roundtrip(records):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.csv"
        write(path, "csv", records)
        rows = read(path)
        assert payload(rows, ("id", "text", "label")) == payload(records, ("id", "text", "label"))


@SETTINGS
@given(st.lists(st.fixed_dictionaries({"id": IDS, "text": TEXT_OR_SPECIAL,
                                       "score": st.one_of(st.none(), st.floats(allow_nan=False))}),
                min_size=1, max_size=8, unique_by=lambda r: r["id"]))
def test_hf_roundtrip(records):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dataset"
        files = write(path, "hf", records)
        assert files and all(f.parent == path for f in files)
        assert datasets.load_from_disk(str(path)).to_list() == records


@SETTINGS
@given(st.lists(st.fixed_dictionaries({"id": IDS, "instruction": TEXT_OR_SPECIAL, "input": ANY_TEXT,
                                       "output": ANY_TEXT}),
                min_size=1, max_size=8, unique_by=lambda r: r["id"]))
def test_alpaca_roundtrip(records):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.jsonl"
        write(path, "alpaca", records)
        rows = read(path, "alpaca")
        keys = ("id", "instruction", "input", "output")
        assert payload(rows, keys) == payload(records, keys)
        assert [r["text"] for r in rows] == [r["instruction"] for r in records]


MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                           "content": ANY_TEXT}), min_size=1, max_size=5)
CHATS = st.lists(st.fixed_dictionaries({"id": IDS, "messages": MESSAGES}),
                 min_size=1, max_size=6, unique_by=lambda r: r["id"])


@SETTINGS
@given(CHATS)
def test_sharegpt_roundtrip(records):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.jsonl.gz"
        write(path, "sharegpt", records)
        rows = read(path, "sharegpt")
        assert payload(rows, ("id", "messages")) == payload(records, ("id", "messages"))


@SETTINGS
@given(CHATS)
def test_openai_roundtrip(records):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.jsonl"
        write(path, "openai", records)
        rows = read(path, "openai")
        assert payload(rows, ("id", "messages")) == payload(records, ("id", "messages"))
