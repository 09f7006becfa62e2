"""The crawler's parts that need no network: canonical URLs, robots.txt, charsets and links, sitemaps,
the frontier and the output files. (The crawls themselves: ``test_crawl_netns.py``.)"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from gristmill.commands.crawl import parse_size
from gristmill.crawl.canonical import NotCrawlable, canonicalize, in_domains
from gristmill.crawl.config import CrawlConfig
from gristmill.crawl.fetch import media_type, sniff
from gristmill.crawl.frontier import DONE, Frontier
from gristmill.crawl.links import decode, parse_page, robots_directives
from gristmill.crawl.robots import MAX_ROBOTS_BYTES, Robots
from gristmill.crawl.sitemap import MAX_ENTRIES, parse_sitemap
from gristmill.crawl.warc_out import CrawlOutput


# ---- canonical URLs -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, canonical", [
    ("HTTP://Example.COM", "http://example.com/"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://example.com/a#frag", "http://example.com/a"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/../../x", "http://example.com/x"),
    ("http://example.com/%7euser/%2f", "http://example.com/~user/%2F"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/a?", "http://example.com/a"),
    ("http://example.com/a?b=2&a=1&a=0", "http://example.com/a?a=0&a=1&b=2"),
    ("http://example.com/a?utm_source=x&id=3&fbclid=y&SessionID=9", "http://example.com/a?id=3"),
    ("http://example.com/a;jsessionid=ABC?x=1", "http://example.com/a?x=1"),
    ("http://user:secret@example.com/", "http://example.com/"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://example.com./a", "http://example.com/a"),
    ("http://example.com/docs/", "http://example.com/docs/"),  # the trailing slash is kept
    ("http://example.com/docs", "http://example.com/docs"),
])
def test_canonical_forms(raw: str, canonical: str) -> None:
    assert canonicalize(raw) == canonical


def test_links_resolve_against_their_page() -> None:
    assert canonicalize("../c.html", base="http://h/a/b/page.html") == "http://h/a/c.html"
    assert canonicalize("//other.org/x", base="https://h/") == "https://other.org/x"
    assert canonicalize("?q=1", base="http://h/p") == "http://h/p?q=1"
    assert canonicalize("#top", base="http://h/p") == "http://h/p"


def test_keeping_every_query_parameter() -> None:
    assert canonicalize("http://h/?utm_source=x&b=1", drop_params=None) == "http://h/?b=1&utm_source=x"


@pytest.mark.parametrize("raw, reason", [("mailto:a@b.c", "scheme"), ("javascript:void(0)", "scheme"),
                                         ("ftp://h/f", "scheme"), ("data:text/plain,x", "scheme"),
                                         ("http://h:99999/", "malformed"), ("http:///nohost", "malformed")])
def test_links_that_are_not_crawlable(raw: str, reason: str) -> None:
    result = canonicalize(raw)
    assert isinstance(result, NotCrawlable) and result.reason == reason


_segment = st.text(alphabet="abcXYZ019-._~%/ ?&=#:é", max_size=12)


@given(host=st.sampled_from(["Example.com", "h", "a.b.c", "127.0.0.1"]), port=st.sampled_from(["", ":80", ":8080"]),
       path=_segment, query=_segment, scheme=st.sampled_from(["http", "HTTPS"]))
def test_canonicalisation_is_idempotent(host: str, port: str, path: str, query: str, scheme: str) -> None:
    once = canonicalize(f"{scheme}://{host}{port}/{path}?{query}")
    if isinstance(once, str):
        assert canonicalize(once) == once


def test_domains_include_their_subdomains() -> None:
    assert in_domains("docs.example.org", ("example.org",)) and in_domains("example.org", ("example.org",))
    assert not in_domains("badexample.org", ("example.org",))
    assert in_domains("a.example.org", (".example.org",)) and not in_domains("example.org", (".example.org",))


# ---- robots.txt -----------------------------------------------------------------------------------

ROBOTS = b"""User-agent: *
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$
Crawl-delay: 2

