"""``open_reader``: find the files of an input path, pick the format, stream records.

Every record comes out as a dict with ``id`` first, its payload fields, and ``source``
(the file it came from). The text column is renamed to ``text``; the id column to
``id`` (when a record has none, it is ``"<file name>:<line>"``). A record that cannot
be used comes out as a :class:`BadRecord` instead, and reading goes on.
"""

from __future__ import annotations

import glob as globlib
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gristmill.io.base import BadRecord, InputError, Progress, ReaderOptions, RecordError, StreamError
from gristmill.io.chat import SHAPES, kept_source
from gristmill.io.documents import DOCUMENT_FORMATS, DOCUMENT_SUFFIXES, Extractors, check_modules, iter_document
from gristmill.io.documents import columns as document_columns
from gristmill.io.images import (IMAGE_FORMATS, IMAGE_SUFFIXES, image_columns, image_container, iter_image_file,
                                 listed_kinds)
from gristmill.io.jsonl import iter_json
from gristmill.io.tabular import iter_csv, iter_parquet, row_raw
from gristmill.io.text import iter_conll, iter_txt, split_chunks

FORMATS = ("jsonl", "parquet", "csv", "txt", "conll", "self_instruct", "alpaca", "sharegpt", "openai",
           *DOCUMENT_FORMATS, *IMAGE_FORMATS)
SUFFIXES = {
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv", ".tsv": "csv",
    ".txt": "txt",
    ".conll": "conll", ".iob": "conll", ".bio": "conll", ".annotated": "conll",
    **DOCUMENT_SUFFIXES,  # .warc(.gz), .wet(.gz), .html, .htm, .pdf, .md
    **IMAGE_SUFFIXES,  # .png, .jpg, ... (images), .arrow (image_table)
}
EXPECTED = ("expected one of jsonl, jsonl.gz, jsonl.zst, json, parquet, csv, tsv, txt (file or directory), conll, "
            "warc, warc.gz, wet, wet.gz, html, htm, pdf, md, png, jpg (and other images), MNIST idx (.gz), "
            "or an explicit format: " + ", ".join(FORMATS))
PLAIN = {"jsonl", "parquet", "csv"}
CHUNKABLE = PLAIN | {"txt", *DOCUMENT_FORMATS}
CHAT = {"sharegpt", "openai"}
PAGES = {"markdown", "html", "pdf"}  # documents that also sit beside data files (README.md, docs)
DEFAULT_COLUMNS = {
    "txt": ["text"],
    "conll": ["tokens", "tags", "text"],
    "self_instruct": ["name", "instruction", "instances", "is_classification", "input", "output", "text"],
    "alpaca": ["instruction", "input", "output", "text"],
    "sharegpt": ["messages"],
    "openai": ["messages"],
}
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
try:
    import zstandard

    READ_ERRORS += (zstandard.ZstdError,)
except ImportError:  # pragma: no cover
    pass


def lost_reason(exc: BaseException, last: int | None) -> str:
    """The bad record's reason for a file that stopped being readable after line ``last``."""
    reason = str(exc) if isinstance(exc, StreamError) else f"unreadable file: {type(exc).__name__}: {exc}"
    where = "the whole file" if last is None else f"everything after line {last}"
    return f"{reason}; {where} is lost"


def container_of(path: Path) -> str | None:
    """The on-disk format a file name implies (``a.jsonl.gz`` -> ``jsonl``), or None."""
    name = path.name.lower()
    for comp in (".gz", ".zst"):
        name = name.removesuffix(comp)
    return SUFFIXES.get(os.path.splitext(name)[1]) or image_container(name)


def _listing(path: Path, pattern: str) -> list[Path]:
    return sorted(p for p in path.rglob(pattern) if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(path).parts))


