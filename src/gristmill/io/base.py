"""What every reader shares: options, errors, bad records, and bounded line reading.

Files are opened as binary streams (plain, ``.gz`` or ``.zst``) and read one line at a
time with a length limit, so a single huge record never sits in memory whole: it is
skipped in chunks and reported as a :class:`BadRecord`.

A compressed stream that is cut short or damaged never reads as a shorter file: the
stream raises :class:`StreamError` (``truncated gzip stream: ...``, ``corrupt zstd
stream: ...``) with where it stopped, the reader turns it into one bad record, and the
lines read before it are kept. A line cut by the damage is never handed out as a record.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RAW_CHARS = 1000
SKIP_CHUNK = 1 << 18
BUFFER = 1 << 20
MiB = 1 << 20


class InputError(Exception):
    """An input path that cannot be read at all: missing, unreadable, or of unknown format.

    ``str()`` is one line naming the path and what was expected.
    """


class RecordError(ValueError):
    """Raised by a record conversion with the reason the record is bad."""


class StreamError(OSError):
    """A file that cannot be read to its end: a truncated or corrupt compressed stream, or
    an I/O error. ``str()`` is the reason, starting with a stable rule
    (``truncated zstd stream``, ``corrupt gzip stream``, ``unreadable file``) and naming
    the byte position where reading stopped."""


@dataclass
class BadRecord:
    """A malformed input record; it goes to ``quarantine.jsonl`` instead of the data.

    ``offset`` is the byte offset of the record in its file, for formats without lines (a WARC
    record); ``quarantine.jsonl`` holds it only when it is set."""

    source: str
    line: int | None
    reason: str
    raw: str
    offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}
        if self.offset is not None:
            out["offset"] = self.offset
        return out


class ReaderOptions(BaseModel):
    """How to read an input. ``format=None`` detects the format from the file names."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = None
    text_column: str = "text"
    id_column: str = "id"
    required: list[str] = []
    max_record_bytes: int = Field(16 * MiB, gt=0)
    chunk_chars: int | None = Field(None, gt=0)
    license: str | None = None
    glob: str = "*.txt"
    encoding_errors: Literal["quarantine"] = "quarantine"
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"  # main text of HTML (html, warc)
    pdf_rows: Literal["page", "document"] = "page"  # one row per PDF page, or per PDF
    markdown_split: Literal["file", "headings"] = "file"  # one row per Markdown file, or per # / ## section


def cut(raw: bytes | str) -> str:
    """The raw text of a record, decoded leniently and cut to ``RAW_CHARS`` characters."""
    if isinstance(raw, bytes):
        raw = raw[: RAW_CHARS * 4].decode("utf-8", errors="replace")
    return raw[:RAW_CHARS]


def utf8_reason(exc: UnicodeDecodeError) -> str:
    return f"invalid UTF-8 at byte {exc.start}"


def size_reason(size: int, limit: int) -> str:
    return f"record is {size / MiB:.1f} MB, over max_record_bytes ({limit / MiB:.1f} MB)"


def strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


COMPRESSIONS = {".gz": "gz", ".zst": "zst"}


def compression_of(path: Path) -> str | None:
    return COMPRESSIONS.get(path.suffix.lower())


class _Checked(io.RawIOBase):
    """A gzip stream whose errors become :class:`StreamError` with the on-disk position."""

    def __init__(self, inner: IO[bytes], raw: IO[bytes], size: int) -> None:
        self.inner, self.raw, self.size = inner, raw, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            return self.inner.readinto(b)  # type: ignore[attr-defined, no-any-return]
        except EOFError:  # the file ended before the member's end marker
            raise StreamError(f"truncated gzip stream: the file ends inside a member after {self.size} bytes") from None
        except (zlib.error, gzip.BadGzipFile) as exc:  # bad deflate data, CRC or length mismatch, not gzip
            raise StreamError(f"corrupt gzip stream (at or before byte {_pos(self.raw, self.size)} of {self.size}): "
                              f"{exc}") from None
        except OSError as exc:
            raise StreamError(f"unreadable file (at byte {_pos(self.raw, self.size)}): {exc}") from None

    def close(self) -> None:
        self.inner.close()
        super().close()


def _pos(raw: IO[bytes], default: int) -> int:
    try:
        return raw.tell()
    except (ValueError, OSError):
        return default


