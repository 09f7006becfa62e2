"""The batch representation: a ``pyarrow.Table`` of records, and helpers around it.

Every record has an ``id`` (unique within a run, stable across runs) and a ``source``
(the file it came from). Payload columns are free (``text``, ``instruction`` / ``input`` /
``output``, ``messages``, ``tokens`` / ``tags``); annotation columns are namespaced
(``quality.*``, ``pii.*``, ``dedup.cluster``). Columns starting with ``_`` are reserved
for the pipeline (``_reason`` on rejected rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

ID = "id"
TEXT = "text"
SOURCE = "source"
LICENSE = "license"
REASON = "_reason"

Batch = pa.Table


def empty_batch(columns: Sequence[str] = (ID, TEXT)) -> pa.Table:
    """A zero-row table with string columns named ``columns``."""
    return pa.table({c: pa.array([], pa.string()) for c in columns})


def from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None) -> pa.Table:
    """Build a table from row dicts; missing keys become nulls. Raises on type conflicts."""
    if not rows:
        return schema.empty_table() if schema is not None else empty_batch()
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    cols = {n: [row.get(n) for row in rows] for n in names}
    if schema is not None:
        arrays = {}
        for n, values in cols.items():
            idx = schema.get_field_index(n)
            arrays[n] = pa.array(values, type=schema.field(idx).type if idx >= 0 else None)
        return pa.table(arrays)
    return pa.table(cols)


def column_list(batch: pa.Table, name: str) -> list[Any]:
    """A column as a Python list; a missing column reads as all ``None``."""
    if name not in batch.column_names:
        return [None] * batch.num_rows
    return batch.column(name).to_pylist()


def set_column(batch: pa.Table, name: str, values: Sequence[Any] | pa.Array | pa.ChunkedArray) -> pa.Table:
    """Return ``batch`` with column ``name`` added or replaced by ``values``."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(list(values))
    if len(values) != batch.num_rows:
        raise ValueError(f"column {name!r} has {len(values)} values for {batch.num_rows} rows")
    idx = batch.schema.get_field_index(name)
    if idx >= 0:
        return batch.set_column(idx, name, values)
    return batch.append_column(name, values)


def take_mask(batch: pa.Table, mask: Sequence[bool]) -> pa.Table:
    """Rows of ``batch`` where ``mask`` is true."""
    return batch.filter(pa.array(mask, pa.bool_()))


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables whose schemas may differ by missing or all-null columns."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return empty_batch()
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")
