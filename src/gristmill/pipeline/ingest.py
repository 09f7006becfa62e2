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
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from gristmill.io import BadRecord, open_reader
from gristmill.pipeline import store
from gristmill.records import (
    ID,
    PAYLOAD,
    from_rows,
    join_types,
    json_text_array,
    json_text_field,
    json_kind,
    json_text_reason,
    rule_of,
    type_conflict,
    unstorable,
)

MAX_SHARD_BYTES = 64 * 1024 * 1024


class StrictInputError(Exception):
    """Raised in strict mode at the first bad input record."""


@dataclass
class IngestedShard:
    index: int
    path: Path
    rows: int


ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, RecursionError)


def _array(values: list[Any], type: pa.DataType | None = None) -> tuple[pa.Array | None, str | None]:
    """``values`` as one Arrow array that Parquet can store, or None and why not."""
    try:
        arr = pa.array(values, type=type)
    except ARROW_ERRORS as exc:
        return None, (str(exc).splitlines() or [type(exc).__name__])[0]
    problem = unstorable(arr.type)
    return (None, problem) if problem else (arr, None)


def _payload_type(values: list[Any], pinned: pa.DataType | None) -> tuple[pa.DataType | None, list[bool]]:
    """The type a payload column keeps, and which values fit it.

    It is ``pinned`` (the column's type in earlier shards) widened where it can be, else the
    most common type of the values widened by the others where it can be (a struct with
    more fields, int to float); a value whose type cannot join it does not fit.
    """
    types: list[pa.DataType | None] = []
    for v in values:
        if v is None:
            types.append(None)
            continue
        arr, _ = _array([v])
        types.append(None if arr is None else arr.type)
    counts = Counter(t for t in types if t is not None and not pa.types.is_null(t))
    order = [t for t, _ in counts.most_common()]
    joined = pinned if pinned is not None else (order[0] if order else None)
    if joined is None:
        return None, [v is None for v in values]
    members = {joined}
    for t in order:
        wider = join_types([joined, t])
        if wider is not None:
            joined = wider
            members.add(t)
    fits = [v is None or (t is not None and (t in members or pa.types.is_null(t))) for v, t in zip(values, types)]
    return joined, fits


def payload_columns(ops: Iterable[Any]) -> list[str]:
    """The input columns the operators (a recipe's, in order) read, besides the payload columns, sorted.

    A column an earlier operator writes (``op.writes()``) is not read from the input there.
    Passed to :func:`ingest` as ``payload``, they keep their type like the payload columns do
    (an operator reading ``body`` gets strings, not JSON text); they change the shards, so
    the runner adds them to the input fingerprint when there are any.
    """
    read: set[str] = set()
    written: set[str] = set()
    for op in ops:
        read.update(c for c in op.reads() if c not in written)
        written.update(op.writes())
    return sorted(read - PAYLOAD)


def build_table(rows: list[dict[str, Any]], source_hint: str, lines: list[int | None] | None = None,
                pinned: dict[str, pa.DataType] | None = None,
                payload: Collection[str] = ()) -> tuple[pa.Table, list[BadRecord], dict[str, str]]:
    """Rows → ``(table, bad records, JSON text columns)``; valid JSON never makes it fail.

    Each column is built as one Arrow type. Where the values do not fit one type that
    Parquet can store (types that differ between rows, lists mixing types, ``{}`` in every
    row, nesting too deep to read back):

    - a payload column (:data:`~gristmill.records.PAYLOAD`: text, messages, instruction, ...)
      keeps its type: the type of ``pinned`` (the column in earlier shards) or else of most
      of its values, and each record whose value does not fit becomes a bad record
      ``field type: ...`` with its file and ``lines`` entry;
    - any other column becomes a JSON text column (see :mod:`gristmill.records`): every
      value is kept as its JSON text, and the third result maps the column to the reason
      (``int vs string``, ``[]: int vs string``, ``empty object``).

    A payload column whose values agree on no storable type is JSON text too. ``payload``
    names more columns to treat as payload columns (those a recipe's steps read).
    """
    keep = PAYLOAD.union(payload)
    lines = lines if lines is not None else [None] * len(rows)
    pinned = pinned or {}
    fast: pa.Table | None = None
    try:
        fast = from_rows(rows)
    except ARROW_ERRORS:
        pass
    if fast is not None and not any(unstorable(f.type) for f in fast.schema) and all(
            join_types([pinned[f.name], f.type]) is not None for f in fast.schema if f.name in pinned):
        return fast, [], {}
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    bad_rows: dict[int, str] = {}
    keep_types: dict[str, pa.DataType] = {}
    for n in names:
        if n not in keep:
            continue
        values = [row.get(n) for row in rows]
        arr, _ = _array(values)
        if arr is not None and (n not in pinned or join_types([pinned[n], arr.type]) is not None):
            continue
        target, fits = _payload_type(values, pinned.get(n))
        if target is None or unstorable(target):
            continue  # no type to keep: JSON text below
        keep_types[n] = target
        for i, ok in enumerate(fits):
            if not ok and i not in bad_rows:
                v = values[i]
                got, _ = _array([v])
                what = str(got.type) if got is not None else _kind_of(v)
                bad_rows[i] = f"field type: {n!r} is {what}, the other records have {target}"
    bad: list[BadRecord] = []
    if bad_rows:
        for i, reason in sorted(bad_rows.items()):
            row = rows[i]
            raw = json.dumps(row, ensure_ascii=False, default=str)[:1000]
            bad.append(BadRecord(str(row.get("source", source_hint)), lines[i], reason, raw))
        rows = [row for i, row in enumerate(rows) if i not in bad_rows]
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    json_columns: dict[str, str] = {}
    for n in names:
        values = [row.get(n) for row in rows]
        arr, problem = _array(values, keep_types.get(n))
        if arr is None and n in keep_types:
            arr, problem = _array(values)
        if arr is not None:
            arrays.append(arr)
            fields.append(pa.field(n, arr.type))
            continue
        reason = type_conflict(values) or problem or "no single type"
        json_columns[n] = reason
        arrays.append(json_text_array(values))
        fields.append(json_text_field(n, reason))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), bad, json_columns


