"""PDF input: text per page with page numbers or per document, metadata and licence hints, and the
PDFs that cannot be read quarantined with the reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gristmill.io import BadRecord, ReaderOptions, open_reader
from tests.io.web_fixtures import make_pdf

PAGES = [["Chapter one begins on a quiet morning.", "The river was high after the rain."],
         ["Chapter two moves to the city.", "Released under CC BY-SA 4.0 by its author."]]


def read(path: Path, **options) -> tuple[list[dict], list[BadRecord], dict]:
    reader = open_reader(path, ReaderOptions(**options))
    items = list(reader)
    return ([i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)],
            dict(reader.skipped))


@pytest.fixture
def two_pages(tmp_path: Path) -> Path:
    path = tmp_path / "story.pdf"
    path.write_bytes(make_pdf(PAGES, title="A Short Story", created="D:20220304101500Z"))
    return path


def test_one_row_per_page_with_its_number(two_pages: Path) -> None:
    rows, bad, _ = read(two_pages)
    assert not bad
    assert [(r["id"], r["page"], r["pages"]) for r in rows] == [("story.pdf#p1", 1, 2), ("story.pdf#p2", 2, 2)]
    assert rows[0]["text"] == "\n".join(PAGES[0]) and rows[1]["text"] == "\n".join(PAGES[1])
    assert rows[0]["title"] == "A Short Story" and rows[0]["published"] == "2022-03-04"
    assert rows[0]["content_type"] == "application/pdf"
    assert rows[0]["content_sha256"] == hashlib.sha256(two_pages.read_bytes()).hexdigest()
    assert [r["license"] for r in rows] == ["CC-BY-SA-4.0"] * 2  # the document's licence, on every page
    assert rows[0]["license_hints"] == "cc mark: CC BY-SA 4.0"


def test_one_row_per_document(two_pages: Path) -> None:
    rows, bad, _ = read(two_pages, pdf_rows="document")
    assert not bad and len(rows) == 1
    assert rows[0]["id"] == "story.pdf" and rows[0]["pages"] == 2 and "page" not in rows[0]
    assert rows[0]["text"] == "\n".join(PAGES[0]) + "\n\n" + "\n".join(PAGES[1])


def test_pages_without_text_are_counted_and_a_document_without_any_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "mixed.pdf").write_bytes(make_pdf([PAGES[0], []]))
    rows, bad, skipped = read(tmp_path / "mixed.pdf")
    assert [r["page"] for r in rows] == [1] and skipped == {"PDF page without text": 1} and not bad
    (tmp_path / "scan.pdf").write_bytes(make_pdf([[], []]))
    rows, bad, _ = read(tmp_path / "scan.pdf")
    assert not rows and bad[0].reason == ("no text layer: none of its 2 pages has extractable text "
                                          "(scanned pages need OCR)")


def test_encrypted_pdfs(tmp_path: Path, two_pages: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    for name, password in (("locked.pdf", "secret"), ("open.pdf", "")):
        writer = PdfWriter(clone_from=PdfReader(two_pages))
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
        writer.write(tmp_path / name)
    rows, bad, _ = read(tmp_path / "locked.pdf")
    assert not rows and len(bad) == 1
    assert (bad[0].source, bad[0].reason) == (str(tmp_path / "locked.pdf"),
                                              "encrypted PDF: the document needs a password")
    rows, bad, _ = read(tmp_path / "open.pdf")  # the empty user password opens it
    assert not bad and [r["page"] for r in rows] == [1, 2]


def test_truncated_and_broken_pdfs_are_quarantined(tmp_path: Path, two_pages: Path) -> None:
    data = two_pages.read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.pdf").write_bytes(b"this is not a PDF file")
    for name, ending in (("cut.pdf", "(no %%EOF at the end: the file is truncated)"),
                         ("junk.pdf", "(no %PDF- header: not a PDF)")):
        rows, bad, _ = read(tmp_path / name)
        assert not rows and len(bad) == 1, name
        assert bad[0].reason.startswith("unreadable PDF: ") and bad[0].reason.endswith(ending), bad[0].reason
