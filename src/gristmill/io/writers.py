"""Writers: tables in, files out, one table (shard) at a time, in order.

Formats: ``jsonl`` (``.gz``/``.zst`` by suffix), ``parquet``, ``csv``, ``hf`` (a directory
``datasets.load_from_disk`` opens), ``hub`` (the Hugging Face Hub layout, :mod:`gristmill.io.hub`),
the chat formats ``openai``, ``sharegpt``, ``alpaca`` and the trainer formats ``prompt_completion``
and ``preference`` (JSON Lines; :mod:`gristmill.io.chat`, :mod:`gristmill.io.trainer`). Files are
written under a temporary name and renamed into place at ``close()``, so a killed run never leaves
a complete-looking partial file.

The chat and trainer formats carry the provenance their shape has no place for (``source``,
``license``, annotations, the run's recipe fingerprint and operator versions) in each record's
``metadata`` object (:mod:`gristmill.io.metadata`); :func:`finish_output` writes ``axolotl.yaml``
beside chat output.

**JSON text columns** (a field whose values fit no one Arrow type, stored as the JSON text
of each value and marked by ``gristmill.json`` field metadata; see :mod:`gristmill.records`):
the JSON Lines writers (``jsonl``, and the chat and trainer formats, which read their payload
columns, ``id`` and the metadata columns) decode them, so a value comes out as it went in
(``"meta": 1`` stays ``1``, ``"x"`` stays ``"x"``). ``parquet``, ``csv``, ``hf`` and ``hub`` need
one type per column and keep the JSON text (``json.loads`` of a cell gives the value back);
Parquet keeps the field metadata, so a reader can tell such a column from one of plain strings.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gristmill.io.base import compression_of
from gristmill.io.chat import ROW_WRITERS, check_columns
from gristmill.io.hub import HubWriter
from gristmill.io.metadata import FIELD, metadata_columns, row_metadata
from gristmill.io.parts import ParquetWriter, Parts, Writer, conform, tmp_path
from gristmill.io.trainer import (AXOLOTL_FILE, TRAINER_FORMATS, axolotl_config, check_trainer_columns,
                                  write_preference, write_prompt_completion)
from gristmill.records import json_text_columns, json_value

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

__all__ = ["DECODES_JSON_TEXT", "FORMAT_REQUIRES", "RECORD_FORMATS", "WRITER_FORMATS", "CsvWriter", "HfWriter",
           "HubWriter", "JsonlWriter", "ParquetWriter", "Writer", "WriterOptions", "conform", "dumps",
           "finish_output", "open_writer"]

CHAT_FORMATS = ("openai", "sharegpt", "alpaca")
RECORD_FORMATS = (*CHAT_FORMATS, *TRAINER_FORMATS)
"""The JSON Lines formats that shape each row into a training record (with a ``metadata`` object)."""
WRITER_FORMATS = ("jsonl", "parquet", "csv", "hf", "hub", *RECORD_FORMATS)
DECODES_JSON_TEXT = frozenset({"jsonl", *RECORD_FORMATS})
"""The formats whose writers write JSON text columns back as the values they hold."""
FORMAT_REQUIRES: dict[str, tuple[str, ...]] = {"hf": ("datasets",)}
"""Modules a format's writer needs beyond the base install (:mod:`gristmill.extras` names the extra)."""
BATCH_ROWS = 4096
_SYSTEM_PROMPT = ("openai", "sharegpt", *TRAINER_FORMATS)


