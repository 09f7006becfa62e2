"""WARC and WET files (``.warc``, ``.warc.gz``, ``.wet``, ``.wet.gz``; ``.zst`` too), streamed with warcio.

One row per usable record:

- a ``response`` record (or ``resource``) of an HTML page (``text/html``, ``application/xhtml+xml``,
  or no type and markup that starts like HTML) with a 2xx status: the main text, extracted as in
  :mod:`gristmill.io.html` (title, declared language, publication date, charset, licence hints);
- a ``conversion`` record (WET): its text as it is, with the Creative Commons marks in it as
  licence hints.

Every row's ``id`` is ``<file name>@<offset>`` (the record's byte offset in the file, compressed
for ``.gz``), and it carries the provenance columns of :mod:`gristmill.io.provenance`: ``url``
(WARC-Target-URI), ``fetch_time`` (WARC-Date), ``content_sha256`` (of the payload after HTTP
transfer and content decoding), ``http_status``, ``content_type``, ``license``, ``license_hints``,
plus ``warc_record_id``.

Skipped and counted (``stats.json``, ``input.skipped``): other record types (``warcinfo``,
``request``, ``metadata``, ``revisit``), responses that are not HTML (``non-HTML response``),
non-2xx responses (``HTTP 404``), pages without main text (``no main text``) and empty
conversions. Bad records (``quarantine.jsonl``, with ``offset``): a payload over
``max_record_bytes``, binary content served as HTML, an HTTP body whose content encoding cannot
be decoded, a failed extraction. A file that ends inside a record, or whose gzip or WARC framing is
damaged, is never read as a shorter file: one bad record says where it broke (``truncated WARC``,
``corrupt WARC``) and the records before it are kept.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from gristmill.io.base import BUFFER, BadRecord, Opened, Progress, RecordError, StreamError, cut, size_reason
from gristmill.io.html import HTML_TYPES, Extractor, html_row
from gristmill.io.provenance import iso_time, provenance, text_license_hints

__all__ = ["iter_warc"]

Item = tuple[int | None, dict[str, Any]] | BadRecord
DRAIN = 1 << 16


def _mime(value: str | None) -> str | None:
    return value.split(";")[0].strip().lower() or None if value else None


def _charset(value: str | None) -> str | None:
    for part in (value or "").split(";")[1:]:
        key, _, val = part.partition("=")
        if key.strip().lower() == "charset":
            return val.strip().strip("\"'") or None
    return None


def _looks_like_html(head: bytes) -> bool:
    head = head[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head


def _missing(record: Any) -> int:
    """Bytes of the record's block that the file does not hold (it ends inside the record): read
    what is left of the block and see how much of its Content-Length was never there."""
    stream = record.raw_stream
    while stream.read(DRAIN):
        pass
    return int(getattr(stream, "limit", 0) or 0)


class _Walk:
    """The walk through one WARC file: where each record starts and where the last one ended."""

    def __init__(self, path: Path, progress: Progress) -> None:
        from warcio.archiveiterator import ArchiveIterator

        self.path = path
        self.size = path.stat().st_size
        self.gz = path.name.lower().endswith(".gz")
        self.opened: Opened | None = None
        self.last_offset = 0  # where the last record read starts
        self.raw: IO[bytes]
        if path.name.lower().endswith(".zst"):  # warcio reads the decompressed stream
            self.opened = Opened(path)
            self.raw = self.opened.stream
            progress.current = self.opened.tell
        else:
            self.raw = open(path, "rb", buffering=BUFFER)  # noqa: SIM115 - closed in close()
            progress.current = self.raw.tell
        self.it = ArchiveIterator(self.raw, check_digests=False)
        self.records = iter(self.it)

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()
        else:
            self.raw.close()

    def tail(self, end: int) -> bytes:
        """Up to 64 bytes of the file from ``end`` (uncompressed files only)."""
        with open(self.path, "rb") as f:
            f.seek(end)
            return f.read(64)


def iter_warc(path: Path, name: str, limit: int, progress: Progress, extractor: Callable[[], Extractor],
              skipped: Counter[str]) -> Iterator[Item]:
    """Yield ``(None, row)`` for each usable record of a WARC or WET file, or bad records.

    ``extractor()`` gives the HTML extractor, called at the first HTML response (a WET file never
    needs one)."""
    src = str(path)
    walk = _Walk(path, progress)
    last_end: int | None = None  # where the last whole record ended
    try:
        while True:
            try:
                record = next(walk.records)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - warcio raises many kinds on damaged framing
                yield _broken(src, walk, last_end, exc)
                return
            offset = walk.last_offset = walk.it.offset
            try:
                if not record.rec_type or record.length is None:
                    raise _Truncated(-1)
                item = _record_item(record, src, name, offset, limit, extractor, skipped)
                last_end = _end_of(walk, offset)
            except _Truncated as cut_short:
                yield BadRecord(src, None, _truncated_reason(walk, offset, last_end, cut_short.missing), "",
                                offset=offset)
                return
            except Exception as exc:  # noqa: BLE001 - a payload warcio cannot decode (bad gzip member)
                yield _broken(src, walk, last_end, exc, offset)
                return
            if item is not None:
                yield item
        if problem := _unread_tail(walk, last_end):
            yield BadRecord(src, None, problem, "", offset=last_end or 0)
    finally:
        walk.close()


class _Truncated(Exception):
    def __init__(self, missing: int) -> None:
        self.missing = missing


def _after(last_end: int | None) -> str:
    return "the whole file is lost" if last_end is None else f"everything after byte {last_end} is lost"


def _end_of(walk: _Walk, offset: int) -> int:
    """Where the record at ``offset`` ends, once warcio has read it all; raises :class:`_Truncated`
    when its gzip member did not end (the file ends inside it, or its data is damaged: warcio
    then reads the member as shorter, so the decompressor's end marker is what tells)."""
    end = int(walk.it.get_record_offset() + walk.it.get_record_length())
    reader = walk.it.reader
    decompressor = getattr(reader, "decompressor", None) if reader is not None else None
    if walk.gz and decompressor is not None and not getattr(decompressor, "eof", True):
        raise _Truncated(0)
    return end


def _truncated_reason(walk: _Walk, offset: int, last_end: int | None, missing: int) -> str:
    if missing < 0:
        what = "inside the header of the record"
    elif missing == 0:
        what = "inside the gzip member of the record"
    else:
        what = f"inside the record ({missing} bytes of its block missing)"
    at_end = (missing > 0 and not walk.gz) or _cut_short(walk, offset)
    rule = "truncated WARC: the file ends" if at_end else "corrupt WARC: the data is damaged"
    return f"{rule} {what} at offset {offset} ({walk.size} bytes on disk); {_after(last_end)}"


def _broken(src: str, walk: _Walk, last_end: int | None, exc: BaseException, offset: int | None = None) -> BadRecord:
    at = offset if offset is not None else (last_end or 0)
    detail = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
    cut_short = str(exc).startswith("truncated") if isinstance(exc, StreamError) else _cut_short(walk, at)
    rule = "truncated WARC" if cut_short else "corrupt WARC"
    return BadRecord(src, None, f"{rule}: unreadable record at or after offset {at} ({detail}); {_after(last_end)}",
                     "", offset=at)


def _cut_short(walk: _Walk, at: int) -> bool:
    """Whether the bytes from ``at`` to the end of the file are the start of a record that the
    file's end cuts short: a gzip member that never ends, or a header block without its blank line."""
    if walk.opened is not None:
        return False
    with open(walk.path, "rb") as f:
        f.seek(at)
        if walk.gz:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                while not d.eof and (chunk := f.read(1 << 16)):
                    d.decompress(chunk, 1 << 20)
            except zlib.error:
                return False
            return not d.eof
        head = f.read(1 << 16).lstrip(b"\r\n")  # the blank lines that end the record before
        return b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < 1 << 16


def _unread_tail(walk: _Walk, last_end: int | None) -> str | None:
    """Why the bytes after the last whole record are not the end of a good file, or None."""
    if walk.opened is not None or last_end is None and walk.size == 0:
        return None
    end = last_end or 0
    if not walk.gz and walk.size and not walk.tail(max(0, walk.size - 4)).endswith((b"\r\n\r\n", b"\n\n")):
        return (f"truncated WARC: the file ends inside the record at offset {walk.last_offset} (without the blank "
                f"lines that end a record; {walk.size} bytes on disk)")
    if end >= walk.size:
        return None
    if not walk.gz and walk.size - end <= 64 and not walk.tail(end).strip():  # the blank lines after the last record
        return None
    return (f"truncated WARC: {walk.size - end} bytes after offset {end} are not a whole record (the file ends "
            f"inside a record, or its framing is damaged); {_after(last_end)}")


def _record_item(record: Any, src: str, name: str, offset: int, limit: int, extractor: Callable[[], Extractor],
                 skipped: Counter[str]) -> Item | None:
    """The row or bad record of one WARC record, or None (skipped and counted)."""
    kind = record.rec_type
    headers = record.rec_headers
    if kind not in ("response", "resource", "conversion"):
        skipped[f"{kind} record"] += 1
        return _checked(record, None)
    url = headers.get_header("WARC-Target-URI")
    fetch_time = iso_time(headers.get_header("WARC-Date"))
    http = record.http_headers if kind == "response" else None
    status: int | None = None
    if http is not None:
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
        ctype = http.get_header("Content-Type")
    else:
        ctype = headers.get_header("Content-Type")
    mime = _mime(ctype) or _mime(headers.get_header("WARC-Identified-Payload-Type"))
    if status is not None and not 200 <= status < 300:
        skipped[f"HTTP {status}"] += 1
        return _checked(record, None)
    if kind == "conversion":
        return _checked(record, _conversion(record, src, name, offset, limit, url, fetch_time, mime, headers, skipped))
    sniff = kind == "response" and mime in (None, "text/plain", "application/octet-stream")  # HTML served so?
    if mime not in HTML_TYPES and not sniff:
        skipped["non-HTML response"] += 1
        return _checked(record, None)
    base: dict[str, Any] = {"id": f"{name}@{offset}"}
    try:
        data = record.content_stream().read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - a chunked or gzip/brotli body warcio cannot decode
        if (missing := _missing(record)) > 0:
            raise _Truncated(missing) from None
        return BadRecord(src, None, f"undecodable HTTP body: {type(exc).__name__}: {exc}", "", offset=offset)
    if (missing := _missing(record)) > 0:
        raise _Truncated(missing)
    if len(data) > limit:
        return BadRecord(src, None, size_reason(len(data), limit), cut(data[:4000]), offset=offset)
    if mime not in HTML_TYPES and not _looks_like_html(data):
        skipped["non-HTML response"] += 1
        return None
    try:
        row = html_row(data, extractor(), declared_charset=_charset(ctype), url=url, fetch_time=fetch_time,
                       http_status=status, content_type=mime or "text/html")
    except RecordError as exc:
        return BadRecord(src, None, f"{exc} ({url})", cut(data), offset=offset)
    if row is None:
        skipped["no main text"] += 1
        return None
    base.update(row)
    base["warc_record_id"] = headers.get_header("WARC-Record-ID")
    return None, base


def _checked(record: Any, item: Item | None) -> Item | None:
    """``item``, once the rest of the record is known to be in the file."""
    if (missing := _missing(record)) > 0:
        raise _Truncated(missing)
    return item


def _conversion(record: Any, src: str, name: str, offset: int, limit: int, url: str | None, fetch_time: str | None,
                mime: str | None, headers: Any, skipped: Counter[str]) -> Item | None:
    data = record.content_stream().read(limit + 1)
    if (missing := _missing(record)) > 0:
        raise _Truncated(missing)
    if len(data) > limit:
        return BadRecord(src, None, size_reason(len(data), limit), cut(data[:4000]), offset=offset)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(src, None, f"invalid UTF-8 at byte {exc.start} of a conversion record ({url})", cut(data),
                         offset=offset)
    text = text.strip()
    if not text:
        skipped["empty conversion"] += 1
        return None
    row: dict[str, Any] = {"id": f"{name}@{offset}", "text": text}
    row.update(provenance(url=url, fetch_time=fetch_time, data=data, http_status=None,
                          content_type=mime or "text/plain",
                          hints=text_license_hints(text)))
    row["warc_record_id"] = headers.get_header("WARC-Record-ID")
    return None, row