def _kind_of(value: Any) -> str:
    inner = type_conflict([value])
    return f"{json_kind(value)} ({inner})" if inner else json_kind(value)


def _commit_shard(shard_dir: Path, index: int, rows: list[dict[str, Any]], lines: list[int | None],
                  bad: list[BadRecord], source: str, renamed: int, pinned: dict[str, pa.DataType],
                  strict: bool = False, payload: Collection[str] = (),
                  skipped: Counter[str] | None = None) -> IngestedShard:
    """Write shard ``index`` (unless committed already) and widen ``pinned`` with its payload types.
    ``skipped``: input records the readers passed over while filling it, by reason."""
    final = shard_dir / store.shard_name(index)
    if final.is_dir():
        _pin(pinned, pq.read_schema(final / "data.parquet"), payload)
        return IngestedShard(index, final, store.read_json(final / "stats.json")["rows"])
    table, conflicts, json_columns = build_table(rows, source, lines, pinned, payload)
    if strict and conflicts:
        raise StrictInputError(_where(conflicts[0]))
    _pin(pinned, table.schema, payload)
    bad = bad + conflicts
    tmp = store.tmp_sibling(final)
    tmp.mkdir(parents=True)
    store.write_table(tmp / "data.parquet", table)
    with open(tmp / "quarantine.jsonl", "w", encoding="utf-8") as f:
        for b in bad:
            f.write(json.dumps(b.to_json(), ensure_ascii=False) + "\n")
    by_reason = Counter(rule_of(b.reason) for b in bad)
    stats: dict[str, Any] = {"rows": table.num_rows, "quarantined": len(bad), "by_reason": dict(by_reason),
                             "ids_renamed": renamed}
    if json_columns:
        stats["json_columns"] = json_columns  # column -> why it is stored as JSON text
    if skipped:
        stats["skipped"] = dict(skipped)  # WARC request records, non-HTML responses, ... (not bad input)
    (tmp / "stats.json").write_text(json.dumps(stats))
    store.commit_dir(tmp, final)
    return IngestedShard(index, final, table.num_rows)


def _pin(pinned: dict[str, pa.DataType], schema: pa.Schema, payload: Collection[str] = ()) -> None:
    """Record the types of the payload columns of a committed shard for the shards after it."""
    for field in schema:
        if field.name not in PAYLOAD and field.name not in payload:
            continue
        if pa.types.is_null(field.type) or json_text_reason(field) is not None:
            continue
        joined = join_types([pinned[field.name], field.type]) if field.name in pinned else field.type
        if joined is not None:
            pinned[field.name] = joined


def _where(item: BadRecord) -> str:
    where = f"{item.source}:{item.line}" if item.line is not None else item.source
    return f"{where}: {item.reason}"


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
           on_bytes: Callable[[int, int], None] | None = None,
           payload: Collection[str] = ()) -> Iterator[IngestedShard]:
    """Read ``paths`` in order and yield committed shards of at most ``shard_rows`` rows.

    ``on_bytes(read, total)`` is called as input bytes are consumed (for a progress bar).
    In strict mode the first bad record raises :class:`StrictInputError` with its message:
    a record the reader rejects (invalid JSON, a truncated or corrupt file, a corrupt
    Parquet row group) or one whose payload field has the wrong type (see :func:`build_table`).
    Payload columns keep the type of the first shard that holds them, across shards;
    ``payload`` adds columns to them (the columns the recipe's steps read, see
    :func:`payload_columns`), so an operator reading one gets values of one type.
    """
    shard_dir.mkdir(parents=True, exist_ok=True)
    readers = [open_reader(p, options) for p in paths]
    seen_ids: set[int] = set()
    pinned: dict[str, pa.DataType] = {}
    total = sum(r.bytes_total() for r in readers)
    done_bytes = 0
    index = 0
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    bad: list[BadRecord] = []
    size = renamed = 0
    skipped: Counter[str] = Counter()  # records the readers passed over, not yet in a shard's stats
    for reader in readers:
        counted: Counter[str] = Counter()  # this reader's skips already in ``skipped`` or a shard
        for n, (line, item) in enumerate(reader.numbered()):
            if isinstance(item, BadRecord):
                if strict:
                    raise StrictInputError(_where(item))
                bad.append(item)
            else:
                renamed += _unique_id(item, seen_ids)
                rows.append(item)
                lines.append(line)
                size += len(item.get("text") or "") if isinstance(item.get("text"), str) else 0
            if len(rows) >= shard_rows or size >= MAX_SHARD_BYTES:
                skipped += reader.skipped - counted
                counted = reader.skipped.copy()
                yield _commit_shard(shard_dir, index, rows, lines, bad, str(reader.path), renamed, pinned, strict,
                                    payload, skipped)
                index, rows, lines, bad, size, renamed = index + 1, [], [], [], 0, 0
                skipped = Counter()
            if on_bytes is not None and n % 256 == 0:
                on_bytes(done_bytes + reader.bytes_read(), total)
        skipped += reader.skipped - counted
        done_bytes += reader.bytes_total()
        if on_bytes is not None:
            on_bytes(done_bytes, total)
    if rows or bad or skipped or index == 0:
        yield _commit_shard(shard_dir, index, rows, lines, bad, str(paths[-1]) if paths else "", renamed, pinned,
                            strict, payload, skipped)
