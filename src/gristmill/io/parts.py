"""Tables streamed into Parquet (or Arrow IPC) part files: the writer base class and the Parquet writer.

:class:`Writer` is the interface of every output writer (``write(table)`` once per shard, then
``close()``). :class:`Parts` streams shards into part files, starting a new part when a shard's
columns cannot join the current part's schema, and merges them at the end; :class:`ParquetWriter`
(``output.format: parquet``) and the ``hf`` and ``hub`` writers are built on it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Parts", "ParquetWriter", "Writer", "conform", "tmp_path"]


def tmp_path(path: Path, tag: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


class Writer:
    """Base writer: ``write(table)`` once per shard, then ``close()`` for the paths written."""

    path: Path

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> list[Path]:
        raise NotImplementedError

    def abort(self) -> None:
        """Drop what was written so far."""

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _same_kind(src: pa.DataType, dst: pa.DataType) -> bool:
    if src == dst or pa.types.is_null(src):
        return True
    strings = (pa.types.is_string, pa.types.is_large_string)
    return any(f(src) for f in strings) and any(f(dst) for f in strings)


def conform(table: pa.Table, schema: pa.Schema, strict: bool = True) -> pa.Table | None:
    """``table`` with ``schema``'s columns and types (missing ones null), or None if it cannot.

    Only null columns and string/large_string are cast when ``strict``, else any cast
    pyarrow allows. A column ``schema`` lacks is never dropped: the result is None.
    """
    n = table.num_rows
    names = set(schema.names)
    if any(c not in names for c in table.column_names):
        return None
    cols = []
    for field in schema:
        if field.name not in table.column_names:
            cols.append(pa.nulls(n, field.type))
            continue
        col = table.column(field.name)
        if col.type != field.type:
            if strict and not _same_kind(col.type, field.type):
                return None
            col = pa.nulls(n, field.type) if pa.types.is_null(col.type) else col.cast(field.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


class _IpcFile:
    """An Arrow IPC stream file (the format ``datasets`` memory-maps)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, schema)

    def write_table(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


class Parts:
    """Tables streamed into part files (Parquet or Arrow IPC stream); a new part starts
    when a table's columns cannot join the current part's schema. ``finish`` merges them."""

    def __init__(self, workdir: Path, kind: str, compression: str | None = None,
                 schema_metadata: dict[bytes, bytes] | None = None) -> None:
        self.workdir, self.kind, self.compression = workdir, kind, compression
        self.schema_metadata = schema_metadata
        self.parts: list[tuple[Path, pa.Schema]] = []
        self.writer: Any = None
        self.schema: pa.Schema | None = None

    def _open(self, path: Path, schema: pa.Schema) -> Any:
        if self.kind == "parquet":
            if self.schema_metadata:  # file-level key-value metadata (the run's provenance)
                schema = schema.with_metadata(self.schema_metadata)
            return pq.ParquetWriter(path, schema, compression=self.compression or "zstd")
        return _IpcFile(path, schema)

    def write(self, table: pa.Table) -> None:
        table = table.replace_schema_metadata(None)
        fitted = conform(table, self.schema) if self.writer is not None else None
        if fitted is None:
            self._close_part()
            self.workdir.mkdir(parents=True, exist_ok=True)
            path = self.workdir / f"part-{len(self.parts):05d}.{self.kind}"
            self.schema = table.schema
            self.writer = self._open(path, self.schema)
            self.parts.append((path, self.schema))
            fitted = table
        self.writer.write_table(fitted, **({"row_group_size": 64 * 1024} if self.kind == "parquet" else {}))

    def _close_part(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _batches(self, path: Path) -> Iterator[pa.RecordBatch]:
        if self.kind == "parquet":
            with pq.ParquetFile(path) as pf:
                yield from pf.iter_batches(batch_size=64 * 1024)
        else:
            with pa.memory_map(str(path)) as source:
                yield from pa.ipc.open_stream(source)

    def finish(self, target: Path) -> None:
        """Write everything to ``target`` (a single file of this kind) and drop the parts."""
        self._close_part()
        if not self.parts:
            writer = self._open(target, pa.schema([("id", pa.string())]))
            writer.close()
        elif len(self.parts) == 1:
            os.replace(self.parts[0][0], target)
        else:
            try:
                schema = pa.unify_schemas([s for _, s in self.parts], promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
                raise ValueError(f"shards have incompatible column types: {exc}") from None
            writer = self._open(target, schema)
            for path, _ in self.parts:
                for batch in self._batches(path):
                    writer.write_table(conform(pa.Table.from_batches([batch]), schema, strict=False))
            writer.close()
        self.abort()

    def abort(self) -> None:
        self._close_part()
        shutil.rmtree(self.workdir, ignore_errors=True)


class ParquetWriter(Writer):
    """One Parquet file. Shards may lack columns or hold them as all-null; the file has
    the union of their columns (in first-seen order), missing values null; ``schema_metadata``
    becomes the file's key-value metadata."""

    def __init__(self, path: Path, compression: str | None, schema_metadata: dict[bytes, bytes] | None = None) -> None:
        self.path = path
        codec = {"gz": "gzip", "zst": "zstd"}.get(compression or "")
        self.parts = Parts(tmp_path(path, "parts"), "parquet", codec, schema_metadata)

    def write(self, table: pa.Table) -> None:
        self.parts.write(table)

    def close(self) -> list[Path]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(self.path)
        self.parts.finish(tmp)
        os.replace(tmp, self.path)
        return [self.path]

    def abort(self) -> None:
        self.parts.abort()
