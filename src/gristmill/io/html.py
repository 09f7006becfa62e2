"""HTML pages: charset decoding, page metadata, main-content extraction, and the HTML file reader.

:func:`html_row` turns the bytes of one page into a row; the WARC reader (:mod:`gristmill.io.warc`)
and :func:`iter_html` (``.html`` / ``.htm`` files or directories of them) share it.

- **Charset:** a byte-order mark, else the HTTP ``Content-Type`` charset, else ``<meta charset>`` /
  ``http-equiv`` in the first 4 KB. A declared Latin-1 / Windows-1252 / ASCII charset over bytes
  that are valid UTF-8 with multi-byte sequences is read as UTF-8 (the declaration is wrong);
  bytes invalid in the declared charset are read as UTF-8, else in the charset
  ``charset_normalizer`` detects, else as Windows-1252 with replacement characters. The charset
  used is the ``charset`` column.
- **Main content:** ``trafilatura`` (the default: ``extract(favor_precision=True,
  include_comments=False, deduplicate=...)``, the settings of datatrove's Trafilatura
  extractor, so both give the same text) or ``resiliparse`` (``extractor: resiliparse``:
  ``extract_plain_text(main_content=True)``). Both remove navigation, headers, footers, forms
  and other boilerplate. trafilatura's deduplication (a paragraph seen more than twice across
  pages is dropped from the later pages) is scoped to one pass of a reader over its input (a
  file, directory or glob, read in order), so an input reads the same whatever was read before.
- **Metadata columns:** ``title`` (``<title>``, else ``og:title``), ``html_lang`` (the page's
  declared language: ``<html lang>``, else ``Content-Language``), ``published`` (the publication
  date, ``YYYY-MM-DD``, from ``article:published_time`` / ``datePublished`` / ``dc.date`` meta or
  JSON-LD; no guessing from the text), ``charset``, and the provenance columns of
  :mod:`gristmill.io.provenance` (licence hints included).

Drops: a page with no main text (skipped and counted, ``no main text``); as bad records, a page
with NUL bytes in its first 4 KB (``binary content``), one over ``max_record_bytes``, and one
the extractor fails on (``extraction failed``).
"""

from __future__ import annotations

import codecs
import html as htmllib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gristmill.io.base import BadRecord, Opened, Progress, RecordError, cut, size_reason
from gristmill.io.provenance import find_license_hints, iso_time, provenance

__all__ = ["HTML_TYPES", "Extractor", "decode_html", "html_row", "iter_html", "page_metadata"]

Item = tuple[int | None, dict[str, Any]] | BadRecord

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([-\w:.]+)""", re.I)
_LATIN = {"latin-1", "iso8859-1", "cp1252", "ascii"}
# Charsets common on the web (codec names); a detector's tie among single-byte charsets goes to these.
_WEB = {"cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874",
        "iso8859-2", "iso8859-15", "koi8-r", "koi8-u", "cp932", "shift_jis", "euc_jp", "gb18030", "gbk", "gb2312",
        "big5", "euc_kr", "cp949", "iso2022_jp"}
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_HTML_LANG = re.compile(r"""<html\b[^>]*?\b(?:xml:)?lang\s*=\s*["']?\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)""",
                        re.I)
_META = re.compile(r"<meta\b[^>]*>", re.I)
_ATTR = re.compile(r"""([^\s"'=<>/]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")
_CANONICAL = re.compile(r"<link\b[^>]*\brel\s*=\s*[\"']?canonical\b[^>]*>", re.I)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+))""", re.I)
_JSONLD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{4,40})"')
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATE_KEYS = ("article:published_time", "og:published_time", "datepublished", "dc.date", "dc.date.issued",
              "dcterms.date", "dcterms.created", "dcterms.issued", "date", "pubdate", "publish-date",
              "citation_publication_date")
_HEAD_LIMIT = 1 << 17


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def _declared_in_page(data: bytes) -> str | None:
    m = _META_CHARSET.search(data, 0, 4096)
    return _codec(m.group(1).decode("ascii", "replace")) if m else None


