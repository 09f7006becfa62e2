"""Writers: tables in, files out, one table (shard) at a time, in order.

Formats: ``jsonl`` (``.gz``/``.zst`` by suffix), ``parquet``, ``csv``, ``hf`` (a directory
``datasets.load_from_disk`` opens) and the chat formats ``openai``, ``sharegpt``,
``alpaca`` (JSON Lines). Files are written under a temporary name and renamed into place
at ``close()``, so a killed run never leaves a complete-looking partial file.

**JSON text columns** (a field whose values fit no one Arrow type, stored as the JSON text
of each value and marked by ``gristmill.json`` field metadata; see :mod:`gristmill.records`):
the JSON Lines writers (``jsonl``, and ``openai`` / ``sharegpt`` / ``alpaca``, which read
``messages``, ``instruction``, ``input``, ``output`` and ``id`` and carry no other column)
decode them, so a value comes out as it went in (``"meta": 1`` stays ``1``, ``"x"`` stays
``"x"``). ``parquet``, ``csv`` and ``hf`` need one type per column and keep the JSON text
(``json.loads`` of a cell gives the value back); Parquet keeps the field metadata, so a
reader can tell such a column from one of plain strings.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from gristmill.io.base import compression_of
from gristmill.io.chat import ROW_WRITERS, check_columns
from gristmill.records import json_text_columns, json_value

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

WRITER_FORMATS = ("jsonl", "parquet", "csv", "hf", "openai", "sharegpt", "alpaca")
DECODES_JSON_TEXT = frozenset({"jsonl", "openai", "sharegpt", "alpaca"})
"""The formats whose writers write JSON text columns back as the values they hold."""
FORMAT_REQUIRES: dict[str, tuple[str, ...]] = {"hf": ("datasets",)}
"""Modules a format's writer needs beyond the base install (:mod:`gristmill.extras` names the extra)."""
BATCH_ROWS = 4096


class WriterOptions(BaseModel):
    """How to write the output dataset."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["jsonl", "parquet", "csv", "hf", "openai", "sharegpt", "alpaca"] = "jsonl"
    compression: Literal["gz", "zst"] | None = None
    system_prompt: str | None = None


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def dumps(obj: Any) -> bytes:
    """One JSON line (without the newline), UTF-8, non-ASCII kept as is."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=_default)
        except TypeError:
            pass  # e.g. integers over 64 bits: the stdlib handles them
    import json

    return json.dumps(obj, ensure_ascii=False, default=_default).encode("utf-8")


def _tmp(path: Path, tag: str = "tmp") -> Path:
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


def _rows(table: pa.Table) -> Iterator[list[dict[str, Any]]]:
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        yield batch.to_pylist()


