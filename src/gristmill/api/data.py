"""Data in memory as an operator sees it: a list of dicts, a pandas ``DataFrame``, a pyarrow ``Table``
or a Hugging Face ``datasets.Dataset`` to and from one Arrow table, and ids for rows without one.

pandas and ``datasets`` are never imported here unless the data is of their kind (they are no
dependencies of the base install): the kind is told by the type's module name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pyarrow as pa

from gristmill.pipeline.ingest import _unique_id
from gristmill.records import ID, from_rows

Kind = Literal["rows", "pandas", "arrow", "hf"]

NO_ID = "row"
"""A row without an id gets ``row:<n>`` (``n`` counts from 1), as a reader names one ``<file>:<line>``."""


def kind_of(data: Any) -> Kind:
    """Which kind of data ``data`` is; raises ``TypeError`` for anything else (a single dict included)."""
    if isinstance(data, pa.Table):
        return "arrow"
    cls = type(data)
    module = cls.__module__.partition(".")[0]
    if module == "pandas" and cls.__name__ == "DataFrame":
        return "pandas"
    if module == "datasets" and cls.__name__ == "Dataset":
        return "hf"
    if isinstance(data, Mapping):
        raise TypeError("a dict is one row: pass a list of dicts")
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return "rows"
    raise TypeError(f"cannot use {cls.__name__} as data: pass a list of dicts, a pandas DataFrame, "
                    "a pyarrow Table or a datasets.Dataset")


def to_table(data: Any, kind: Kind) -> pa.Table:
    """``data`` of ``kind`` as one Arrow table (the index of a DataFrame is not kept)."""
    if kind == "arrow":
        return data
    if kind == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False).replace_schema_metadata(None)
    if kind == "hf":
        return data.with_format("arrow")[:]  # the visible rows (after select / shuffle), not the whole file
    rows = list(data)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"row {i} is a {type(row).__name__}, not a dict")
        value = row.get(ID)
        if value is not None and not isinstance(value, str):  # ids are text (with_ids), so 7 and "x" mix
            rows[i] = {**row, ID: str(value)}
    try:
        return from_rows(rows) if rows else pa.table({ID: pa.array([], pa.string())})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"the rows do not fit one type per field: {exc}") from None


def from_table(table: pa.Table, kind: Kind) -> Any:
    """``table`` as data of ``kind``: a list of dicts, a DataFrame, the table itself or a ``Dataset``."""
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    if kind == "hf":
        import datasets

        return datasets.Dataset(table)
    return table.to_pylist()


def with_ids(table: pa.Table) -> pa.Table:
    """``table`` with an ``id`` on every row, by the readers' rule: a row's own id as text when it
    has one, else ``row:<n>``; then made unique as in a run (a repeated id gets ``~2``, ``~3``, ...).
    A table without an ``id`` column gets one in front."""
    given = table.column(ID).to_pylist() if ID in table.column_names else [None] * table.num_rows
    seen: set[int] = set()
    ids = []
    for n, value in enumerate(given, start=1):
        row = {ID: str(value) if value is not None and value != "" else f"{NO_ID}:{n}"}
        _unique_id(row, seen)
        ids.append(row[ID])
    column = pa.array(ids, pa.string())
    if ID in table.column_names:
        return table.set_column(table.schema.get_field_index(ID), ID, column)
    return table.add_column(0, ID, column)


def batches(table: pa.Table, size: int | None) -> list[pa.Table]:
    """``table`` cut into batches of ``size`` rows (one batch when ``size`` is None); never none."""
    if size is not None and size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    if size is None or size >= table.num_rows:
        return [table]
    return [table.slice(start, size) for start in range(0, table.num_rows, size)]
