"""Image input formats: image folders, lists of paths, tables of image bytes, and MNIST's IDX files.

**The image record.** Every image reader gives rows of one layout, which the ``image.*`` operators,
the report's pictures and the image trainers read:

============== ========== ==================================================================
column         type       what
============== ========== ==================================================================
``id``         string     the folder reader: the path below the input folder (``3/img_17.png``);
                          the others: the row's ``id`` column, else ``<file name>:<n>`` (n from 1)
``image``      binary     the encoded file bytes as stored (PNG, JPEG, ...; IDX pixels as PNG)
``image.width``  int64    pixels, from the header
``image.height`` int64    pixels, from the header
``image.mode``   string   Pillow's mode: ``L`` (8-bit gray), ``RGB``, ``RGBA``, ``P``, ``I;16`` ...
``image.format`` string   Pillow's format name: ``PNG``, ``JPEG``, ``GIF``, ``BMP``, ``TIFF``, ``WEBP``
``label``      string     when known: the sub-folder, the list's or table's ``label`` column
                          (Hugging Face class indices turned into their names), the IDX label
``split``      string     IDX only: ``train`` (``train-*`` files) or ``test`` (``t10k-*``)
``source``     string     the image file; for tables and IDX files, the file that holds the row
``license``    string     the input's ``license`` option, where the row carries none
============== ========== ==================================================================

Other columns of a list or a table are kept as they are (a list's path column as ``image.path``, and a
Hugging Face image struct's ``path`` too). Nothing here decodes pixels: the header alone is read
(``image.validate`` decodes them), so a truncated file is read as a record and rejected by the
validator with its reason.

Formats (``input.format``; a directory of image files and IDX files are detected from their names):

* ``images``: image files (``.png .jpg .jpeg .gif .bmp .webp .tif .tiff .ppm .pgm .pbm``), a file, a
  folder (read recursively) or a glob; the label is the first sub-folder below the input folder
  (``digits/3/a.png`` -> ``3``, as torchvision's ``ImageFolder``), none for files at its top;
* ``image_list``: CSV/TSV or JSON Lines rows naming image files, relative to the list's folder, in a
  column ``path``, ``image``, ``file``, ``filename``, ``file_name`` or ``image_path`` (or the one
  ``text_column`` names);
* ``image_table``: Parquet files (a Hugging Face dataset's Parquet export or Hub files) or a
  ``datasets.save_to_disk`` folder (``.arrow`` files), with a column of image bytes: binary, or the
  ``{"bytes": ..., "path": ...}`` struct of the ``datasets.Image`` feature (bytes read from ``path``,
  relative to the file, when ``bytes`` is null); the image column is ``image`` / ``img`` or else the first
  such column;
* ``idx``: MNIST's IDX files, plain or ``.gz`` (``train-images-idx3-ubyte.gz``): each images file is
  read with its labels file (``images`` -> ``labels``, ``idx3`` -> ``idx1``) and its pixels are stored as
  PNG bytes. IDX files of any other element type than unsigned bytes are refused.

Quarantined (one bad record each, reading goes on): a file or row that is empty (``zero_size``), that
no image format recognises (``not_image``), whose header does not parse (``corrupt``), over
``max_record_bytes``, a list row naming a missing file, a table without an image column. A truncated IDX
file is one bad record saying how many images its header promised and where the file ended (never a
shorter dataset); the images before the cut are kept. A labels file that ends early, or promises
another count than its images file, is one bad record, and the images past its end have no label.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.images.decode import FORMAT, HEIGHT, IMAGE, LABEL, MODE, WIDTH, ImageProblem, read_header
from gristmill.io.base import BadRecord, Opened, Progress, ReaderOptions, cut, size_reason
from gristmill.io.idx import SPLIT, iter_idx, labels_file
from gristmill.io.jsonl import iter_json
from gristmill.io.tabular import iter_csv

__all__ = ["IMAGE_COLUMNS", "IMAGE_FORMATS", "IMAGE_SUFFIXES", "image_columns", "image_container", "iter_image_file",
           "labels_file", "listed_kinds"]

Numbered = tuple[int | None, dict[str, Any] | BadRecord]

IMAGE_FORMATS = ("images", "image_list", "image_table", "idx")
_PICTURES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
IMAGE_SUFFIXES = {**dict.fromkeys(_PICTURES, "images"), ".arrow": "image_table"}
IMAGE_COLUMNS = ["id", IMAGE, WIDTH, HEIGHT, MODE, FORMAT, LABEL]
PATH_COLUMNS = ("path", "image", "file", "filename", "file_name", "image_path")
IMAGE_PATH = "image.path"
_IDX_NAME = re.compile(r"[.-]idx\d+-ubyte$")
_READ_ERRORS = (OSError, EOFError, zlib.error)


def image_container(name: str) -> str | None:
    """``idx`` for an IDX file name without its compression suffix (``train-images-idx3-ubyte``), else None."""
    return "idx" if _IDX_NAME.search(name.lower()) else None


def listed_kinds(fmt: str) -> set[str]:
    """The on-disk kinds (``readers.container_of``) a folder read as ``fmt`` takes its files from."""
    return {"image_list": {"csv", "jsonl"}, "image_table": {"parquet", "image_table"}}.get(fmt, {fmt})


# ---- columns --------------------------------------------------------------------------------------

def image_columns(fmt: str, files: list[Path], options: ReaderOptions) -> list[str]:
    """The columns rows of ``fmt`` have, from the first file's header or schema (no image is read)."""
    cols: dict[str, None] = dict.fromkeys(IMAGE_COLUMNS)
    if fmt == "idx":
        cols[SPLIT] = None
    elif files and fmt == "image_list":
        cols.update(dict.fromkeys(c for c in _list_header(files[0], options) if c not in cols))
        cols[IMAGE_PATH] = None
    elif files and fmt == "image_table":
        try:
            schema = _table_schema(files[0])
        except (pa.ArrowException, OSError):
            schema = None
        if schema is not None:
            image_col = _image_column(schema)
            cols.update(dict.fromkeys(n for n in schema.names if n not in cols and n != image_col
                                      and n not in ("labels",)))
            if image_col is not None and pa.types.is_struct(schema.field(image_col).type):
                cols[IMAGE_PATH] = None
    cols.pop(options.id_column, None)
    cols.pop("source", None)
    cols.pop("license", None)
    return ["id", *(c for c in cols if c != "id"), "source", "license"]