User-agent: strictbot
Disallow: /
Request-rate: 1/10
"""


def test_robots_rules_longest_match_and_wildcards() -> None:
    r = Robots.from_answer(200, ROBOTS)
    ua = "gristmill-crawl/0.1"
    assert not r.allowed("http://h/private/x", ua) and r.allowed("http://h/private/open", ua)
    assert not r.allowed("http://h/a/b.pdf", ua) and r.allowed("http://h/a/b.pdf?x=1", ua)
    assert r.allowed("http://h/public", ua) and r.delay(ua) == 2.0
    assert not r.allowed("http://h/public", "strictbot/2.0") and r.delay("strictbot/2.0") == 10.0


@pytest.mark.parametrize("status, allowed", [(404, True), (410, True), (401, True), (429, False), (500, False),
                                             (503, False), (0, False)])
def test_robots_status_semantics_of_rfc_9309(status: int, allowed: bool) -> None:
    r = Robots.from_answer(status, b"User-agent: *\nDisallow: /\n", "connection refused" if not status else "")
    assert r.allowed("http://h/page", "bot") is allowed
    assert ("unreachable" in r.why_not()) is (not allowed)


def test_robots_reads_only_its_first_512_kib() -> None:
    body = b"User-agent: *\nDisallow: /a\n" + b"# filler\n" * (MAX_ROBOTS_BYTES // 9) + b"Disallow: /b\n"
    r = Robots.from_answer(200, body)
    assert not r.allowed("http://h/a", "bot") and r.allowed("http://h/b", "bot")


# ---- charsets, links, sniffing --------------------------------------------------------------------

def test_charsets_and_their_notes() -> None:
    cafe = "<p>café</p>"
    assert decode(cafe.encode("utf-8"), "utf-8")[1:] == ("utf-8", None)
    text, used, note = decode(cafe.encode("latin-1"), "utf-8")
    assert used == "windows-1252" and "café" in text and note and note[0] == "charset-mismatch"
    assert decode(cafe.encode("utf-8"), "no-such-charset")[2][0] == "charset-unknown"
    meta = '<meta charset="iso-8859-1"><p>café</p>'.encode("latin-1")
    assert decode(meta, None)[1:] == (codecs.lookup("latin-1").name, None)
    assert decode(cafe.encode("utf-8"), None)[2] == ("charset-missing", "no charset declared; valid UTF-8")
    assert decode(cafe.encode("latin-1"), None)[1] == "windows-1252"
    assert decode(codecs.BOM_UTF16_LE + cafe.encode("utf-16-le"), None)[:2] == (cafe, "utf-16-le")


def test_links_base_and_robots_meta() -> None:
    page = parse_page(b'<html><head><base href="/docs/"><meta name="ROBOTS" content="noindex, nofollow"></head>'
                      b'<body><a href="a.html">a</a><A HREF=" /b ">b</A><area href="c"><a name="x">no href</a>'
                      b'<img src="/img.png"><link href="/style.css"></body>', "utf-8")
    assert page.links == ["a.html", "/b", "c"] and page.base == "/docs/"
    assert page.nofollow and page.noindex
    assert robots_directives("none") == (True, True) and robots_directives("noarchive") == (False, False)
    assert parse_page(b"<a href='x'><<<>>><!-- unterminated", None).links == ["x"]  # broken HTML does not raise
    hidden = parse_page(b'<!-- <a href="c1"> --><script>var s = "<a href=s1>";</script><style>a{}</style>'
                        b'<a\nclass=x href=/u?a=1&amp;b=2>u</a><a href="">empty</a><a data-href="no">', None)
    assert hidden.links == ["/u?a=1&b=2"]


def test_media_types_and_sniffing() -> None:
    assert media_type('text/HTML; Charset="UTF-8"') == ("text/html", "utf-8")
    assert media_type(None) == ("", None)
    assert sniff(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff(b"\xef\xbb\xbf  <!DOCTYPE html><html>") == "text/html"
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00") == "application/octet-stream"
    assert sniff("plain words, é".encode()) == "text/plain"
    assert sniff(bytes(range(128, 256))) == "application/octet-stream"


# ---- sitemaps -------------------------------------------------------------------------------------

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_sitemap_urlset_index_gzip_and_text() -> None:
    urlset = f'<?xml version="1.0"?><urlset {NS}><url><loc> http://h/a </loc><priority>1</priority></url>' \
             f"<url><loc>http://h/b</loc></url></urlset>".encode()
    assert parse_sitemap(urlset, 2**20).pages == ["http://h/a", "http://h/b"]
    index = f"<sitemapindex {NS}><sitemap><loc>http://h/s1.xml</loc></sitemap></sitemapindex>".encode()
    assert parse_sitemap(index, 2**20).sitemaps == ["http://h/s1.xml"]
    assert parse_sitemap(gzip.compress(urlset), 2**20).pages == ["http://h/a", "http://h/b"]
    assert parse_sitemap(b"http://h/x\n# comment\nhttps://h/y\n", 2**20).pages == ["http://h/x", "https://h/y"]


def test_sitemap_problems_are_reported_not_raised() -> None:
    broken = parse_sitemap(f"<urlset {NS}><url><loc>http://h/a</loc></url><url>".encode(), 2**20)
    assert broken.pages == ["http://h/a"] and "malformed" in (broken.error or "")
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><urlset><url><loc>&a;</loc></url></urlset>'
    assert "DTD" in (parse_sitemap(bomb, 2**20).error or "")
    assert "uncompressed" in (parse_sitemap(gzip.compress(b"x" * 5000), 1000).error or "")
    many = ("\n".join(f"http://h/{i}" for i in range(MAX_ENTRIES + 5))).encode()
    sm = parse_sitemap(many, 2**30)
    assert len(sm.pages) == MAX_ENTRIES and sm.dropped == 5


# ---- the frontier ---------------------------------------------------------------------------------

def test_frontier_dedups_counts_and_recovers(tmp_path: Path) -> None:
    f = Frontier(tmp_path / "f.sqlite")
    with f.transaction():
        assert f.add("http://h/a", "page", "h", 0) and not f.add("http://h/a", "page", "h", 1)
        assert f.add("http://h/b", "page", "h", 1)
        assert f.add("http://x/c", "page", "x", 1, reason="off-domain")
    assert f.queued == {"h": 2} and f.next_for("h", 0).url == "http://h/a"
    with f.transaction():
        f.start("http://h/a")
    assert f.next_for("h", 0).url == "http://h/b"
    f.close()
    f = Frontier(tmp_path / "f.sqlite")  # as after a kill: a is still being fetched
    assert f.queued == {"h": 2} and f.recover() == ["http://h/a"] and f.next_for("h", 0).url == "http://h/a"
    with f.transaction():
        f.finish("http://h/a", "h", None, 200)
        f.retry("http://h/b", 1, 1e12)
    assert f.next_for("h", 0) is None and f.wake_time("h") == 1e12 and f.queue_size() == 1
    assert f.reasons() == {"off-domain": 1} and f.stored() == 1
    f.close()


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    f = Frontier(tmp_path / "f.sqlite")
    with pytest.raises(RuntimeError), f.transaction(lambda: {"files": 1}):
        f.add("http://h/a", "page", "h", 0)
        raise RuntimeError
    assert not f.known("http://h/a") and f.get_meta("files") is None
    with f.transaction(lambda: {"files": 2}):
        pass  # nothing changed: nothing written
    assert f.get_meta("files") is None
    with f.transaction(lambda: {"files": 3}):
        f.add("http://h/a", "page", "h", 0)
    assert f.get_meta("files") == 3
    f.close()
    assert DONE == 2


# ---- output files ---------------------------------------------------------------------------------

def _write(out: CrawlOutput, i: int) -> tuple[str, int, int]:
    body = f"<html>page {i} ".encode() + bytes(range(256)) * 20
    return out.write_page(f"http://h/{i}", 1.7e9 + i, f"GET /{i} HTTP/1.1", [("Host", "h")], "HTTP/1.1", "200 OK",
                          [("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("Content-Length", "9")],
                          body, "127.0.0.1")


def test_warc_records_rotate_and_read_back(tmp_path: Path) -> None:
    from warcio.archiveiterator import ArchiveIterator

    out = CrawlOutput.open(tmp_path, None, 4000, "test", "bot/1")
    placed = [_write(out, i) for i in range(6)]
    out.close()
    assert len({name for name, _, _ in placed}) > 1
    for i, (name, offset, _length) in enumerate(placed):
        with open(tmp_path / "warc" / name, "rb") as f:
            f.seek(offset)
            rec = next(iter(ArchiveIterator(f)))
            assert rec.rec_type == "response" and rec.rec_headers.get_header("WARC-Target-URI") == f"http://h/{i}"
            assert rec.http_headers.get_header("Content-Encoding") is None  # the stored body is decoded
            assert rec.http_headers.get_header("Content-Length") == str(len(rec.content_stream().read()))
    with open(tmp_path / "warc" / placed[0][0], "rb") as f:
        kinds = [r.rec_type for r in ArchiveIterator(f)]
    assert kinds[0] == "warcinfo" and kinds[1:3] == ["response", "request"]


def test_reopening_cuts_the_files_back_to_the_last_commit(tmp_path: Path) -> None:
    out = CrawlOutput.open(tmp_path, None, 4000, "test", "bot/1")
    _write(out, 0)
    out.index({"url": "http://h/0"})
    out.log({"url": "http://h/0"})
    committed = out.positions()
    for i in range(1, 6):  # written but never committed, one rotation included
        _write(out, i)
        out.index({"url": f"http://h/{i}"})
    out.close()
    before = hashlib.sha256((tmp_path / "warc" / "crawl-00000.warc.gz").read_bytes()[:committed["warc_size"]])
    out = CrawlOutput.open(tmp_path, json.loads(json.dumps(committed)), 4000, "test", "bot/1")
    assert out.warc_files() == ["crawl-00000.warc.gz"]
    assert hashlib.sha256((tmp_path / "warc" / "crawl-00000.warc.gz").read_bytes()).digest() == before.digest()
    assert (tmp_path / "index.jsonl").read_text().count("\n") == 1
    out.close()
    (tmp_path / "index.jsonl").write_text("")
    with pytest.raises(OSError, match="damaged"):
        CrawlOutput.open(tmp_path, committed, 4000, "test", "bot/1")
    fresh = CrawlOutput.open(tmp_path, None, 4000, "test", "bot/1")  # not resuming: everything goes
    assert fresh.warc_files() == [] and (tmp_path / "crawl_log.jsonl").stat().st_size == 0
    fresh.close()


# ---- settings -------------------------------------------------------------------------------------

def test_settings_checks_and_sizes() -> None:
    assert CrawlConfig(seeds=("http://h/",)).problems() == []
    problems = CrawlConfig(include=("(",), delay=-1, per_host=0).problems()
    assert any("seed" in p for p in problems) and any("--include" in p for p in problems)
    assert any("--delay" in p for p in problems) and any("--per-host" in p for p in problems)
    config = CrawlConfig(content_types=("text/*", "application/pdf"))
    assert config.accepts_type("text/csv") and config.accepts_type("application/pdf")
    assert not config.accepts_type("image/png")
    assert [parse_size(s) for s in ("2000", "10M", "512KiB", "1g", "1.5k")] == [2000, 10 * 2**20, 2**19, 2**30, 1536]
    with pytest.raises(typer.BadParameter):
        parse_size("lots")


def test_without_the_web_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    from tests.test_extras import lean_cli

    done = lean_cli(["crawl", "http://127.0.0.1:9/", "-q"], tmp_path)
    assert done.returncode == 2 and "pip install 'gristmill[web]'" in done.stderr, done.stderr
    assert not (tmp_path / "runs").exists()
