"""PDF files: the text of each page with its page number (pypdf), one row per page or per document.

``pdf_rows: page`` (the default) gives one row per page (``id`` ``<file>#p<n>``, ``page`` 1-based,
``pages`` the document's page count); ``pdf_rows: document`` one row per file (``id`` the file, the
pages' texts joined by blank lines, ``pages``). Columns: ``title`` (the document information's
``/Title``), ``published`` (``/CreationDate`` as ``YYYY-MM-DD``) and the provenance columns of
:mod:`gristmill.io.provenance` (``content_sha256`` of the file, ``fetch_time`` its modification time,
``content_type`` ``application/pdf``). Licence hints come from the XMP metadata (``xmpRights:WebStatement``,
``cc:license``) and from Creative Commons marks anywhere in the text; a document's hints apply to
each of its pages.

Drops: a page without text is skipped and counted (``PDF page without text``); as bad records
(quarantined with the reason), an encrypted PDF that the empty password does not open
(``encrypted PDF``), a file pypdf cannot read (``unreadable PDF``, a truncated file included), a
document with no text on any page (``no text layer``: scanned pages need OCR, which this does
not do), a page whose text cannot be extracted (``unreadable page``), and a row over
``max_record_bytes``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from gristmill.io.base import BadRecord, Progress, cut, size_reason
from gristmill.io.provenance import LicenseHints, iso_time, provenance, text_license_hints

__all__ = ["iter_pdf"]

Item = tuple[int | None, dict[str, Any]] | BadRecord
_XMP_RIGHTS = re.compile(r"<(?:xmpRights:WebStatement|cc:license)[^>]*?(?:rdf:resource=\"([^\"]+)\"|>([^<]+)<)")
_PDF_DATE = re.compile(r"D?:?(\d{4})(\d{2})?(\d{2})?")


def _pdf_date(value: Any) -> str | None:
    m = _PDF_DATE.match(str(value or "").strip())
    if m is None or not m.group(2) or not m.group(3):
        return None
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"


def _info(reader: Any) -> tuple[str | None, str | None, LicenseHints]:
    """``(title, published, licence hints)`` from the document information and XMP metadata."""
    hints = LicenseHints()
    title = published = None
    try:
        meta = reader.metadata or {}
        title = " ".join(str(meta.get("/Title") or "").split()) or None
        published = _pdf_date(meta.get("/CreationDate"))
    except Exception:  # noqa: BLE001 - a damaged information dictionary: no metadata
        pass
    try:
        root = reader.trailer["/Root"]
        xmp = root.get("/Metadata") if hasattr(root, "get") else None
        raw = xmp.get_object().get_data().decode("utf-8", "replace") if xmp is not None else ""
    except Exception:  # noqa: BLE001 - damaged XMP: no hints from it
        raw = ""
    for m in _XMP_RIGHTS.finditer(raw):
        value = (m.group(1) or m.group(2) or "").strip()
        if value:
            hints.add("meta license", value)
    return title, published, hints


def iter_pdf(path: Path, record_id: str, limit: int, progress: Progress, rows: Literal["page", "document"],
             skipped: Counter[str]) -> Iterator[Item]:
    """Yield the rows of one PDF (per page or per document), or bad records."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damage is reported as bad records
    src = str(path)
    with open(path, "rb") as f:
        progress.current = f.tell
        yield from _read(path, src, f, record_id, limit, rows, skipped)


def _ends(f: IO[bytes]) -> tuple[bytes, bytes]:
    """The first and last KB of the file."""
    f.seek(0)
    head = f.read(1024)
    f.seek(max(0, f.seek(0, io.SEEK_END) - 1024))
    return head, f.read(1024)


def _digest(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    f.seek(0)
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _read(path: Path, src: str, f: IO[bytes], record_id: str, limit: int, rows: Literal["page", "document"],
          skipped: Counter[str]) -> Iterator[Item]:
    """The rows of the open PDF ``f`` (pypdf reads its objects as it needs them, not the whole file)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(f, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # noqa: BLE001 - an encryption pypdf cannot handle
                yield BadRecord(src, None, f"encrypted PDF: {type(exc).__name__}: {exc}", "")
                return
            if not opened:
                yield BadRecord(src, None, "encrypted PDF: the document needs a password", "")
                return
        pages = list(reader.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files
        head, end = _ends(f)
        if b"%PDF-" not in head:
            tail = " (no %PDF- header: not a PDF)"
        else:
            tail = "" if b"%%EOF" in end else " (no %%EOF at the end: the file is truncated)"
        yield BadRecord(src, None, f"unreadable PDF: {type(exc).__name__}: {exc}{tail}", "")
        return
    title, published, hints = _info(reader)
    texts: list[str | None] = []
    bad: list[BadRecord] = []
    for n, page in enumerate(pages, 1):
        try:
            texts.append((page.extract_text() or "").strip())
        except Exception as exc:  # noqa: BLE001
            texts.append(None)
            bad.append(BadRecord(src, None, f"unreadable page: page {n}: {type(exc).__name__}: {exc}", ""))
    if not any(texts):
        yield from bad
        if not bad:
            yield BadRecord(src, None, f"no text layer: none of its {len(pages)} pages has extractable text "
                                       "(scanned pages need OCR)", "")
        return
    for text in texts:
        if text:
            text_license_hints(text, hints)
    base: dict[str, Any] = {"title": title, "published": published, "pages": len(pages)}
    base.update(provenance(url=None, fetch_time=iso_time(os.stat(path).st_mtime), data=None,
                           digest=_digest(f), http_status=None, content_type="application/pdf", hints=hints))
    yield from bad
    if rows == "document":
        whole = "\n\n".join(t for t in texts if t)
        if len(whole.encode("utf-8")) > limit:
            yield BadRecord(src, None, size_reason(len(whole.encode("utf-8")), limit), cut(whole))
            return
        yield None, {"id": record_id, "text": whole, **base}
        return
    for n, text in enumerate(texts, 1):
        if text is None:
            continue
        if not text:
            skipped["PDF page without text"] += 1
            continue
        if len(text.encode("utf-8")) > limit:
            yield BadRecord(src, None, size_reason(len(text.encode("utf-8")), limit) + f" (page {n})", cut(text))
            continue
        yield None, {"id": f"{record_id}#p{n}", "text": text, "page": n, **base}
