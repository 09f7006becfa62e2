"""A small fake run directory laid out the way the executor writes one."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

STATS = {
    "run": "tiny",
    "recipe": "recipes/tiny.yaml",
    "started": "2026-11-26T04:00:00+00:00",
    "finished": "2026-11-26T04:00:12+00:00",
    "seconds": 12.3,
    "input": {
        "paths": ["recipes/data/sample.jsonl"],
        "format": "jsonl",
        "rows": 120,
        "quarantined": 3,
        "quarantined_by_reason": {"invalid JSON": 2, "empty text": 1},
        "shards": 2,
        "seconds": 0.2,
    },
    "steps": [
        {"index": 0, "step": "00-clean.normalize", "op": "clean.normalize", "kind": "mapper", "rows_in": 120,
         "rows_out": 120, "dropped": {}, "seconds": 0.5, "rows_per_s": 240.0, "cached": False},
        {"index": 1, "step": "01-filter.language", "op": "filter.language", "kind": "filter", "rows_in": 120,
         "rows_out": 118, "dropped": {"language": 2}, "seconds": 0.1, "rows_per_s": 1200.0, "cached": False},
        {"index": 2, "step": "02-filter.length", "op": "filter.length", "kind": "filter", "rows_in": 118,
         "rows_out": 100, "dropped": {"min_words": 15, "max_chars": 3}, "seconds": 0.01, "rows_per_s": 11800.0,
         "cached": True},
        {"index": 3, "step": "03-dedup.exact", "op": "dedup.exact", "kind": "global", "rows_in": 100,
         "rows_out": 95, "dropped": {"duplicate": 5}, "seconds": 0.2, "rows_per_s": 500.0, "cached": False},
    ],
    "output": {"rows": 95, "format": "jsonl", "files": ["data/train.jsonl", "data/test.jsonl"],
               "splits": {"train": 86, "test": 9}},
}

RECIPE = """name: tiny
input: {path: recipes/data/sample.jsonl}
steps:
  - op: filter.length
    params: {min_words: 50, note: "<b>bold</b> & more"}
"""

EVIL = "<script>alert('x')</script> & friends"


def _rejected_length() -> pa.Table:
    rows = [
        {"id": f"s{i}", "text": f"short text {i}", "_reason": f"min_words: {i} < 50"} for i in range(15)
    ] + [{"id": f"l{i}", "text": "x" * 1000, "_reason": "max_chars: 1000 > 800"} for i in range(3)]
    rows[0]["text"] = EVIL
    return pa.Table.from_pylist(rows)


def _rejected_dedup() -> pa.Table:
    return pa.table({
        "id": [f"d{i}" for i in range(5)],
        "text": ["same"] * 5,
        "_reason": ["duplicate: exact"] * 5,
        "_duplicate_of": ["k0"] * 5,
    })


def write_run(run_dir: Path, *, rejected: bool = True, quarantine: bool = True, recipe: bool = True) -> Path:
    """Write a fake run into ``run_dir``; each optional part can be left out."""
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "stats.json").write_text(json.dumps(STATS), encoding="utf-8")
    (run_dir / "data" / "train.jsonl").write_text('{"id": "a", "text": "hello"}\n' * 86, encoding="utf-8")
    (run_dir / "data" / "test.jsonl").write_text('{"id": "b", "text": "hello"}\n' * 9, encoding="utf-8")
    if recipe:
        (run_dir / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    if rejected:
        (run_dir / "rejected").mkdir()
        pq.write_table(pa.table({"id": ["g1", "g2"], "text": ["bonjour", "hola"],
                                 "_reason": ["language: fr", "language: es"]}),
                       run_dir / "rejected" / "01-filter.language.parquet")
        pq.write_table(_rejected_length(), run_dir / "rejected" / "02-filter.length.parquet", row_group_size=4)
        pq.write_table(_rejected_dedup(), run_dir / "rejected" / "03-dedup.exact.parquet")
    if quarantine:
        entries = [
            {"source": "recipes/data/sample.jsonl", "line": 7, "reason": "invalid JSON: Expecting value", "raw": "{oops"},
            {"source": "recipes/data/sample.jsonl", "line": 9, "reason": "invalid JSON: Unterminated string",
             "raw": '{"text": "<img src=x onerror=alert(1)>'},
            {"source": "recipes/data/other.jsonl", "line": None, "reason": "empty text", "raw": "y" * 500},
        ]
        with (run_dir / "quarantine.jsonl").open("w", encoding="utf-8") as fh:
            for e in entries:
                fh.write(json.dumps(e) + "\n")
    return run_dir


@pytest.fixture
def make_run():
    """``write_run`` itself, for tests that leave parts out or add their own."""
    return write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs" / "tiny")