def _files_of(path: Path, options: ReaderOptions) -> tuple[list[Path], str, Path]:
    """The files a path names, their format, and the base their txt ids are relative to."""
    s, fmt = str(path), options.format
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"{s}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise InputError(f"{s}: directory not readable (permission denied)")
        if fmt == "txt" or (fmt is not None and "glob" in options.model_fields_set):
            files = _listing(path, options.glob)
            if not files:
                raise InputError(f"{s}: no files matching {options.glob!r} in this directory")
            return files, fmt, path
        candidates = _listing(path, "*")
        if fmt is None:
            kinds = sorted({k for p in candidates if (k := container_of(p)) is not None})
            if set(kinds) - PAGES:  # a README.md beside data files is not the data
                kinds = [k for k in kinds if k not in PAGES]
            if set(kinds) - PAGES - {"images"}:  # pictures beside data files are not the data either
                kinds = [k for k in kinds if k != "images"]
            if not kinds:
                raise InputError(f"{s}: directory holds no files of a known format; {EXPECTED}")
            if len(kinds) > 1:
                raise InputError(f"{s}: directory mixes formats ({', '.join(kinds)}); set format to read one of them")
            fmt = kinds[0]
            if fmt == "txt":
                return _files_of(path, options.model_copy(update={"format": "txt"}))
        wanted = {fmt} if fmt not in SHAPES else {"jsonl", "parquet"}
        if fmt in IMAGE_FORMATS:
            wanted = listed_kinds(fmt)
        files = [p for p in candidates if container_of(p) in wanted]
        if not files:
            raise InputError(f"{s}: directory holds no {fmt} files")
        return files, fmt, path
    if path.exists():
        files, base = [path], path.parent
    elif any(c in s for c in "*?["):
        files = sorted(Path(p) for p in globlib.glob(s, recursive=True) if os.path.isfile(p))
        if not files:
            raise InputError(f"{s}: no files match this pattern")
        base = Path(os.path.commonpath([str(p.parent) for p in files]))
    else:
        raise InputError(f"{s}: no such file or directory; {EXPECTED}")
    if fmt is None:
        kinds = sorted({container_of(p) or p.suffix for p in files})
        if len(kinds) > 1:
            raise InputError(f"{s}: files of several formats ({', '.join(kinds)}); set format to read one of them")
        fmt = container_of(files[0])
        if fmt is None:
            raise InputError(f"{s}: unknown format {files[0].suffix or files[0].name!r}; {EXPECTED}")
    return files, fmt, base


def open_reader(path: str | Path, options: ReaderOptions | None = None) -> Reader:
    """A streaming reader over ``path`` (a file, a directory or a glob).

    Raises :class:`InputError` before reading anything when the path is missing or
    unreadable, or its format is unknown.
    """
    options = options or ReaderOptions()
    path = Path(path)
    files, fmt, base = _files_of(path, options)
    for f in files:
        if not os.access(f, os.R_OK):
            raise InputError(f"{f}: not readable (permission denied)")
    check_modules(path, fmt, options)  # a format whose library is missing: the modules, for the pip line
    if options.chunk_chars is not None and fmt not in CHUNKABLE:
        raise InputError(f"{path}: chunk_chars applies to text records (jsonl, parquet, csv, txt), not to {fmt}")
    return Reader(path, files, fmt, base, options)