class WriterOptions(BaseModel):
    """How to write the output dataset."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["jsonl", "parquet", "csv", "hf", "hub", "openai", "sharegpt", "alpaca", "prompt_completion",
                    "preference"] = "jsonl"
    compression: Literal["gz", "zst"] | None = None
    system_prompt: str | None = None
    metadata: bool | list[str] = Field(
        True, description="Chat and trainer formats: the columns each record's metadata object carries (true: "
                          "source, license and common annotations; a list of names or fnmatch patterns; false: no "
                          "metadata object).")
    style: Literal["conversational", "standard"] | None = Field(
        None, description="prompt_completion and preference: TRL's conversational form (messages; the default) or "
                          "standard form (plain strings).")
    unpaired: bool = Field(False, description="preference: two records per pair, {prompt, completion, label}.")
    rows_per_file: int | None = Field(None, ge=1, description="hub: rows per Parquet file (default: one file per "
                                                              "split).")
    axolotl: bool = Field(True, description="openai, sharegpt, alpaca: write axolotl.yaml beside the data.")

    @model_validator(mode="after")
    def _options_fit_the_format(self) -> WriterOptions:
        fmt = self.format
        applies = [("system_prompt", self.system_prompt is not None, _SYSTEM_PROMPT,
                    "the openai and sharegpt formats (and prompt_completion, preference)"),
                   ("metadata", self.metadata is not True, RECORD_FORMATS, "the chat and trainer formats"),
                   ("style", self.style is not None, TRAINER_FORMATS, "the prompt_completion and preference formats"),
                   ("unpaired", self.unpaired, ("preference",), "the preference format"),
                   ("rows_per_file", self.rows_per_file is not None, ("hub",), "the hub format"),
                   ("axolotl", not self.axolotl, CHAT_FORMATS, "the openai, sharegpt and alpaca formats")]
        for name, given, formats, what in applies:
            if given and fmt not in formats:
                raise ValueError(f"{name} applies to {what}, not to {fmt}")
        if self.compression is not None and fmt in ("hf", "hub"):
            raise ValueError(f"compression does not apply to the {fmt} format")
        return self


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


def _rows(table: pa.Table) -> Iterator[list[dict[str, Any]]]:
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        yield batch.to_pylist()


class _Sink:
    """A binary file under a temporary name, optionally gzip / zstd compressed."""

    def __init__(self, path: Path, compression: str | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, tmp_path(path)
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
    """JSON Lines; with ``convert`` each row is first turned into the format's record (or records), and
    ``meta`` (a function of the table's column names) picks the columns of each record's ``metadata``."""

    def __init__(self, path: Path, compression: str | None,
                 convert: Callable[[dict[str, Any]], dict[str, Any] | list[dict[str, Any]]] | None = None,
                 check: Callable[[list[str]], None] | None = None,
                 meta: Callable[[list[str]], list[str]] | None = None,
                 provenance: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.sink = _Sink(path, compression)
        self.convert, self.check, self.meta, self.provenance = convert, check, meta, provenance

    def _records(self, rows: list[dict[str, Any]], columns: list[str]) -> Iterator[dict[str, Any]]:
        convert = self.convert
        if convert is None:
            yield from rows
            return
        with_meta = self.meta is not None
        for r in rows:
            out = convert(r)
            meta = row_metadata(r, columns, self.provenance) if with_meta else None
            for rec in out if isinstance(out, list) else (out,):
                yield {**rec, FIELD: meta} if meta else rec

    def write(self, table: pa.Table) -> None:
        if self.check is not None:
            self.check(table.column_names)
        columns = self.meta(table.column_names) if self.meta is not None else []
        decode = list(json_text_columns(table.schema))  # JSON text columns: written as the values they hold
        for rows in _rows(table):
            for r in rows if decode else ():
                for name in decode:
                    r[name] = json_value(r[name])
            self.sink.f.write(b"".join(dumps(r) + b"\n" for r in self._records(rows, columns)))

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


class HfWriter(Writer):
    """A Hugging Face ``datasets`` directory: shards stream to an Arrow file, which
    ``datasets`` memory-maps and saves with ``save_to_disk`` at close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts = Parts(tmp_path(path, "parts"), "arrow")

    def write(self, table: pa.Table) -> None:
        self.parts.write(table)

    def close(self) -> list[Path]:
        import datasets

        work = tmp_path(self.path, "work")
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


_PAYLOAD = {"openai": ("messages", "instruction", "input", "output"),
            "sharegpt": ("messages", "instruction", "input", "output"),
            "alpaca": ("messages", "instruction", "input", "output"),
            "prompt_completion": ("prompt", "completion", "messages", "instruction", "input", "output"),
            "preference": ("prompt", "chosen", "rejected", "messages", "instruction", "input")}
"""The columns a record format writes in the record itself (never repeated in its metadata)."""


def _record_converter(opts: WriterOptions) -> Callable[[dict[str, Any]], dict[str, Any] | list[dict[str, Any]]]:
    fmt, system, style = opts.format, opts.system_prompt, opts.style or "conversational"
    if fmt == "prompt_completion":
        return lambda row: write_prompt_completion(row, system, style)
    if fmt == "preference":
        unpaired = opts.unpaired
        return lambda row: write_preference(row, system, style, unpaired)
    row_writer = ROW_WRITERS[fmt]
    return lambda row: row_writer(row, system)


def open_writer(path: str | Path, format: str, *, provenance: Mapping[str, Any] | None = None,
                card: Mapping[str, Any] | None = None, **options: Any) -> Writer:
    """A writer of ``format`` at ``path``; options are :class:`WriterOptions` fields.

    For the JSON Lines formats and csv the compression is taken from the suffix
    (``.gz``/``.zst``) unless given; when given, the suffix is added if missing. ``provenance``
    (:func:`gristmill.io.metadata.run_provenance`) goes into the record formats' metadata and the
    Parquet files' metadata (``parquet``, ``hub``); ``card`` is the ``hub`` README's metadata
    overrides (:class:`gristmill.io.hub.CardMetadata` fields). For ``hub``, ``path`` is
    ``<root>/<split>`` (see :class:`~gristmill.io.hub.HubWriter`).
    """
    opts = WriterOptions(format=format, **options)
    path = Path(path)
    fmt = opts.format
    parquet_meta = {b"gristmill.provenance": dumps(dict(provenance))} if provenance else None
    if fmt == "hf":
        return HfWriter(path)
    if fmt == "hub":
        return HubWriter(path, rows_per_file=opts.rows_per_file, card=card, provenance=provenance)
    if fmt == "parquet":
        return ParquetWriter(path, opts.compression, parquet_meta)
    compression = opts.compression or compression_of(path)
    if opts.compression is not None and compression_of(path) != opts.compression:
        path = path.with_name(f"{path.name}.{opts.compression}")
    if fmt == "csv":
        return CsvWriter(path, compression)
    if fmt == "jsonl":
        return JsonlWriter(path, compression)
    check = ((lambda names: check_trainer_columns(fmt, names)) if fmt in TRAINER_FORMATS
             else (lambda names: check_columns(fmt, names)))
    wanted, payload = opts.metadata, _PAYLOAD[fmt]
    meta = None if wanted is False else (lambda names: metadata_columns(names, wanted, payload))
    return JsonlWriter(path, compression, convert=_record_converter(opts), check=check, meta=meta,
                       provenance=provenance)


def finish_output(directory: str | Path, format: str, files: Mapping[str, Path], **options: Any) -> list[Path]:
    """What an output gets beside its data files once every split is written (``files``: split name ->
    the file written for it, in ``directory``): ``axolotl.yaml`` for the chat formats (unless
    ``axolotl: false``). Returns the paths written."""
    opts = WriterOptions(format=format, **options)
    if format not in CHAT_FORMATS or not opts.axolotl:
        return []
    text = axolotl_config(format, files)
    if text is None:
        return []
    target = Path(directory) / AXOLOTL_FILE
    tmp = tmp_path(target)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return [target]
