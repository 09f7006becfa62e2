"""The batch representation: a ``pyarrow.Table`` of records, and helpers around it.

Every record has an ``id`` (unique within a run, stable across runs) and a ``source``
(the file it came from). Payload columns are free (``text``, ``instruction`` / ``input`` /
``output``, ``messages``, ``tokens`` / ``tags``); annotation columns are namespaced
(``quality.*``, ``pii.*``, ``dedup.cluster``). Columns starting with ``_`` are reserved
for the pipeline (``_reason`` on rejected rows).

**JSON text columns.** Valid JSON does not always fit one Arrow type: an object that is
``{}`` in every row (a struct with no fields, which Parquet cannot store), a list mixing
types (``[1, "a"]``), a field whose type differs between records or shards (``1`` here,
``"x"`` there), nesting deeper than Parquet reads back. Such a column is stored as *JSON
text*: a string column whose every non-null value is ``json.dumps`` of the original value
(so ``json.loads`` gives it back exactly: ``1`` is ``'1'``, ``"x"`` is ``'"x"'``), and
whose field metadata ``gristmill.json`` says why (``int vs string``). Payload columns
(:data:`PAYLOAD`, and the columns a recipe's steps read) are not converted where it can be
avoided: there, a value of another type than the column's is a bad record instead (see
``pipeline.ingest``). The JSON Lines writers (``jsonl`` and the chat formats) write the
values back as JSON (:func:`json_value`); Parquet, CSV and ``hf`` outputs keep the text
(Parquet with the field metadata), and the run's ``stats.json`` names the columns under
``output.json_columns``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

ID = "id"
TEXT = "text"
SOURCE = "source"
LICENSE = "license"
REASON = "_reason"

Batch = pa.Table

NO_REASON = "(no reason)"


@dataclass(frozen=True)
class Reason:
    """Why a row was dropped or quarantined: the ``rule`` it failed and a ``detail`` for people.

    The rule is what stats, reports and gates count by (``dropped.min_words``); the detail
    says by how much (``12 < 50``). Operators hand these to the filter base or
    :func:`~gristmill.ops.base.split_by_mask`; the ``_reason`` column holds ``str(reason)``,
    ``"<rule>: <detail>"`` (or the rule alone), and :meth:`parse` is the one parser of that text.
    """

    rule: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}" if self.detail else self.rule

    @classmethod
    def parse(cls, text: str | Reason | None) -> Reason:
        """The reason a ``_reason`` text holds: the rule is the part before the first ``:``
        (``"min_words: 12 < 50"`` -> ``min_words``, ``12 < 50``); :data:`NO_REASON` for an empty one."""
        if isinstance(text, Reason):
            return text
        if not text:
            return cls(NO_REASON)
        rule, _, detail = text.partition(":")
        return cls(rule.strip() or NO_REASON, detail.strip())


def reason(rule: str, detail: str = "") -> str:
    """The ``_reason`` text of :class:`Reason` ``(rule, detail)``: ``"min_words: 12 < 50"``, or the rule alone."""
    return str(Reason(rule, detail))


def rule_of(text: str | Reason | None) -> str:
    """The rule of a ``_reason`` text (:meth:`Reason.parse`)."""
    return Reason.parse(text).rule


PAYLOAD = frozenset({ID, TEXT, SOURCE, LICENSE, "messages", "instruction", "input", "output", "instances",
                     "tokens", "tags"})
"""Columns operators read with a fixed type; they keep it (a record that disagrees is quarantined)."""

JSON_TEXT = b"gristmill.json"
"""Field metadata key of a JSON text column; its value is the reason (``int vs string``)."""

MAX_PARQUET_DEPTH = 64  # Parquet readers refuse schemas nested 100 levels deep; each list is 2 levels


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
    if schema is not None:  # the schema's fields are kept with their metadata (JSON text columns)
        arrays, fields = [], []
        for n, values in cols.items():
            idx = schema.get_field_index(n)
            arrays.append(pa.array(values, type=schema.field(idx).type if idx >= 0 else None))
            fields.append(schema.field(idx) if idx >= 0 else pa.field(n, arrays[-1].type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    return pa.table(cols)


def json_kind(value: Any) -> str:
    """The JSON kind of a Python value: string, int, float, bool, list, object (or its type name)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_kind(t: pa.DataType) -> str:
    """An Arrow type named as the JSON kind it holds (``int64`` is int, ``struct<..>`` object)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"list of {type_kind(t.value_type)}"
    if pa.types.is_struct(t):
        return "object"
    return str(t)


def type_conflict(values: Iterable[Any], path: str = "", depth: int = 0) -> str | None:
    """Where the JSON values of one column disagree on a type, as ``path: int vs string``
    (``path`` empty at the top, ``[]`` for list items, ``.key`` for object fields); None
    if they agree (int and float agree: they are numbers)."""
    seen: dict[str, None] = {}
    vals = [v for v in values if v is not None]
    for v in vals:
        seen[json_kind(v)] = None
    kinds = list(seen)
    if len(kinds) > 1 and set(kinds) != {"int", "float"}:
        return f"{path + ': ' if path else ''}{' vs '.join(kinds)}"
    if depth > MAX_PARQUET_DEPTH or not kinds:
        return None
    if kinds == ["list"]:
        return type_conflict((x for v in vals for x in v), f"{path}[]", depth + 1)
    if kinds == ["object"]:
        keys: dict[str, None] = {}
        for v in vals:
            keys.update(dict.fromkeys(v))
        for k in keys:
            found = type_conflict((v.get(k) for v in vals), f"{path}.{k}" if path else k, depth + 1)
            if found:
                return found
    return None


def unstorable(t: pa.DataType) -> str | None:
    """Why Parquet cannot store (or read back) type ``t``, or None if it can."""

    def depth(t: pa.DataType) -> int:
        if pa.types.is_struct(t):
            if t.num_fields == 0:
                raise ValueError("empty object")
            return 1 + max(depth(t.field(i).type) for i in range(t.num_fields))
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return 2 + depth(t.value_type)
        if pa.types.is_map(t):
            return 2 + max(depth(t.key_type), depth(t.item_type))
        return 0

    try:
        levels = depth(t)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        levels = MAX_PARQUET_DEPTH + 1
    return f"nested too deeply for Parquet ({levels} levels)" if levels > MAX_PARQUET_DEPTH else None


def join_types(types: Iterable[pa.DataType]) -> pa.DataType | None:
    """The one type every type in ``types`` converts to without loss of records (null to
    anything, int to float, a struct to one with more fields, string to large string),
    or None when there is none (int and string, list of int and list of string)."""
    types = list(dict.fromkeys(types))
    if len(types) == 1:
        return types[0]
    try:
        joined = pa.unify_schemas([pa.schema([("c", t)]) for t in types], promote_options="permissive").field(0).type
        for t in types:
            if t != joined:
                pa.array([], t).cast(joined)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return joined


def json_text(value: Any) -> str | None:
    """``value`` as JSON text (None stays None); ``json.loads`` gives the value back."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def json_value(text: str | None) -> Any:
    """The value a JSON text cell holds (the inverse of :func:`json_text`; None stays None).

    A cell that is not valid JSON (an operator rewrote it as plain text) is returned as it is.
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def json_text_columns(schema: pa.Schema) -> dict[str, str]:
    """The JSON text columns of ``schema``, each with why it is JSON text."""
    return {f.name: r for f in schema if (r := json_text_reason(f)) is not None}


def json_text_field(name: str, reason: str) -> pa.Field:
    """The field of a JSON text column, its metadata naming why the column is JSON text."""
    return pa.field(name, pa.string(), metadata={JSON_TEXT: reason.encode("utf-8")})


def json_text_reason(field: pa.Field) -> str | None:
    """Why ``field`` holds JSON text, or None if it holds values of its own type."""
    meta = field.metadata or {}
    reason = meta.get(JSON_TEXT)
    return None if reason is None else reason.decode("utf-8")


def json_text_array(values: Sequence[Any]) -> pa.Array:
    """Python values as a JSON text string array."""
    return pa.array([json_text(v) for v in values], pa.string())


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
