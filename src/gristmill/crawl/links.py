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
import html
import re
from dataclasses import dataclass, field

__all__ = ["HTML_TYPES", "Page", "decode", "parse_page", "robots_directives"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# tags are found with regular expressions (about ten times faster than html.parser) after comments,
# scripts and styles are blanked out
_HIDDEN = re.compile(r"<!--.*?(?:-->|$)|<script\b.*?(?:</script\s*>|$)|<style\b.*?(?:</style\s*>|$)", re.I | re.S)
_TAG = re.compile(r"<(a|area|base|meta)\s([^>]*)>", re.I)
_ATTR = re.compile(r"""([^\s"'=<>/]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+))""")
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


def parse_page(body: bytes, header_charset: str | None) -> Page:
    """Links, ``<base>``, robots meta and the charset of an HTML body (nothing raises on malformed HTML).

    Tags are matched with regular expressions once comments, ``<script>`` and ``<style>`` are blanked
    out, not with a full HTML parser: markup quoted inside an attribute value (``title="<a href=x>"``)
    would be taken for a tag, which real pages almost never do."""
    text, charset, note = decode(body, header_charset)
    page = Page(charset=charset, note=note)
    for m in _TAG.finditer(_HIDDEN.sub(" ", text)):
        tag = m.group(1).lower()
        attrs = {name.lower(): html.unescape(v1 or v2 or v3)
                 for name, v1, v2, v3 in _ATTR.findall(m.group(2))}
        href = attrs.get("href", "").strip()
        if tag in ("a", "area"):
            if href:
                page.links.append(href)
        elif tag == "base":
            if href and page.base is None:
                page.base = href
        elif attrs.get("name", "").lower() == "robots":
            nofollow, noindex = robots_directives(attrs.get("content"))
            page.nofollow |= nofollow
            page.noindex |= noindex
    return page