class Reader:
    """Streams the records of some files of one format; memory does not grow with their size."""

    def __init__(self, path: Path, files: list[Path], fmt: str, base: Path, options: ReaderOptions) -> None:
        self.path = path
        self.files = files
        self.format = fmt
        self.base = base
        self.options = options
        self._progress = Progress()
        self.skipped: Counter[str] = Counter()  # records read but not used, by reason (WARC request records, ...)
        self._extractors = Extractors(options.extractor)

    def bytes_total(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def bytes_read(self) -> int:
        return self._progress.read()

    def columns(self) -> list[str]:
        """The columns records will have, from the first records of the first file."""
        cols: dict[str, None] = {"id": None}
        if self.format in DOCUMENT_FORMATS:  # known without reading (a WARC of images would be read whole)
            cols.update(dict.fromkeys(document_columns(self.format, self.options)))
            return [c for c in cols if c != "license"] + ["source", "license"]
        if self.format in IMAGE_FORMATS:  # from the first file's header or schema, no image read
            return image_columns(self.format, self.files, self.options)
        peek = Reader(self.path, self.files[:1], self.format, self.base, self.options)
        it = iter(peek)
        try:
            good = 0
            for n, item in enumerate(it):
                if isinstance(item, dict):
                    cols.update(dict.fromkeys(item))
                    good += 1
                if good >= 20 or n >= 200:
                    break
        finally:
            it.close()  # type: ignore[attr-defined]
        cols.update(dict.fromkeys(DEFAULT_COLUMNS.get(self.format, ["text"])))
        cols.update(dict.fromkeys(self.options.required))  # (renamed below when it is the text column)
        if self.format in PLAIN and self.options.text_column != "text":
            cols.pop(self.options.text_column, None)
        cols.pop("source", None)
        cols["source"] = None
        if "license" in cols or self.options.license is not None:
            cols.pop("license", None)
            cols["license"] = None
        return list(cols)

    def __iter__(self) -> Iterator[dict[str, Any] | BadRecord]:
        for _, item in self.numbered():
            yield item

    def numbered(self) -> Iterator[tuple[int | None, dict[str, Any] | BadRecord]]:
        """Like iterating the reader, each item with the line (row number for Parquet) it
        came from, or None where a record has no line (a txt file, a whole-file problem)."""
        self._progress = progress = Progress()
        self.skipped.clear()
        self._extractors = Extractors(self.options.extractor)  # trafilatura's deduplication starts afresh
        for f in self.files:
            yield from self._read_file(f, progress)
            progress.done += f.stat().st_size
            progress.current = lambda: 0

    def _source(self, f: Path, progress: Progress) -> Iterator[tuple[int | None, dict[str, Any]] | BadRecord]:
        limit = self.options.max_record_bytes
        fmt = self.format
        if fmt == "txt":
            rel = f.name if f == self.path else f.relative_to(self.base).as_posix()
            return iter_txt(f, rel, limit, progress)
        if fmt == "conll":
            return iter_conll(f, limit, progress)
        if fmt in DOCUMENT_FORMATS:
            rel = f.name if f == self.path else f.relative_to(self.base).as_posix()
            return iter_document(fmt, f, rel, self.options, progress, self.skipped, self._extractors)
        if fmt == "csv":
            return iter_csv(f, self.options.text_column, limit, progress)
        if fmt == "parquet" or (fmt in SHAPES and container_of(f) == "parquet"):
            return iter_parquet(f, self.options.text_column if fmt == "parquet" else None, limit, progress)
        return iter_json(f, limit, progress)

    def _read_file(self, f: Path, progress: Progress) -> Iterator[tuple[int | None, dict[str, Any] | BadRecord]]:
        src = str(f)
        if self.format in IMAGE_FORMATS:  # image records carry their own ids, labels and sources
            yield from iter_image_file(self.format, f, self.path, self.base, self.options, progress)
            return
        items = self._source(f, progress)
        finish = self._finisher(f.name, src)
        chunk = self.options.chunk_chars
        last: int | None = None  # the last line reached, for a stream that breaks after it
        try:
            for item in items:
                if type(item) is BadRecord:
                    last = item.line if item.line is not None else last
                    yield item.line, item
                    continue
                line, obj = item  # type: ignore[misc]
                last = line
                try:
                    row = finish(obj, line)
                except RecordError as exc:
                    yield line, BadRecord(src, line, str(exc), row_raw(obj))
                    continue
                if chunk is None:
                    yield line, row
                    continue
                rid = row["id"]
                for k, piece in enumerate(split_chunks(row["text"], chunk)):
                    part = dict(row)
                    part["id"], part["text"] = f"{rid}#{k}", piece
                    yield line, part
        except READ_ERRORS as exc:  # a truncated or corrupt compressed stream, an I/O error
            at = None if last is None else last + 1  # the line the stream broke in
            yield at, BadRecord(src, at, lost_reason(exc, last), "")

    def _finisher(self, name: str, src: str) -> Callable[[dict[str, Any], int | None], dict[str, Any]]:
        """The function that validates one parsed record of a file and gives it its id,
        text, source and license (raising :class:`RecordError` for a bad record)."""
        opts = self.options
        required, tc, idc, license_ = opts.required, opts.text_column, opts.id_column, opts.license
        shape = SHAPES.get(self.format)
        plain, has_text = self.format in PLAIN, self.format not in CHAT

        def finish(obj: dict[str, Any], line: int | None) -> dict[str, Any]:
            for key in required:
                if obj.get(key) is None:
                    raise RecordError(f"missing required field {key!r}")
            row = shape(obj) if shape is not None else obj
            if plain:
                text = row.get(tc)
                if type(text) is not str:
                    if tc not in row:
                        raise RecordError(f"missing required field {tc!r}")
                    if text is None:
                        raise RecordError(f"null {tc}")
                    if not isinstance(text, str):
                        raise RecordError(f"field {tc!r} is {type(text).__name__}, expected a string")
                if tc != "text":
                    row["text"] = row.pop(tc)
            if has_text:
                text = row["text"]
                if not text or text.isspace():
                    raise RecordError("empty text")
            rid = row.pop(idc, None)
            if idc != "id":
                row.pop("id", None)
            out = {"id": str(rid) if rid is not None and rid != "" else (name if line is None else f"{name}:{line}")}
            out.update(row)
            # a gristmill chat record names the data it came from in its metadata: that stays its source
            out["source"] = (kept_source(obj) if shape is not None else None) or src
            if license_ is not None and not out.get("license"):
                out["license"] = license_
            return out

        return finish
