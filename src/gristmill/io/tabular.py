"""Tabular readers: Parquet (streamed by record batches) and CSV/TSV (streamed by lines).

Parquet drops: a file whose schema lacks the text column or holds it as a non-string
type (one bad record for the file, then the next file), an unreadable file (no valid
footer: truncated or not Parquet), and a row group that cannot be decoded (corrupt pages,
a page checksum mismatch where the writer stored checksums): one bad record for the rows
of that group not read (``line`` is the first of them), and reading goes on with the
next row group, so the readable groups of a damaged file are kept.
CSV drops: ragged rows (field count differs from the header), invalid UTF-8, records
over ``max_record_bytes``, and rows the csv parser rejects. All CSV values are strings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.io.base import BadRecord, Opened, Progress, cut, read_lines, size_reason, utf8_reason

Item = tuple[int, dict[str, Any]] | BadRecord

BATCH_BYTES = 8 << 20


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def iter_parquet(path: Path, text_column: str | None, limit: int, progress: Progress) -> Iterator[Item]:
    """Yield ``(row number, row)`` (1-based) or bad records for one Parquet file."""
    src = str(path)
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        yield BadRecord(src, None, f"not a readable parquet file: {exc}", "")
        return
    schema = pf.schema_arrow
    if text_column is not None:
        names = schema.names
        if text_column not in names:
            yield BadRecord(src, None, f"parquet schema has no column {text_column!r} (columns: {', '.join(names)})",
                            cut(str(schema)))
            return
        ttype = schema.field(text_column).type
        if not _is_string(ttype):
            reason = f"parquet column {text_column!r} is {ttype}, expected a string"
            yield BadRecord(src, None, reason, cut(str(schema)))
            return
    meta = pf.metadata
    rows_total = max(meta.num_rows, 1)
    avg = meta.serialized_size
    if meta.num_row_groups:
        avg = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) / rows_total
    batch_size = int(max(1, min(4096, BATCH_BYTES // max(avg, 1))))
    size_on_disk = path.stat().st_size
    done = 0
    progress.current = lambda: int(size_on_disk * done / rows_total)
    with pf:
        for group in range(meta.num_row_groups):
            first, count = done, meta.row_group(group).num_rows
            try:
                for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group]):
                    sizes = None
                    if text_column is not None and limit:
                        sizes = pc.binary_length(batch.column(text_column).cast(pa.large_string())).to_pylist()
                    rows = batch.to_pylist()
                    for i, row in enumerate(rows):
                        n = done + i + 1
                        if sizes is not None and sizes[i] is not None and sizes[i] > limit:
                            yield BadRecord(src, n, size_reason(sizes[i], limit), cut(row[text_column]))
                            continue
                        yield n, row
                    done += batch.num_rows
            except (pa.ArrowException, OSError) as exc:
                lost = f"rows {done + 1}-{first + count}" if first + count > done + 1 else f"row {done + 1}"
                yield BadRecord(src, done + 1, f"corrupt parquet row group: row group {group} ({lost} of "
                                f"{meta.num_rows}) cannot be read: {exc}", "")
                done = first + count


class _CsvLines:
    """Decoded physical lines for the csv parser, remembering what went wrong in a record."""

    def __init__(self, f: Opened, limit: int) -> None:
        self.lines = read_lines(f.stream, limit)
        self.limit = limit
        self.last = 0
        self.problem: str | None = None
        self.raw = ""

    def reset(self) -> None:
        self.problem, self.raw = None, ""

    def __iter__(self) -> Iterator[str]:
        for n, line, size in self.lines:
            self.last = n
            if size:  # the parser sees an empty line in its place; raw keeps its start
                self.problem = self.problem or size_reason(size, self.limit)
                self.raw += line[:4000].decode("utf-8", errors="replace")[: max(0, 1000 - len(self.raw))]
                yield "\n"
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.problem = self.problem or utf8_reason(exc)
                text = line.decode("utf-8", errors="replace")
            if n == 1:
                text = text.removeprefix("\ufeff")
            if len(self.raw) < 1000:
                self.raw += text[: 1000 - len(self.raw)]
            yield text


def iter_csv(path: Path, text_column: str, limit: int, progress: Progress) -> Iterator[Item]:
    """Yield ``(line, row)`` or bad records for one CSV (``.tsv``: tab-separated) file.

    ``line`` is the physical line where the record starts; the first row is the header.
    A header without ``text_column`` gives one bad record for the file.
    """
    src = str(path)
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)
    name = path.name.lower().removesuffix(".gz").removesuffix(".zst")
    delimiter = "\t" if name.endswith(".tsv") else ","
    with Opened(path) as f:
        progress.current = f.tell
        lines = _CsvLines(f, limit)
        reader = csv.reader(lines, delimiter=delimiter)
        header: list[str] | None = None
        start = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRecord(src, start, f"CSV error: {exc}", cut(lines.raw))
                lines.reset()
                start = lines.last + 1
                continue
            problem, raw, line = lines.problem, lines.raw, start
            lines.reset()
            start = lines.last + 1
            if problem:
                yield BadRecord(src, line, problem, cut(raw))
                if header is None:
                    return
                continue
            if not fields:
                continue
            if header is None:
                dupes = sorted({h for h in fields if fields.count(h) > 1})
                if dupes:
                    yield BadRecord(src, None, f"CSV header repeats column(s) {', '.join(map(repr, dupes))}", cut(raw))
                    return
                if text_column not in fields:
                    reason = f"CSV header has no column {text_column!r} (columns: {', '.join(fields)})"
                    yield BadRecord(src, None, reason, cut(raw))
                    return
                header = fields
                continue
            if len(fields) != len(header):
                yield BadRecord(src, line, f"ragged row: {len(fields)} fields, header has {len(header)}", cut(raw))
                continue
            yield line, dict(zip(header, fields, strict=True))


def row_raw(row: dict[str, Any]) -> str:
    """A record shown as JSON for a bad record's ``raw``."""
    short = {k: v[:1000] if isinstance(v, str) else v for k, v in row.items()}
    return cut(json.dumps(short, ensure_ascii=False, default=str)[:2000])
