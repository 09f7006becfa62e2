"""Ingestion: stream the input through its readers into committed Parquet shards.

Each shard directory holds ``data.parquet`` (the good records), ``quarantine.jsonl`` (the
bad records met while filling it: source, line, reason, raw text cut short) and
``stats.json``. Ingestion is deterministic, so after a kill it is redone and the shards
already committed are kept as they are. Ids are made unique within the run (a repeated
id gets a ``~N`` suffix), because steps, splits and resume key on them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash

from gristmill.io import BadRecord, open_reader
from gristmill.pipeline import store
from gristmill.records import ID, from_rows

MAX_SHARD_BYTES = 64 * 1024 * 1024


class StrictInputError(Exception):
    """Raised in strict mode at the first bad input record."""


@dataclass
class IngestedShard:
    index: int
    path: Path
    rows: int


def _reason_rule(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def build_table(rows: list[dict[str, Any]], source_hint: str) -> tuple[pa.Table, list[BadRecord]]:
    """Rows → table; rows whose field types conflict with the others become bad records."""
    try:
        return from_rows(rows), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass
    errors = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in row.items():
            if v is not None:
                columns.setdefault(k, []).append(v)
    types: dict[str, pa.DataType] = {}
    for k, values in columns.items():
        try:
            types[k] = pa.array(values).type
        except errors:
            types[k] = pa.array(values[:1]).type
    good: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    for row in rows:
        for k, v in row.items():
            if v is None:
                continue
            try:
                pa.array([v], type=types[k])
            except errors:
                raw = json.dumps(row, ensure_ascii=False, default=str)[:1000]
                bad.append(BadRecord(str(row.get("source", source_hint)), None,
                                     f"field type: {k!r} is {type(v).__name__}, other records have {types[k]}", raw))
                break
        else:
            good.append(row)
    schema = pa.schema(list(types.items()))
    try:
        return from_rows(good, schema if len(schema) else None), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise RuntimeError(f"{source_hint}: cannot build a table from the records: {exc}") from exc


def _commit_shard(shard_dir: Path, index: int, rows: list[dict[str, Any]], bad: list[BadRecord], source: str,
                  renamed: int) -> IngestedShard:
    final = shard_dir / store.shard_name(index)
    if final.is_dir():
        return IngestedShard(index, final, store.read_json(final / "stats.json")["rows"])
    table, conflicts = build_table(rows, source)
    bad = bad + conflicts
    tmp = store.tmp_sibling(final)
    tmp.mkdir(parents=True)
    store.write_table(tmp / "data.parquet", table)
    with open(tmp / "quarantine.jsonl", "w", encoding="utf-8") as f:
        for b in bad:
            f.write(json.dumps(b.to_json(), ensure_ascii=False) + "\n")
    by_reason = Counter(_reason_rule(b.reason) for b in bad)
    (tmp / "stats.json").write_text(json.dumps({"rows": table.num_rows, "quarantined": len(bad),
                                                "by_reason": dict(by_reason), "ids_renamed": renamed}))
    store.commit_dir(tmp, final)
    return IngestedShard(index, final, table.num_rows)


def _unique_id(row: dict[str, Any], seen: set[int]) -> bool:
    """Make ``row['id']`` unique in the run: a repeated id gets a ``~2``, ``~3``, ... suffix."""
    rid = str(row.get(ID))
    key = xxhash.xxh3_64_intdigest(rid.encode())
    if key in seen:
        n = 2
        while (key := xxhash.xxh3_64_intdigest(f"{rid}~{n}".encode())) in seen:
            n += 1
        row[ID] = f"{rid}~{n}"
        seen.add(key)
        return True
    seen.add(key)
    return False


def ingest(paths: list[Path], options: Any, shard_rows: int, shard_dir: Path, strict: bool = False,
           on_bytes: Callable[[int, int], None] | None = None) -> Iterator[IngestedShard]:
    """Read ``paths`` in order and yield committed shards of at most ``shard_rows`` rows.

    ``on_bytes(read, total)`` is called as input bytes are consumed (for a progress bar).
    In strict mode the first bad record raises :class:`StrictInputError` with its message.
    """
    shard_dir.mkdir(parents=True, exist_ok=True)
    readers = [open_reader(p, options) for p in paths]
    seen_ids: set[int] = set()
    total = sum(r.bytes_total() for r in readers)
    done_bytes = 0
    index = 0
    rows: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    size = renamed = 0
    for reader in readers:
        for n, item in enumerate(reader):
            if isinstance(item, BadRecord):
                if strict:
                    where = f"{item.source}:{item.line}" if item.line is not None else item.source
                    raise StrictInputError(f"{where}: {item.reason}")
                bad.append(item)
            else:
                renamed += _unique_id(item, seen_ids)
                rows.append(item)
                size += len(item.get("text") or "") if isinstance(item.get("text"), str) else 0
            if len(rows) >= shard_rows or size >= MAX_SHARD_BYTES:
                yield _commit_shard(shard_dir, index, rows, bad, str(reader.path), renamed)
                index, rows, bad, size, renamed = index + 1, [], [], 0, 0
            if on_bytes is not None and n % 256 == 0:
                on_bytes(done_bytes + reader.bytes_read(), total)
        done_bytes += reader.bytes_total()
        if on_bytes is not None:
            on_bytes(done_bytes, total)
    if rows or bad or index == 0:
        yield _commit_shard(shard_dir, index, rows, bad, str(paths[-1]) if paths else "", renamed)
