"""What the crawler reads in a page: its charset, its links and its robots directives.

Only HTML is read for links (``text/html``, ``application/xhtml+xml``); the crawler follows
``<a href>`` and ``<area href>`` (resolved against ``<base href>``) and nothing else: no images,
scripts, stylesheets or ``<link>`` targets. ``<meta name="robots">`` and the ``X-Robots-Tag``
header are obeyed: ``nofollow`` (or ``none``) drops the page's links, ``noindex`` (or ``none``) keeps
the page out of the WARC.

The charset (:func:`decode`) is a byte-order mark's, else the ``Content-Type`` header's, else a
``<meta>`` declaration in the first 4 KiB, else UTF-8 when the body is valid UTF-8, else windows-1252.
What was wrong with it is a note for the crawl log: ``charset-missing`` (nothing declared),
``charset-unknown`` (a declared name Python has no codec for), ``charset-mismatch`` (the body is not
valid in the declared charset; read with replacement characters). The stored body is never re-encoded.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["HTML_TYPES", "Page", "decode", "parse_page", "robots_directives"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass
class Page:
    """Links and directives of one page."""

    links: list[str] = field(default_factory=list)  # raw href values, resolved against base by the crawler
    base: str | None = None
    charset: str = "utf-8"
    note: tuple[str, str] | None = None  # (reason, detail) of a charset problem
    nofollow: bool = False
    noindex: bool = False


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(body: bytes, header_charset: str | None) -> tuple[str, str, tuple[str, str] | None]:
    """``(text, charset used, note)`` for an HTML or text body (see the module doc)."""
    for bom, codec in _BOMS:  # a byte-order mark outranks every declaration (as browsers read it)
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace"), codec, None
    declared, where = header_charset, "Content-Type"
    if not declared:
        m = _META_CHARSET.search(body[:4096])
        declared, where = (m.group(1).decode("ascii").lower(), "<meta>") if m else (None, "")
    if declared:
        codec = _codec(declared)
        if codec is None:
            text, used, _ = decode(body, "utf-8" if _valid(body, "utf-8") else "windows-1252")
            return text, used, ("charset-unknown", f"{where} declares {declared!r}, which has no codec; read as {used}")
        if _valid(body, codec):
            return body.decode(codec), codec, None
        other = "utf-8" if codec != "utf-8" and _valid(body, "utf-8") else "windows-1252"
        return (body.decode(other, errors="replace"), other,
                ("charset-mismatch", f"{where} declares {declared} but the body is not valid {codec}; read as {other}"))
    if _valid(body, "utf-8"):
        return body.decode("utf-8"), "utf-8", ("charset-missing", "no charset declared; valid UTF-8")
    return (body.decode("windows-1252", errors="replace"), "windows-1252",
            ("charset-missing", "no charset declared and not UTF-8; read as windows-1252"))


def _valid(body: bytes, codec: str) -> bool:
    try:
        body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def robots_directives(value: str | None) -> tuple[bool, bool]:
    """``(nofollow, noindex)`` of a robots meta content or ``X-Robots-Tag`` value (no agent prefix)."""
    if not value:
        return False, False
    words = {w.strip().lower() for w in value.split(",")}
    return bool(words & {"nofollow", "none"}), bool(words & {"noindex", "none"})


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "area"):
            href = next((v for k, v in attrs if k == "href"), None)
            if href and href.strip():
                self.page.links.append(href.strip())
        elif tag == "base" and self.page.base is None:
            href = next((v for k, v in attrs if k == "href"), None)
            if href:
                self.page.base = href.strip()
        elif tag == "meta":
            a = {k: v or "" for k, v in attrs}
            if a.get("name", "").lower() == "robots":
                nofollow, noindex = robots_directives(a.get("content"))
                self.page.nofollow |= nofollow
                self.page.noindex |= noindex

    handle_startendtag = handle_starttag


def parse_page(body: bytes, header_charset: str | None) -> Page:
    """Links, ``<base>``, robots meta and the charset of an HTML body (malformed HTML is read as far as
    it goes; nothing raises)."""
    text, charset, note = decode(body, header_charset)
    parser = _LinkParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    page = parser.page
    page.charset, page.note = charset, note
    return page
