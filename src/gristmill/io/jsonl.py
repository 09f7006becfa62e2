"""JSON readers: JSON Lines (plain, ``.gz``, ``.zst``) and JSON arrays of objects.

Each line is decoded as strict UTF-8 and parsed on its own. Drops (as bad records):
invalid UTF-8, invalid JSON, a value that is not an object, a line over
``max_record_bytes``. Blank lines are skipped silently. A ``.json`` file that holds one
array is streamed element by element; an invalid element ends that file (a bad record
says so), since the array cannot be resynchronised.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gristmill.io.base import BadRecord, MiB, Opened, Progress, cut, read_lines, size_reason, utf8_reason

try:
    import orjson

    _fast_loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency, json is the fallback
    _fast_loads = None

Item = tuple[int, dict[str, Any]] | BadRecord


def _strict_loads(line: bytes) -> Any:
    return json.loads(line.decode("utf-8"))


def parse_line(line: bytes) -> Any:
    """Parse one JSON document from UTF-8 bytes; raise ValueError with a clear reason."""
    if _fast_loads is not None:
        try:
            return _fast_loads(line)
        except ValueError:
            pass  # re-parse below for a precise message, or for what orjson rejects (NaN, huge ints)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(utf8_reason(exc)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (col {exc.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None


def not_object(value: Any) -> str:
    return f"not a JSON object: got {type(value).__name__}"


def _first_byte(stream: IO[bytes]) -> bytes:
    """The first non-whitespace byte of the stream (peeked, not consumed)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return b""
    head = peek(4096)[:4096].lstrip(b" \t\r\n\xef\xbb\xbf")
    return head[:1]


def iter_json(path: Path, limit: int, progress: Progress) -> Iterator[Item]:
    """Yield ``(line, object)`` or a :class:`BadRecord` for each record of a JSON file."""
    src = str(path)
    with Opened(path) as f:
        progress.current = f.tell
        if path.name.lower().endswith((".json", ".json.gz", ".json.zst")) and _first_byte(f.stream) == b"[":
            yield from _iter_array(f.stream, src, limit)
            return
        fast = _fast_loads or _strict_loads
        for n, line, size in read_lines(f.stream, limit):
            if size:
                yield BadRecord(src, n, size_reason(size, limit), cut(line))
                continue
            try:
                obj = fast(line)
            except ValueError:
                obj = None
            if type(obj) is dict:
                yield n, obj
                continue
            if n == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            try:
                obj = parse_line(line)
            except ValueError as exc:
                yield BadRecord(src, n, str(exc), cut(line))
                continue
            if type(obj) is not dict:
                yield BadRecord(src, n, not_object(obj), cut(line))
                continue
            yield n, obj


_WS = " \t\r\n"


def _iter_array(stream: IO[bytes], src: str, limit: int) -> Iterator[Item]:
    """Stream the elements of one top-level JSON array (line = line of the element's start)."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buf, pos, line, counted, eof = "", 0, 1, 0, False
    chunk = 1 << 20

    def more(size: int) -> bool:
        """Read ``size`` more bytes, dropping what is before ``pos``; False at the end."""
        nonlocal buf, pos, line, counted, eof
        if eof:
            return False
        data = stream.read(size)
        eof = not data
        line += buf.count("\n", counted, pos)
        buf = buf[pos:] + utf8.decode(data, final=eof)
        counted = pos = 0
        return not eof

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more(chunk):
                return ""

    try:
        more(chunk)
        buf = buf.lstrip("\ufeff")
        if skip_ws() != "[":
            yield BadRecord(src, 1, "invalid JSON: expected '['", cut(buf[pos:]))
            return
        pos += 1
        expect_value = True
        while True:
            c = skip_ws()
            if c == "]":
                pos += 1
                if skip_ws():
                    yield BadRecord(src, line, "invalid JSON: content after the closing ']' skipped", cut(buf[pos:]))
                return
            if c == "":
                raise ValueError("invalid JSON: the array is not closed")
            if not expect_value:
                if c != ",":
                    raise ValueError(f"invalid JSON: expected ',' or ']' between array elements, got {c!r}")
                pos += 1
                expect_value = True
                continue
            line += buf.count("\n", counted, pos)
            counted = pos
            size = chunk
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if eof or len(buf) - pos > limit:
                        if len(buf) - pos > limit:
                            raise ValueError(f"array element over max_record_bytes ({limit / MiB:.1f} MB) "
                                             "or invalid JSON") from None
                        raise ValueError(f"invalid JSON: {exc.msg}") from None
                    size = min(size * 2, max(chunk, limit))
                    more(size)
            if end - pos > limit:
                yield BadRecord(src, line, size_reason(end - pos, limit), cut(buf[pos : pos + 1000]))
            elif type(obj) is dict:
                yield line, obj
            else:
                yield BadRecord(src, line, not_object(obj), cut(buf[pos:end]))
            pos = end
            expect_value = False
    except UnicodeDecodeError as exc:
        yield BadRecord(src, line, utf8_reason(exc) + "; rest of the JSON array skipped", "")
    except (ValueError, RecursionError) as exc:
        yield BadRecord(src, line, f"{exc}; rest of the JSON array skipped", cut(buf[pos:]))
