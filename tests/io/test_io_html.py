"""HTML files and directories: main text without boilerplate, title / language / date, charsets,
canonical URL and licence hints; README.md beside data files is not read as the data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.io.html import decode_html, page_metadata
from tests.io.web_fixtures import page, paragraphs

HEAD = ('<link rel="canonical" href="https://example.org/essays/bees">'
        '<meta property="article:published_time" content="2023-09-14T08:00:00+02:00">'
        '<meta name="license" content="CC BY-NC 4.0">')


def read(path: Path, **options) -> tuple[list[dict], list[BadRecord], dict]:
    reader = open_reader(path, ReaderOptions(**options))
    items = list(reader)
    return ([i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)],
            dict(reader.skipped))


def test_an_html_file_gives_its_main_text_and_metadata(tmp_path: Path) -> None:
    html = page("Keeping bees", paragraphs("keeping bees"), lang="en-US", head=HEAD).encode()
    path = tmp_path / "bees.html"
    path.write_bytes(html)
    os.utime(path, (1700000000, 1700000000))
    reader = open_reader(path)
    assert reader.format == "html"
    rows, bad, _ = read(path)
    assert not bad and len(rows) == 1
    row = rows[0]
    assert row["id"] == "bees.html" and row["source"] == str(path)
    assert "Researchers who work on keeping bees often begin" in row["text"]
    assert "Home" not in row["text"] and "Terms of use" not in row["text"] and "Popular posts" not in row["text"]
    assert (row["title"], row["html_lang"], row["published"]) == ("Keeping bees", "en-US", "2023-09-14")
    assert row["url"] == "https://example.org/essays/bees"
    assert row["fetch_time"] == "2023-11-14T22:13:20Z" and row["http_status"] is None
    assert row["content_sha256"] == hashlib.sha256(html).hexdigest() and row["content_type"] == "text/html"
    assert row["license"] == "CC-BY-NC-4.0" and row["license_hints"] == "meta license: CC BY-NC 4.0"


def test_a_directory_of_pages_reads_every_page_in_order(tmp_path: Path) -> None:
    (tmp_path / "site" / "blog").mkdir(parents=True)
    (tmp_path / "site" / "index.htm").write_text(page("Home", paragraphs("the home page")), encoding="utf-8")
    (tmp_path / "site" / "blog" / "post.html").write_text(
        page("Post", paragraphs("a blog post"), footer='<a rel="license" href="http://creativecommons.org/'
                                                       'publicdomain/zero/1.0/">CC0</a>'), encoding="utf-8")
    (tmp_path / "site" / "style.css").write_text("body {}", encoding="utf-8")
    (tmp_path / "site" / "empty.html").write_text(  # navigation only: no main text
        "<html><body><nav><ul><li><a href=/>Home</a></li><li><a href=/b>Blog</a></li></ul></nav>"
        "<footer>Copyright 2024</footer></body></html>", encoding="utf-8")
    rows, bad, skipped = read(tmp_path / "site")
    assert [r["id"] for r in rows] == ["blog/post.html", "index.htm"]
    assert rows[0]["license"] == "CC0-1.0" and rows[1].get("license") is None
    assert skipped == {"no main text": 1} and not bad


def test_input_license_fills_rows_without_a_licence_of_their_own(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(page("A", paragraphs("apples"), head=HEAD), encoding="utf-8")
    (tmp_path / "b.html").write_text(page("B", paragraphs("bananas")), encoding="utf-8")
    rows, _, _ = read(tmp_path, license="proprietary")
    assert [r["license"] for r in rows] == ["CC-BY-NC-4.0", "proprietary"]


def test_charsets_declared_wrongly_or_not_at_all() -> None:
    text = "Crème brûlée — naïve"
    assert decode_html(text.encode("utf-8"), "iso-8859-1") == (text, "utf-8")  # the header lies
    assert decode_html(text.encode("cp1252"), None)[0] == text  # nothing declared, not UTF-8
    assert decode_html(b'<meta charset="windows-1252">' + text.encode("cp1252"))[1] == "cp1252"
    assert decode_html(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8")
    assert decode_html("Привет мир, это проверка кодировки страницы".encode("cp1251"))[1] == "cp1251"
    assert decode_html(b"plain ascii", "no-such-charset") == ("plain ascii", "utf-8")


def test_page_metadata_reads_the_markup_only() -> None:
    meta = page_metadata('<html xml:lang="de"><head><title>\n  Der  Titel &amp; mehr </title>'
                         '<script type="application/ld+json">{"datePublished": "2021-02-03"}</script></head>')
    assert meta == {"title": "Der Titel & mehr", "html_lang": "de", "published": "2021-02-03", "canonical": None}
    assert page_metadata("<p>no head</p>")["title"] is None


def test_binary_bytes_in_an_html_file_are_quarantined(tmp_path: Path) -> None:
    (tmp_path / "x.html").write_bytes(b"\x00\x01binary" * 100)
    rows, bad, _ = read(tmp_path / "x.html")
    assert not rows and bad[0].reason.startswith("binary content") and bad[0].source == str(tmp_path / "x.html")


def test_a_readme_beside_data_files_is_not_the_data(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text(json.dumps({"id": "1", "text": "hello"}) + "\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# About this data\n", encoding="utf-8")
    assert open_reader(tmp_path).format == "jsonl"


def test_chunking_applies_to_page_text(tmp_path: Path) -> None:
    (tmp_path / "long.html").write_text(page("Long", paragraphs("long pages", 12)), encoding="utf-8")
    rows, _, _ = read(tmp_path / "long.html", chunk_chars=800)
    assert len(rows) > 2 and rows[0]["id"] == "long.html#0" and all(len(r["text"]) <= 800 for r in rows)
