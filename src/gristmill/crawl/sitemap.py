"""Sitemaps (sitemaps.org): a ``<urlset>`` lists pages, a ``<sitemapindex>`` lists more sitemaps.

Read from XML (gzip-compressed or not) or from a plain-text sitemap (one URL a line). Only the
``<loc>`` of each entry is kept; ``lastmod``, ``changefreq`` and ``priority`` are dropped. Entries
past 50,000 per file (the protocol's limit) are dropped too. XML with a DTD or entities is refused
(nothing is expanded).
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree

__all__ = ["MAX_ENTRIES", "Sitemap", "parse_sitemap"]

MAX_ENTRIES = 50_000


@dataclass
class Sitemap:
    """The entries of one sitemap file."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    error: str | None = None  # why the file could not be read (entries before the error are kept)
    dropped: int = 0  # entries past MAX_ENTRIES


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].lower()


def parse_sitemap(body: bytes, max_bytes: int) -> Sitemap:
    """The pages and child sitemaps a sitemap lists (see the module doc); never raises."""
    out = Sitemap()
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
                body = f.read(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as exc:
            out.error = f"bad gzip ({exc})"
            return out
        if len(body) > max_bytes:
            out.error = f"more than {max_bytes:,} bytes uncompressed"
            return out
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        for line in body.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if line.startswith(("http://", "https://")):
                _add(out, out.pages, line)
        return out
    if b"<!DOCTYPE" in body[:4096].upper() or b"<!ENTITY" in body.upper():
        out.error = "XML with a DTD or entities (refused)"
        return out
    try:
        for _, elem in ElementTree.iterparse(io.BytesIO(body), events=("end",)):
            name = _local(elem.tag)
            if name in ("url", "sitemap"):
                loc = next((c.text for c in elem if _local(c.tag) == "loc" and c.text), None)
                if loc:
                    _add(out, out.pages if name == "url" else out.sitemaps, loc.strip())
                elem.clear()
    except ElementTree.ParseError as exc:
        out.error = f"malformed XML ({exc})"
    return out


def _add(out: Sitemap, where: list[str], url: str) -> None:
    if len(out.pages) + len(out.sitemaps) >= MAX_ENTRIES:
        out.dropped += 1
    else:
        where.append(url)
