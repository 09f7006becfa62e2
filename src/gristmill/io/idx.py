"""MNIST's IDX files for :mod:`gristmill.io.images` (format ``idx``): images files read with their labels files.

An IDX file is a magic number (two zero bytes, an element type, the number of dimensions), the dimension
sizes as big-endian 32-bit integers, then the elements. An images file (3 dimensions: count, rows,
columns) is read one image at a time, each stored as PNG bytes; its labels file (1 dimension) is found by
name (``images`` -> ``labels``, ``idx3`` -> ``idx1``). Plain and ``.gz`` files are read in chunks, so a
stream cut short keeps every image decoded before the cut and says where it broke; a truncated file is
never read as a shorter dataset. Only unsigned-byte images are read.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.io.base import BadRecord, Progress

__all__ = ["SPLIT", "iter_idx", "labels_file"]

SPLIT = "split"
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
Numbered = tuple[int | None, dict[str, Any] | BadRecord]
MakeRow = Callable[[str, bytes, str, Any, dict[str, Any]], dict[str, Any]]
MakeBad = Callable[[str, int | None, str], Numbered]


class _IdxError(ValueError):
    pass


def _idx_header(stream: Any) -> tuple[np.dtype, list[int]]:
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise _IdxError(f"not an IDX file: the magic number is {head.hex() or 'missing'}, expected 0000 + type + dims")
    if head[2] not in _IDX_TYPES:
        raise _IdxError(f"not an IDX file: unknown element type 0x{head[2]:02x}")
    ndim = head[3]
    raw = stream.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise _IdxError(f"truncated IDX file: the header ends inside its {ndim} dimension sizes")
    return np.dtype(_IDX_TYPES[head[2]]), [int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(ndim)]


def labels_file(images: Path) -> Path | None:
    """The labels file of an IDX images file (``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``,
    the same name plain or ``.gz``), or None."""
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    if name == images.name:
        return None
    stem = name.removesuffix(".gz")
    for candidate in (name, stem, stem + ".gz"):
        p = images.with_name(candidate)
        if p.is_file():
            return p
    return None


def _split_of(name: str) -> str | None:
    low = name.lower()
    return "train" if low.startswith("train") else "test" if low.startswith(("t10k", "test")) else None


def _read_labels(path: Path, count: int) -> tuple[np.ndarray, str | None]:
    """The labels of an IDX labels file, and what was wrong with it (None when whole and of ``count``)."""
    source = _Source(path)
    try:
        dtype, dims = _idx_header(source)
        if len(dims) != 1:
            return np.zeros(0, np.int64), f"{path.name} is no labels file ({len(dims)} dimensions)"
        raw = source.read(dims[0] * dtype.itemsize)
    except _IdxError as exc:
        return np.zeros(0, np.int64), f"{path.name}: {source.error or exc}"
    except OSError as exc:
        return np.zeros(0, np.int64), f"{path.name}: unreadable file: {exc}"
    finally:
        source.close()
    whole = len(raw) // dtype.itemsize
    labels = np.frombuffer(raw[:whole * dtype.itemsize], dtype).astype(np.int64)
    if whole < dims[0]:
        why = source.error or "truncated IDX labels file"
        return labels, (f"{why} ({path.name}): the header promises {dims[0]:,} labels, the file "
                        f"holds {whole:,}; images {whole + 1:,}-{count:,} have no label")
    if dims[0] != count:
        return labels, f"IDX labels file {path.name} holds {dims[0]:,} labels for {count:,} images"
    return labels, None


class _Source:
    """The bytes of a plain or ``.gz`` file, read in chunks; a gzip stream that is cut short or corrupt
    gives every byte decoded before the damage, then ``error`` says what happened (no exception)."""

    CHUNK = 1 << 16

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.gz = path.name.lower().endswith(".gz")
        self.size = path.stat().st_size
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gz else None
        self.buffer = bytearray()
        self.done = False
        self.error: str | None = None

    def tell(self) -> int:
        return self.file.tell()

    def _more(self) -> None:
        raw = self.file.read(self.CHUNK)
        if self.inflate is None:
            self.buffer += raw
            self.done = not raw
            return
        try:
            while raw:
                self.buffer += self.inflate.decompress(raw)
                raw = b""
                if self.inflate.eof and self.inflate.unused_data:  # another gzip member follows
                    raw = self.inflate.unused_data
                    self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if self.file.tell() >= self.size and not self.done:
                self.done = True
                if not self.inflate.eof:
                    self.error = f"truncated gzip stream: the file ends inside a member after {self.size} bytes"
        except zlib.error as exc:
            self.done = True
            self.error = f"corrupt gzip stream (at or before byte {self.file.tell()} of {self.size}): {exc}"

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n and not self.done:
            self._more()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def close(self) -> None:
        self.file.close()


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, "PNG")
    return buf.getvalue()


def iter_idx(f: Path, progress: Progress, make_row: MakeRow, _bad: MakeBad) -> Iterator[Numbered]:
    """``(image number, row or bad record)`` for one IDX file (nothing for a labels file)."""
    src = str(f)
    split = _split_of(f.name)
    stream = _Source(f)
    progress.current = stream.tell
    try:
        try:
            dtype, dims = _idx_header(stream)
        except _IdxError as exc:
            yield _bad(src, None, f"{stream.error}; the whole file is lost" if stream.error else str(exc))
            return
        except OSError as exc:
            yield _bad(src, None, f"unreadable file: {exc}; the whole file is lost")
            return
        if len(dims) == 1:  # a labels file: read with its images file
            return
        if len(dims) != 3:
            yield _bad(src, None, f"IDX images must have 3 dimensions (count, rows, columns), this file has {dims}")
            return
        if dtype != np.dtype(">u1"):
            yield _bad(src, None, f"IDX element type {dtype.str} is not supported; images must be unsigned bytes")
            return
        count, rows, cols = dims
        labels: np.ndarray = np.zeros(0, np.int64)
        lab_path = labels_file(f)
        if lab_path is not None:
            labels, problem = _read_labels(lab_path, count)
            if problem:
                yield _bad(str(lab_path), None, problem)
        per = rows * cols
        for i in range(count):
            raw = stream.read(per)
            if len(raw) < per and stream.error:
                yield _bad(src, i + 1, f"{stream.error}; images {i + 1:,}-{count:,} of {count:,} are lost "
                           f"({i:,} read)")
                return
            if len(raw) < per:
                where = "before" if not raw else "inside"
                yield _bad(src, i + 1, f"truncated IDX file: the header promises {count:,} images of {rows}x{cols}; "
                           f"the file ends {where} image {i + 1:,} ({i:,} whole images read, {count - i:,} lost)")
                return
            pixels = np.frombuffer(raw, np.uint8).reshape(rows, cols)
            extra = {SPLIT: split} if split else {}
            label = int(labels[i]) if i < labels.size else None
            yield i + 1, make_row(f"{f.name}:{i + 1}", _png(pixels), src, label, extra)
    except OSError as exc:
        yield _bad(src, None, f"unreadable file: {exc}")
    finally:
        stream.close()