class _Zstd(io.RawIOBase):
    """A zstd stream (frames one after another) that raises :class:`StreamError` when the
    file ends inside a frame or a frame is corrupt.

    ``zstandard``'s ``stream_reader`` decompresses with bounded memory but reports the end
    of the file, not an error, when the input stops inside a frame, so a cut file would
    read as a shorter one. At that end the frame headers and block headers of the file are
    walked (a few bytes read per block, see :func:`zstd_last_frame`) to check that the
    last frame is whole.
    """

    def __init__(self, raw: IO[bytes], path: Path, size: int) -> None:
        import zstandard

        self.raw, self.path, self.size = raw, path, size
        self.error = zstandard.ZstdError
        self.inner = zstandard.ZstdDecompressor().stream_reader(raw, read_size=BUFFER, read_across_frames=True)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            n: int = self.inner.readinto(b)
        except self.error as exc:
            raise StreamError(f"corrupt zstd stream (at or before byte {_pos(self.raw, self.size)} of {self.size}): "
                              f"{exc}") from None
        except OSError as exc:
            raise StreamError(f"unreadable file (at byte {_pos(self.raw, self.size)}): {exc}") from None
        if n == 0 and self.size:
            last = zstd_last_frame(self.path)
            if last is not None and last[1] > self.size:
                raise StreamError(f"truncated zstd stream: the file ends after {self.size} bytes, inside the frame "
                                  f"that starts at byte {last[0]}")
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


ZSTD_MAGIC = 0xFD2FB528


def _frames(path: Path) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each zstd frame of a file, from its headers alone; ``end`` past
    the file's size for a frame cut short. Stops (without judging) at bytes that are not a
    frame: the decompressor reports those."""
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)

        def at(pos: int, n: int) -> bytes:
            f.seek(pos)
            return f.read(n)

        pos = 0
        while pos < size:
            head = at(pos, 5)
            if len(head) < 4:
                yield pos, pos + 4
                return
            magic = int.from_bytes(head[:4], "little")
            if magic & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame: 4 bytes of size, then that many
                sz = at(pos + 4, 4)
                end = pos + 8 + (int.from_bytes(sz, "little") if len(sz) == 4 else size)
                yield pos, end
                pos = end
                continue
            if magic != ZSTD_MAGIC:
                return
            if len(head) < 5:
                yield pos, pos + 6
                return
            fhd = head[4]
            fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
            fcs = (1 if single else 0, 2, 4, 8)[fcs_flag]
            p = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + fcs
            while True:
                bh = at(p, 3)
                if len(bh) < 3:
                    p += 3
                    break
                h = int.from_bytes(bh, "little")
                last, btype, bsize = h & 1, (h >> 1) & 3, h >> 3
                p += 3 + (1 if btype == 1 else bsize)
                if last or p > size:
                    break
            end = p + (4 if checksum and p <= size else 0)
            yield pos, end
            pos = end


def zstd_last_frame(path: Path) -> tuple[int, int] | None:
    """``(start, end)`` of the last zstd frame of ``path`` by its headers (``end`` past the
    file's size if it is cut short), or None if the file holds no frame this can walk."""
    last = None
    for last in _frames(path):
        pass
    return last


class Opened:
    """A binary stream over a possibly compressed file, and how far into the file it is.

    Reading a truncated or corrupt ``.gz`` / ``.zst`` stream raises :class:`StreamError`.
    """

    def __init__(self, path: Path) -> None:
        self.final = 0
        self.raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        kind = compression_of(path)
        self.stream: IO[bytes]
        if kind is None:
            self.raw.close()
            self.raw = open(path, "rb", buffering=BUFFER)  # noqa: SIM115
            self.stream = self.raw
            return
        size = path.stat().st_size
        if kind == "gz":  # a C-level buffer over it: readline() per line stays cheap
            inner = gzip.GzipFile(fileobj=self.raw, mode="rb")
            self.stream = io.BufferedReader(_Checked(inner, self.raw, size), 1 << 16)  # type: ignore[arg-type]
        else:
            self.stream = io.BufferedReader(_Zstd(self.raw, path, size), BUFFER)

    def tell(self) -> int:
        """On-disk bytes consumed (the compressed position for compressed files)."""
        try:
            return self.raw.tell()
        except (ValueError, OSError):  # closed: where it stopped
            return self.final

    def close(self) -> None:
        self.final = self.tell()
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(line number, line, size)`` for each line of ``stream``, 1-based.

    A line over ``limit`` bytes is not held whole: its first ``limit`` bytes come back as
    ``line`` and the rest is skipped in chunks; ``size`` is then its full length (for
    normal lines ``size`` is 0). Line ends are kept.
    """
    readline = stream.readline
    n = 0
    while True:
        line = readline(limit + 1)
        if not line:
            return
        n += 1
        if len(line) <= limit or line.endswith(b"\n"):
            yield n, line, 0
            continue
        size = len(line)
        while True:
            chunk = readline(SKIP_CHUNK)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield n, line, size


class Progress:
    """Bytes consumed so far over the files of one reader."""

    def __init__(self) -> None:
        self.done = 0
        self.current: Callable[[], int] = lambda: 0

    def read(self) -> int:
        return self.done + self.current()