def _list_header(path: Path, options: ReaderOptions) -> list[str]:
    """The columns of an image list: a CSV's header, or the keys of a JSONL file's first object."""
    try:
        with Opened(path) as f:
            first = f.stream.readline(1 << 20).decode("utf-8", errors="replace").removeprefix("\ufeff")
    except _READ_ERRORS:
        return []
    if _is_csv(path):
        return next(csv.reader([first], delimiter="\t" if ".tsv" in path.name.lower() else ","), [])
    try:
        obj = json.loads(first)
    except ValueError:
        return []
    return list(obj) if isinstance(obj, dict) else []


def _is_csv(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz").removesuffix(".zst")
    return name.endswith((".csv", ".tsv"))


# ---- the one entry point --------------------------------------------------------------------------

def iter_image_file(fmt: str, f: Path, path: Path, base: Path, options: ReaderOptions,
                    progress: Progress) -> Iterator[Numbered]:
    """``(line, row or bad record)`` for one file of an image format (``path``: the input as given,
    ``base``: the folder ids and labels are relative to)."""
    if fmt == "images":
        yield from _image_file(f, path, base, options)
    elif fmt == "image_list":
        yield from _image_list(f, options, progress)
    elif fmt == "image_table":
        yield from _image_table(f, options, progress)
    elif fmt == "idx":
        yield from _idx(f, options, progress)
    else:
        raise ValueError(f"not an image format: {fmt}")


def _row(rid: str, data: bytes, src: str, options: ReaderOptions, label: Any = None,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One image record; raises :class:`ImageProblem` when the header does not read."""
    header = read_header(data)
    row: dict[str, Any] = {"id": rid, IMAGE: data, **header.columns()}
    if label is not None:
        row[LABEL] = str(label)
    row.update(extra or {})
    row["source"] = src
    if options.license is not None and not row.get("license"):
        row["license"] = options.license
    return row


def _bad(src: str, line: int | None, exc: ImageProblem | str, raw: str = "") -> Numbered:
    return line, BadRecord(src, line, str(exc.reason) if isinstance(exc, ImageProblem) else exc, raw)


# ---- image files ----------------------------------------------------------------------------------

def _image_file(f: Path, path: Path, base: Path, options: ReaderOptions) -> Iterator[Numbered]:
    src = str(f)
    rel = f.name if f == path else f.relative_to(base).as_posix()
    size = f.stat().st_size
    if size > options.max_record_bytes:
        yield _bad(src, None, size_reason(size, options.max_record_bytes))
        return
    try:
        data = f.read_bytes()
    except OSError as exc:
        yield _bad(src, None, f"unreadable file: {exc}")
        return
    parts = rel.split("/")
    label = parts[0] if len(parts) > 1 else None
    try:
        yield None, _row(rel, data, src, options, label)
    except ImageProblem as exc:
        yield _bad(src, None, exc, cut(data[:200]) if exc.reason.rule == "not_image" else "")


# ---- lists of paths -------------------------------------------------------------------------------

def _path_column(columns: list[str], options: ReaderOptions) -> str | None:
    if options.text_column != "text":
        return options.text_column if options.text_column in columns else None
    return next((c for c in PATH_COLUMNS if c in columns), None)


def _image_list(f: Path, options: ReaderOptions, progress: Progress) -> Iterator[Numbered]:
    src = str(f)
    limit = options.max_record_bytes
    header = _list_header(f, options)
    column = _path_column(header, options) if _is_csv(f) else None
    if _is_csv(f):
        if column is None:
            wanted = options.text_column if options.text_column != "text" else " / ".join(PATH_COLUMNS)
            yield _bad(src, None, f"image list has no path column {wanted} (columns: {', '.join(header)})")
            return
        items: Iterator[Any] = iter_csv(f, column, limit, progress)
    else:
        items = iter_json(f, limit, progress)
    for item in items:
        if isinstance(item, BadRecord):
            yield item.line, item
            continue
        line, obj = item
        col = column or _path_column(list(obj), options)
        ref = obj.get(col) if col else None
        if not isinstance(ref, str) or not ref.strip():
            yield _bad(src, line, f"missing image path (columns: {', '.join(obj)})", cut(json.dumps(obj, default=str)))
            continue
        target = Path(ref) if Path(ref).is_absolute() else f.parent / ref
        try:
            size = target.stat().st_size
            if size > limit:
                yield _bad(str(target), line, size_reason(size, limit))
                continue
            data = target.read_bytes()
        except FileNotFoundError:
            yield _bad(src, line, f"image file not found: {ref}", cut(ref))
            continue
        except OSError as exc:
            yield _bad(src, line, f"unreadable image file {ref}: {exc}", cut(ref))
            continue
        extra = {k: v for k, v in obj.items() if k not in (col, LABEL, options.id_column, "source")}
        extra[IMAGE_PATH] = ref
        rid = obj.get(options.id_column)
        rid = str(rid) if rid not in (None, "") else f"{f.name}:{line}"
        try:
            yield line, _row(rid, data, str(target), options, obj.get(LABEL), extra)
        except ImageProblem as exc:
            yield _bad(str(target), line, exc)


# ---- tables of image bytes --------------------------------------------------------------------------

def _table_schema(f: Path) -> pa.Schema:
    if f.suffix.lower() == ".arrow":
        with pa.memory_map(str(f)) as source:
            return _open_ipc(source).schema
    return pq.read_schema(f)


def _open_ipc(source: Any) -> Any:
    try:
        return pa.ipc.open_stream(source)  # what datasets.save_to_disk writes
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def _is_image_type(t: pa.DataType) -> bool:
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0


def _image_column(schema: pa.Schema) -> str | None:
    for name in ("image", "img"):
        if name in schema.names and _is_image_type(schema.field(name).type):
            return name
    return next((f.name for f in schema if _is_image_type(f.type)), None)


def class_names(schema: pa.Schema, column: str) -> list[str] | None:
    """The class names of a Hugging Face ``ClassLabel`` column, from the table's ``huggingface`` metadata."""
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return None
    try:
        feature = json.loads(meta)["info"]["features"][column]
    except (ValueError, KeyError, TypeError):
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else None


def _batches(f: Path) -> Iterator[pa.RecordBatch]:
    if f.suffix.lower() == ".arrow":
        with pa.memory_map(str(f)) as source:
            yield from _open_ipc(source)
        return
    with pq.ParquetFile(f) as pf:
        yield from pf.iter_batches(batch_size=256)


def _image_table(f: Path, options: ReaderOptions, progress: Progress) -> Iterator[Numbered]:
    src = str(f)
    try:
        schema = _table_schema(f)
    except (pa.ArrowException, OSError) as exc:
        yield _bad(src, None, f"not a readable Parquet or Arrow file: {exc}")
        return
    column = _image_column(schema)
    if column is None:
        yield _bad(src, None, f"no column of image bytes (binary, or a struct with bytes) in {', '.join(schema.names)}",
                   cut(str(schema)))
        return
    label_col = next((c for c in (LABEL, "labels") if c in schema.names), None)
    names = class_names(schema, label_col) if label_col else None
    struct = pa.types.is_struct(schema.field(column).type)
    n = 0
    try:
        for batch in _batches(f):
            for obj in batch.to_pylist():
                n += 1
                yield from _table_row(f, n, obj, column, label_col, names, struct, options)
    except (pa.ArrowException, *_READ_ERRORS) as exc:
        yield _bad(src, n + 1, f"unreadable table after row {n}: {type(exc).__name__}: {exc}; the rest is lost")


def _table_row(f: Path, n: int, obj: dict[str, Any], column: str, label_col: str | None, names: list[str] | None,
               struct: bool, options: ReaderOptions) -> Iterator[Numbered]:
    src = str(f)
    cell = obj.pop(column)
    extra: dict[str, Any] = {}
    data = cell
    if struct and isinstance(cell, dict):
        data, ref = cell.get("bytes"), cell.get("path")
        if ref:
            extra[IMAGE_PATH] = ref
        if data is None and ref:
            target = Path(ref) if Path(ref).is_absolute() else f.parent / ref
            try:
                data = target.read_bytes()
            except OSError as exc:
                yield _bad(src, n, f"image file not found: {ref} ({type(exc).__name__})", cut(ref))
                return
    if data is None:
        yield _bad(src, n, "missing: null image")
        return
    if len(data) > options.max_record_bytes:
        yield _bad(src, n, size_reason(len(data), options.max_record_bytes))
        return
    label = obj.pop(label_col, None) if label_col else None
    if names is not None and isinstance(label, int) and 0 <= label < len(names):
        label = names[label]
    rid = obj.pop(options.id_column, None)
    extra.update({k: v for k, v in obj.items() if k != "source"})
    try:
        yield n, _row(str(rid) if rid not in (None, "") else f"{f.name}:{n}", data, src, options, label, extra)
    except ImageProblem as exc:
        yield _bad(src, n, exc)


def _idx(f: Path, options: ReaderOptions, progress: Progress) -> Iterator[Numbered]:
    return iter_idx(f, progress, lambda rid, data, src, label, extra: _row(rid, data, src, options, label, extra), _bad)
