"""Plain-text readers: ``.txt`` files (one record each) and CoNLL token/tag files.

txt drops: a file over ``max_record_bytes`` (never read whole) and invalid UTF-8.
CoNLL drops a whole sentence when one of its lines has the wrong number of columns, an
empty tag, or invalid UTF-8; ``-DOCSTART-`` lines are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gristmill.io.base import BadRecord, Opened, Progress, cut, read_lines, size_reason, strip_eol, utf8_reason

Item = tuple[int | None, dict[str, Any]] | BadRecord


def iter_txt(path: Path, record_id: str, limit: int, progress: Progress) -> Iterator[Item]:
    """Yield the one record ``{id, text}`` of a text file, or a bad record."""
    src = str(path)
    size = path.stat().st_size
    with Opened(path) as f:
        progress.current = f.tell
        data = f.stream.read(limit + 1)
        if len(data) > limit:
            if f.stream is not f.raw:  # compressed: count the rest without holding it
                size = len(data)
                while chunk := f.stream.read(1 << 20):
                    size += len(chunk)
            yield BadRecord(src, None, size_reason(size, limit), cut(data[:4000]))
            return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield BadRecord(src, None, utf8_reason(exc), cut(data))
        return
    yield None, {"id": record_id, "text": text.removeprefix("\ufeff")}


class _Sentence:
    def __init__(self) -> None:
        self.start = 0
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.bad: BadRecord | None = None


def iter_conll(path: Path, limit: int, progress: Progress) -> Iterator[Item]:
    """Yield ``(first line, {tokens, tags, text})`` per sentence, or bad records.

    A line is ``token<TAB>tag`` (whitespace-separated when it has no tab); the expected
    column count is that of the file's first token line, the tag is the last column.
    A blank (or whitespace-only) line ends a sentence.
    """
    src = str(path)
    expected: int | None = None
    sent = _Sentence()

    def flush() -> Iterator[Item]:
        nonlocal sent
        if sent.bad is not None:
            yield sent.bad
        elif sent.tokens:
            yield sent.start, {"tokens": sent.tokens, "tags": sent.tags, "text": " ".join(sent.tokens)}
        sent = _Sentence()

    with Opened(path) as f:
        progress.current = f.tell
        for n, line, size in read_lines(f.stream, limit):
            if size:
                if sent.bad is None:
                    sent.bad = BadRecord(src, n, size_reason(size, limit), cut(line))
                continue
            try:
                text = strip_eol(line).decode("utf-8")
            except UnicodeDecodeError as exc:
                if sent.bad is None:
                    sent.bad = BadRecord(src, n, utf8_reason(exc), cut(line))
                continue
            if not text.strip():
                yield from flush()
                continue
            if text.startswith("-DOCSTART-"):
                continue
            cols = text.split("\t") if "\t" in text else text.split()
            if expected is None:
                expected = max(len(cols), 2)
            if not sent.tokens and sent.bad is None:
                sent.start = n
            if sent.bad is not None:
                continue
            if len(cols) != expected:
                sent.bad = BadRecord(src, n, f"CoNLL line has {len(cols)} columns, expected {expected}", cut(text))
                continue
            token, tag = cols[0].strip(), cols[-1].strip()
            if not token or not tag:
                sent.bad = BadRecord(src, n, f"CoNLL line has an empty {'token' if not token else 'tag'}", cut(text))
                continue
            sent.tokens.append(token)
            sent.tags.append(tag)
        yield from flush()


_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE = re.compile(r"\n")


def _pack(text: str, sep: re.Pattern[str], size: int) -> Iterator[str]:
    """Greedily join the pieces of ``text`` between ``sep`` matches into slices of <= size.

    A single piece longer than ``size`` comes out alone (the caller cuts it further).
    """
    start: int | None = None
    end = 0
    for unit_start, unit_end in _units(text, sep):
        if start is None:
            start = unit_start
        elif unit_end - start > size:
            yield text[start:end]
            start = unit_start
        end = unit_end
    if start is not None:
        yield text[start:end]


def _units(text: str, sep: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    prev = 0
    for m in sep.finditer(text):
        yield prev, m.start()
        prev = m.end()
    yield prev, len(text)


def split_chunks(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of about ``size`` characters.

    Cuts fall on paragraph boundaries (blank lines); a paragraph longer than ``size`` is
    cut on line boundaries, and a line longer than ``size`` is cut hard. The whitespace
    at a cut is dropped; whitespace-only pieces are dropped.
    """
    if len(text) <= size:
        return [text] if text.strip() else []
    out: list[str] = []
    for para in _pack(text, _PARAGRAPH, size):
        if len(para) <= size:
            out.append(para)
            continue
        for piece in _pack(para, _LINE, size):
            if len(piece) <= size:
                out.append(piece)
            else:
                out.extend(piece[i : i + size] for i in range(0, len(piece), size))
    return [c for c in out if c.strip()]