def decode_html(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """``(text, charset used)`` for the bytes of a page; ``declared`` is the HTTP header's charset.

    Never fails: see the module docstring for the order of the guesses."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(name, "replace"), name
    charset = _codec(declared) or _declared_in_page(data)
    if charset is not None and charset != "utf-8":
        if charset in _LATIN and not data.isascii():
            try:
                return data.decode("utf-8"), "utf-8"  # valid UTF-8 with multi-byte sequences: mislabelled
            except UnicodeDecodeError:
                pass
        try:
            return data.decode(charset), charset
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    guess = _detect(data)
    if guess is not None:
        try:
            return data.decode(guess), guess
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", "replace"), "cp1252"


def _detect(data: bytes) -> str | None:
    try:
        import charset_normalizer
    except ImportError:  # pragma: no cover - comes with the web extra
        return None
    matches = list(charset_normalizer.from_bytes(data[:1 << 16]))
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    near = [_codec(m.encoding) for m in matches if m.chaos <= least + 0.01]
    if "cp1252" in near:  # the web's default for undeclared Latin text (WHATWG), over cp775 and kin
        return "cp1252"
    return next((c for c in near if c in _WEB), near[0] if near else None)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(htmllib.unescape(value).split())
    return value or None


def _date(value: str | None) -> str | None:
    m = _DATE.search(value or "")
    if m is None:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return m.group(0) if 1900 <= y <= 2200 and 1 <= mo <= 12 and 1 <= d <= 31 else None


def page_metadata(page: str) -> dict[str, str | None]:
    """``title``, ``html_lang``, ``published`` and ``canonical`` of a page, from its markup alone."""
    head_end = page.find("</head")
    head = page[: head_end if 0 <= head_end < _HEAD_LIMIT else _HEAD_LIMIT]
    metas: dict[str, str] = {}
    for tag in _META.finditer(page if len(page) < _HEAD_LIMIT else head):
        attrs = {m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or "" for m in _ATTR.finditer(tag.group(0))}
        key = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or
               attrs.get("http-equiv") or "").lower()
        if key and "content" in attrs:
            metas.setdefault(key, attrs["content"])
        elif key == "datepublished" and "datetime" in attrs:
            metas.setdefault(key, attrs["datetime"])
    t = _TITLE.search(head) or _TITLE.search(page, 0, _HEAD_LIMIT)
    lang = _HTML_LANG.search(page, 0, 4096)
    published = next((d for k in _DATE_KEYS if (d := _date(metas.get(k)))), None)
    if published is None and (j := _JSONLD_DATE.search(page)):
        published = _date(j.group(1))
    canonical = None
    if (c := _CANONICAL.search(head)) and (h := _HREF.search(c.group(0))):
        canonical = _clean(h.group(1) or h.group(2) or h.group(3))
    return {
        "title": _clean(t.group(1)) if t else _clean(metas.get("og:title")),
        "html_lang": lang.group(1) if lang else _clean(metas.get("content-language", "").split(",")[0] or None),
        "published": published,
        "canonical": canonical,
    }


class Extractor:
    """Main-content extraction with trafilatura or resiliparse (see the module docstring)."""

    def __init__(self, name: str = "trafilatura") -> None:
        self.name = name
        if name == "trafilatura":
            import trafilatura
            from trafilatura.deduplication import LRUCache
            from trafilatura.settings import LRU_SIZE
            from trafilatura.settings import Extractor as Options

            for logger in ("trafilatura", "htmldate", "courlan"):  # problems become bad records instead
                logging.getLogger(logger).setLevel(logging.CRITICAL)
            self._extract = trafilatura.extract
            # extract(favor_precision=True, include_comments=False, deduplicate=cache), its options made
            # once (trafilatura copies them where it changes them) instead of for every page
            self._options = Options(output_format="txt", precision=True, comments=False,
                                    dedup=LRUCache(maxsize=LRU_SIZE))
        elif name == "resiliparse":
            from resiliparse.extract.html2text import extract_plain_text
            from resiliparse.parse.html import HTMLTree

            self._tree, self._plain = HTMLTree.parse, extract_plain_text
        else:
            raise ValueError(f"unknown extractor {name!r}; expected trafilatura or resiliparse")

    def __call__(self, page: str) -> str:
        """The main text of a page ('' when there is none)."""
        if self.name == "trafilatura":
            text = self._extract(page, options=self._options)
        else:
            text = self._plain(self._tree(page), main_content=True, alt_texts=False, links=False,
                               form_fields=False, noscript=False)
        return (text or "").strip()


def html_row(data: bytes, extractor: Extractor, *, declared_charset: str | None = None, url: str | None = None,
             fetch_time: str | None = None, http_status: int | None = None,
             content_type: str = "text/html") -> dict[str, Any] | None:
    """The row of one page: ``text`` (the main content), the metadata and provenance columns.

    None when the page has no main text; raises :class:`RecordError` for binary content or a
    failed extraction."""
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RecordError(f"binary content: NUL bytes in a page served as {content_type}")
    page, charset = decode_html(data, declared_charset)
    meta = page_metadata(page)
    hints = find_license_hints(page)
    try:
        text = extractor(page)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party extractor is this page's
        raise RecordError(f"extraction failed: {extractor.name}: {type(exc).__name__}: {exc}") from None
    if not text:
        return None
    row: dict[str, Any] = {"text": text, "title": meta["title"], "html_lang": meta["html_lang"],
                           "published": meta["published"], "charset": charset}
    row.update(provenance(url=url or meta["canonical"], fetch_time=fetch_time, data=data, http_status=http_status,
                          content_type=content_type, hints=hints))
    return row


def iter_html(path: Path, record_id: str, limit: int, progress: Progress, extractor: Extractor,
              skipped: Counter[str]) -> Iterator[Item]:
    """Yield the one row of an HTML file (``.html`` / ``.htm``, plain or compressed), or a bad record.

    ``fetch_time`` is the file's modification time and ``url`` its canonical link, if any.
    A file without main text is counted in ``skipped`` (``no main text``)."""
    src = str(path)
    with Opened(path) as f:
        progress.current = f.tell
        data = f.stream.read(limit + 1)
    if len(data) > limit:
        yield BadRecord(src, None, size_reason(len(data), limit), cut(data[:4000]))
        return
    try:
        row = html_row(data, extractor, fetch_time=iso_time(os.stat(path).st_mtime))
    except RecordError as exc:
        yield BadRecord(src, None, str(exc), cut(data))
        return
    if row is None:
        skipped["no main text"] += 1
        return
    yield None, {"id": record_id, **row}

