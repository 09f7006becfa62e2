"""Tiny web fixtures built in the tests: WARC files (warcio's WARCWriter), HTML pages with boilerplate,
and PDFs written by hand (no PDF library needed to make them)."""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DATE = "2024-05-06T07:08:09Z"


def page(title: str, body: str, *, lang: str = "en", head: str = "", footer: str = "") -> str:
    """An HTML page: navigation, the article, a sidebar and a footer around ``body``."""
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li></ul></nav></header>
<main><article><h1>{title}</h1>
{body}
</article></main>
<aside class="sidebar"><h3>Popular posts</h3><ul><li><a href="/p/1">Ten tips for gardening</a></li>
<li><a href="/p/2">Subscribe to our newsletter</a></li></ul></aside>
<footer><p>Copyright 2024 Example Press. All rights reserved.</p>{footer}
<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a></p></footer>
</body></html>"""


def paragraphs(topic: str, n: int = 3) -> str:
    """``n`` paragraphs of plain prose about ``topic`` (long enough for extractors to keep them)."""
    sentences = [
        f"The study of {topic} has a long history in many parts of the world.",
        f"Researchers who work on {topic} often begin with careful observation of small details.",
        f"Over the years the methods used to understand {topic} have changed a great deal.",
        f"Many people first learn about {topic} from a teacher, a book or a conversation with a friend.",
        f"Today the questions around {topic} are discussed in schools, museums and public libraries.",
    ]
    return "\n".join(f"<p>{' '.join(sentences[(i + k) % 5] for k in range(4))}</p>" for i in range(n))


@dataclass
class Rec:
    """One WARC record to write."""

    kind: str  # response, request, metadata, warcinfo, conversion, resource
    url: str = "http://example.com/"
    body: bytes = b""
    status: str = "200 OK"
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "text/html; charset=utf-8")])
    date: str = DATE
    content_type: str = ""  # the WARC Content-Type of records without HTTP headers


def write_warc(path: Path, records: list[Rec], gz: bool | None = None) -> list[int]:
    """Write ``records`` to ``path`` (gzip per record when the name ends in .gz); returns each record's offset."""
    gz = path.name.endswith(".gz") if gz is None else gz
    offsets = []
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        for r in records:
            offsets.append(f.tell())
            warc_headers = {"WARC-Date": r.date}
            if r.kind == "warcinfo":
                rec = w.create_warcinfo_record(path.name, {"software": "gristmill tests"})
            elif r.kind == "response":
                http = StatusAndHeaders(r.status, r.headers, protocol="HTTP/1.1")
                rec = w.create_warc_record(r.url, "response", payload=io.BytesIO(r.body), http_headers=http,
                                           warc_headers_dict=warc_headers)
            elif r.kind == "request":
                http = StatusAndHeaders(f"GET {r.url} HTTP/1.1", [("Host", "example.com")], is_http_request=True)
                rec = w.create_warc_record(r.url, "request", payload=io.BytesIO(b""), http_headers=http,
                                           warc_headers_dict=warc_headers)
            else:
                rec = w.create_warc_record(r.url, r.kind, payload=io.BytesIO(r.body),
                                           warc_content_type=r.content_type or "text/plain",
                                           warc_headers_dict=warc_headers)
            w.write_record(rec)
    return offsets


def gzip_body(data: bytes) -> bytes:
    return gzip.compress(data)


# ---- PDFs ----------------------------------------------------------------------------------------

def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], *, title: str | None = None, created: str | None = None) -> bytes:
    """A valid PDF whose page ``i`` shows the lines ``pages[i]`` in Helvetica (text pypdf can extract).

    An empty list of lines makes a page with no text (as a scanned page has none)."""
    objects: list[bytes] = []  # object i + 1

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = len(objects) + 1 + 2 * len(pages)  # after the page and content objects
    kids = []
    for lines in pages:
        ops = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({_escape(line)}) '" for line in lines) + " ET"
        stream = zlib.compress(ops.encode("latin-1"))
        content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, content, font)))
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids),
                                                              len(kids))) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    info_parts = []
    if title:
        info_parts.append(b"/Title (" + _escape(title).encode("latin-1") + b")")
    if created:
        info_parts.append(b"/CreationDate (" + created.encode("ascii") + b")")
    info = add(b"<< " + b" ".join(info_parts) + b" >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, info, xref)
    return bytes(out)
