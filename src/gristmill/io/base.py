"""What every reader shares: options, errors, bad records, and bounded line reading.

Files are opened as binary streams (plain, ``.gz`` or ``.zst``) and read one line at a
time with a length limit, so a single huge record never sits in memory whole: it is
skipped in chunks and reported as a :class:`BadRecord`.
"""

from __future__ import annotations

import gzip
import io
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


@dataclass
class BadRecord:
    """A malformed input record; it goes to ``quarantine.jsonl`` instead of the data."""

    source: str
    line: int | None
    reason: str
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}


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


class Opened:
    """A binary stream over a possibly compressed file, and how far into the file it is."""

    def __init__(self, path: Path) -> None:
        self.final = 0
        self.raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        kind = compression_of(path)
        self.stream: IO[bytes]
        if kind == "gz":  # a C-level buffer over it: readline() per line stays cheap
            self.stream = io.BufferedReader(gzip.GzipFile(fileobj=self.raw, mode="rb"), 1 << 16)  # type: ignore[arg-type]
        elif kind == "zst":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(self.raw, read_size=BUFFER, read_across_frames=True)
            self.stream = io.BufferedReader(reader, BUFFER)  # type: ignore[arg-type]
        else:
            self.raw.close()
            self.raw = open(path, "rb", buffering=BUFFER)  # noqa: SIM115
            self.stream = self.raw

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