class _Sink:
    """A binary file under a temporary name, optionally gzip / zstd compressed."""

    def __init__(self, path: Path, compression: str | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, _tmp(path)
        self.raw = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
        self.f: IO[bytes]
        if compression == "gz":
            self.f = gzip.GzipFile(fileobj=self.raw, mode="wb", compresslevel=6, mtime=0)
        elif compression == "zst":
            import zstandard

            self.f = zstandard.ZstdCompressor(level=3).stream_writer(self.raw)  # type: ignore[assignment]
        else:
            self.f = self.raw

    def close(self) -> Path:
        self.f.close()
        self.raw.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        for f in (self.f, self.raw):
            with contextlib.suppress(Exception):  # best effort: we are failing already
                f.close()
        self.tmp.unlink(missing_ok=True)


class JsonlWriter(Writer):
    """JSON Lines; with ``convert`` each row is first turned into the format's object."""

    def __init__(self, path: Path, compression: str | None,
                 convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 check: Callable[[list[str]], None] | None = None) -> None:
        self.path = path
        self.sink = _Sink(path, compression)
        self.convert, self.check = convert, check

    def write(self, table: pa.Table) -> None:
        if self.check is not None:
            self.check(table.column_names)
        convert = self.convert
        decode = list(json_text_columns(table.schema))  # JSON text columns: written as the values they hold
        for rows in _rows(table):
            for r in rows if decode else ():
                for name in decode:
                    r[name] = json_value(r[name])
            if convert is not None:
                rows = [convert(r) for r in rows]
            self.sink.f.write(b"".join(dumps(r) + b"\n" for r in rows))

    def close(self) -> list[Path]:
        return [self.sink.close()]

    def abort(self) -> None:
        self.sink.abort()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return dumps(value).decode("utf-8")
    return str(value)


class CsvWriter(Writer):
    """CSV with a header from the first table; None -> empty, lists/dicts -> JSON text."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.path = path
        self.sink = _Sink(path, compression)
        self.text = io.TextIOWrapper(self.sink.f, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text, lineterminator="\r\n")
        self.header: list[str] | None = None

    def write(self, table: pa.Table) -> None:
        if self.header is None:
            self.header = list(table.column_names)
            self.csv.writerow(self.header)
        extra = [c for c in table.column_names if c not in self.header and table.column(c).null_count < table.num_rows]
        if extra:
            raise ValueError(f"csv output: column(s) {', '.join(map(repr, extra))} appear after the first shard, "
                             f"whose header is: {', '.join(self.header)}")
        for rows in _rows(table):
            self.csv.writerows([_cell(r.get(c)) for c in self.header] for r in rows)

    def close(self) -> list[Path]:
        self.text.flush()
        self.text.detach()
        return [self.sink.close()]

    def abort(self) -> None:
        with contextlib.suppress(ValueError):
            self.text.detach()
        self.sink.abort()


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


class _Parts:
    """Tables streamed into part files (Parquet or Arrow IPC stream); a new part starts
    when a table's columns cannot join the current part's schema. ``finish`` merges them."""

    def __init__(self, workdir: Path, kind: str, compression: str | None = None) -> None:
        self.workdir, self.kind, self.compression = workdir, kind, compression
        self.parts: list[tuple[Path, pa.Schema]] = []
        self.writer: Any = None
        self.schema: pa.Schema | None = None

    def _open(self, path: Path, schema: pa.Schema) -> Any:
        if self.kind == "parquet":
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
    the union of their columns (in first-seen order), missing values null."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.path = path
        codec = {"gz": "gzip", "zst": "zstd"}.get(compression or "")
        self.parts = _Parts(_tmp(path, "parts"), "parquet", codec)

    def write(self, table: pa.Table) -> None:
        self.parts.write(table)

    def close(self) -> list[Path]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp(self.path)
        self.parts.finish(tmp)
        os.replace(tmp, self.path)
        return [self.path]

    def abort(self) -> None:
        self.parts.abort()


class HfWriter(Writer):
    """A Hugging Face ``datasets`` directory: shards stream to an Arrow file, which
    ``datasets`` memory-maps and saves with ``save_to_disk`` at close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts = _Parts(_tmp(path, "parts"), "arrow")

    def write(self, table: pa.Table) -> None:
        self.parts.write(table)

    def close(self) -> list[Path]:
        import datasets

        work = _tmp(self.path, "work")
        work.mkdir(parents=True, exist_ok=True)
        arrow = work / "data.arrow"
        try:
            self.parts.finish(arrow)
            ds = datasets.Dataset.from_file(str(arrow), in_memory=False)
            out = work / "dataset"
            bars = datasets.is_progress_bar_enabled()
            datasets.disable_progress_bars()
            try:  # an empty dataset needs one explicit shard to load back
                ds.save_to_disk(str(out), num_shards=1 if ds.num_rows == 0 else None)
            finally:
                if bars:
                    datasets.enable_progress_bars()
            del ds
            if self.path.is_dir():
                shutil.rmtree(self.path)
            elif self.path.exists():
                self.path.unlink()
            os.replace(out, self.path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return sorted(p for p in self.path.rglob("*") if p.is_file())

    def abort(self) -> None:
        self.parts.abort()


def open_writer(path: str | Path, format: str, **options: Any) -> Writer:
    """A writer of ``format`` at ``path``; options are :class:`WriterOptions` fields.

    For the JSON Lines formats and csv the compression is taken from the suffix
    (``.gz``/``.zst``) unless given; when given, the suffix is added if missing.
    """
    opts = WriterOptions(format=format, **options)
    path = Path(path)
    fmt = opts.format
    if opts.system_prompt is not None and fmt not in ("openai", "sharegpt"):
        raise ValueError(f"system_prompt applies to the openai and sharegpt formats, not to {fmt}")
    if fmt == "hf":
        if opts.compression is not None:
            raise ValueError("compression does not apply to the hf format")
        return HfWriter(path)
    if fmt == "parquet":
        return ParquetWriter(path, opts.compression)
    compression = opts.compression or compression_of(path)
    if opts.compression is not None and compression_of(path) != opts.compression:
        path = path.with_name(f"{path.name}.{opts.compression}")
    if fmt == "csv":
        return CsvWriter(path, compression)
    if fmt == "jsonl":
        return JsonlWriter(path, compression)
    row_writer, system = ROW_WRITERS[fmt], opts.system_prompt
    return JsonlWriter(path, compression, convert=lambda row: row_writer(row, system),
                       check=lambda names: check_columns(fmt, names))
