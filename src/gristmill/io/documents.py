"""The web and document input formats: ``warc``, ``wet``, ``html``, ``pdf``, ``markdown``.

:mod:`gristmill.io.readers` hands a file of one of these formats to :func:`iter_document`, which
picks the reader (:mod:`~gristmill.io.warc`, :mod:`~gristmill.io.html`, :mod:`~gristmill.io.pdf`,
:mod:`~gristmill.io.markdown`). :func:`required_modules` names the libraries a format needs with the
given options (the ``web`` extra), so a missing one stops the recipe at validation with the pip line.
Records these readers skip (WARC request and metadata records, non-HTML responses, pages without
main text, empty PDF pages) are counted in the reader's ``skipped`` counter by reason, not quarantined.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gristmill.io.base import BadRecord, InputError, Progress, ReaderOptions
from gristmill.io.provenance import PROVENANCE_COLUMNS

__all__ = ["DOCUMENT_COLUMNS", "DOCUMENT_FORMATS", "DOCUMENT_SUFFIXES", "Extractors", "MissingModules", "check_modules",
           "columns", "iter_document", "required_modules"]

Item = tuple[int | None, dict[str, Any]] | BadRecord

DOCUMENT_FORMATS = ("warc", "wet", "html", "pdf", "markdown")
DOCUMENT_SUFFIXES = {".warc": "warc", ".arc": "warc", ".wet": "wet", ".html": "html", ".htm": "html",
                     ".xhtml": "html", ".pdf": "pdf", ".md": "markdown", ".markdown": "markdown"}
_PAGE = ("text", "title", "html_lang", "published", "charset")
DOCUMENT_COLUMNS: dict[str, list[str]] = {
    "warc": [*_PAGE, *PROVENANCE_COLUMNS, "warc_record_id"],
    "wet": ["text", *PROVENANCE_COLUMNS, "warc_record_id"],
    "html": [*_PAGE, *PROVENANCE_COLUMNS],
    "pdf": ["text", "title", "published", "pages", *PROVENANCE_COLUMNS],
    "markdown": ["text", "title", "published", "front_matter", *PROVENANCE_COLUMNS],
}


def required_modules(fmt: str, options: ReaderOptions) -> list[str]:
    """The modules reading ``fmt`` with ``options`` imports (empty for the other formats)."""
    extractor = [options.extractor]
    return {"warc": ["warcio", *extractor], "wet": ["warcio"], "html": extractor, "pdf": ["pypdf"]}.get(fmt, [])


def columns(fmt: str, options: ReaderOptions) -> list[str]:
    """The columns rows of ``fmt`` have with ``options`` (``page`` / ``section`` where the rows are split)."""
    cols = list(DOCUMENT_COLUMNS[fmt])
    if fmt == "pdf" and options.pdf_rows == "page":
        cols.insert(1, "page")
    if fmt == "markdown" and options.markdown_split == "headings":
        cols.insert(1, "section")
    return cols


class Extractors:
    """One HTML extractor per pass of a reader over its files, made when the first page needs it
    (so WET input needs no extractor), so trafilatura's deduplication sees the pages of one input
    in order and starts afresh with the next pass."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._made: Any = None

    def get(self) -> Any:
        if self._made is None:
            from gristmill.io.html import Extractor

            self._made = Extractor(self.name)
        return self._made


def iter_document(fmt: str, path: Path, record_id: str, options: ReaderOptions, progress: Progress,
                  skipped: Counter[str], extractors: Extractors) -> Iterator[Item]:
    """The rows and bad records of one file of a document format (``record_id``: the file's id)."""
    limit = options.max_record_bytes
    if fmt in ("warc", "wet"):
        from gristmill.io.warc import iter_warc

        return iter_warc(path, path.name, limit, progress, extractors.get, skipped)
    if fmt == "html":
        from gristmill.io.html import iter_html

        return iter_html(path, record_id, limit, progress, extractors.get(), skipped)
    if fmt == "pdf":
        from gristmill.io.pdf import iter_pdf

        return iter_pdf(path, record_id, limit, progress, options.pdf_rows, skipped)
    if fmt == "markdown":
        from gristmill.io.markdown import iter_markdown

        return iter_markdown(path, record_id, limit, progress, options.markdown_split, skipped)
    raise ValueError(f"not a document format: {fmt}")


class MissingModules(InputError):
    """An input format whose library is not installed; ``modules`` names them (recipe validation
    turns them into the pip line of the extra)."""

    def __init__(self, path: Path, fmt: str, modules: list[str]) -> None:
        self.format = fmt
        self.modules = modules
        super().__init__(f"{path}: the {fmt} format needs {', '.join(modules)}, which is not installed")


def check_modules(path: Path, fmt: str, options: ReaderOptions) -> None:
    """Raise :class:`MissingModules` when a module reading ``fmt`` needs cannot be imported
    (looked up, not imported)."""
    missing = []
    for module in required_modules(fmt, options):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise MissingModules(path, fmt, missing)
