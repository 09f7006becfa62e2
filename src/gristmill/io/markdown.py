"""Markdown files (``.md``, ``.markdown``): one row per file, or per section with ``markdown_split: headings``.

A front matter block at the top (YAML between ``---`` lines, or TOML between ``+++`` lines) is
parsed and removed from the text. Its ``title``, ``date`` (as ``published``, ``YYYY-MM-DD``),
``license`` / ``licence`` and ``url`` fill those columns; the whole block is the ``front_matter``
column as JSON text (null without one). Without a front matter title, the first ``#`` heading is
the title. The text is the Markdown source as written (no rendering). With
``markdown_split: headings`` the file is cut before every ``#`` and ``##`` heading outside fenced
code blocks: one row per section (``id`` ``<file>#<k>``, ``section`` the heading's text; text before
the first heading is section 0). Rows carry the provenance columns of
:mod:`gristmill.io.provenance` (``content_type`` ``text/markdown``; licence hints from the front
matter and from Creative Commons marks and links in the text).

Drops, as bad records: invalid UTF-8, a file over ``max_record_bytes``, a front matter block that
does not parse, is not a mapping, or uses YAML aliases (refused: they can expand without bound);
an empty file (or one that is only front matter) is skipped and counted (``empty Markdown``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from gristmill.io.base import BadRecord, Opened, Progress, cut, size_reason, utf8_reason
from gristmill.io.provenance import LicenseHints, iso_time, provenance, sha256, text_license_hints

__all__ = ["front_matter", "iter_markdown", "split_sections"]

Item = tuple[int | None, dict[str, Any]] | BadRecord
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,2})\s+(.*?)\s*#*\s*$")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
MAX_FRONT_MATTER = 1 << 16


class FrontMatterError(ValueError):
    """A front matter block that cannot be used; ``str()`` is the reason."""


def front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """``(front matter, body)``: the parsed block at the top of ``text`` and the text after it,
    or ``(None, text)`` when there is none. Raises :class:`FrontMatterError`."""
    for fence, parse in (("---", _yaml), ("+++", _toml)):
        if not (text.startswith(fence + "\n") or text.startswith(fence + "\r\n")):
            continue
        lines = text.split("\n")
        for i in range(1, len(lines)):
            line = lines[i].rstrip("\r")
            if line == fence or (fence == "---" and line == "..."):
                block = "\n".join(lines[1:i])
                if len(block) > MAX_FRONT_MATTER:
                    raise FrontMatterError(f"front matter over {MAX_FRONT_MATTER // 1024} KB")
                meta = parse(block)
                if meta is None:
                    meta = {}
                if not isinstance(meta, dict):
                    raise FrontMatterError(f"front matter is not a mapping (got {type(meta).__name__})")
                return meta, "\n".join(lines[i + 1:])
        raise FrontMatterError(f"front matter not closed: no '{fence}' line after the opening one")
    return None, text


def _yaml(block: str) -> Any:
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(block, Loader=yaml.SafeLoader)):
            raise FrontMatterError("front matter uses YAML aliases (refused)")
        return yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise FrontMatterError(f"invalid front matter{where}: {getattr(exc, 'problem', None) or exc}") from None


def _toml(block: str) -> Any:
    try:
        return tomllib.loads(block)
    except tomllib.TOMLDecodeError as exc:
        raise FrontMatterError(f"invalid front matter: {exc}") from None


def split_sections(body: str) -> list[tuple[str | None, str]]:
    """``(heading, text)`` per section: cut before each ``#`` / ``##`` heading outside fenced code.
    Sections with only whitespace are dropped."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fence: str | None = None
    for line in body.split("\n"):
        f = _FENCE.match(line)
        if f is not None:
            fence = None if fence == f.group(1) else (fence or f.group(1))
        elif fence is None and (h := _HEADING.match(line)) is not None:
            sections.append((h.group(2) or None, []))
        sections[-1][1].append(line)
    out = [(h, "\n".join(lines).strip()) for h, lines in sections]
    return [(h, t) for h, t in out if t]


def _first_heading(body: str) -> str | None:
    for heading, _ in split_sections(body):
        if heading is not None:
            return heading
    return None


def _date(value: Any) -> str | None:
    m = _DATE.search(str(value)) if value is not None else None
    return m.group(0) if m else None


def iter_markdown(path: Path, record_id: str, limit: int, progress: Progress, split: Literal["file", "headings"],
                  skipped: Counter[str]) -> Iterator[Item]:
    """Yield the row(s) of one Markdown file, or a bad record."""
    src = str(path)
    with Opened(path) as f:
        progress.current = f.tell
        data = f.stream.read(limit + 1)
    if len(data) > limit:
        yield BadRecord(src, None, size_reason(len(data), limit), cut(data[:4000]))
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        yield BadRecord(src, None, utf8_reason(exc), cut(data))
        return
    try:
        meta, body = front_matter(text)
    except FrontMatterError as exc:
        yield BadRecord(src, None, str(exc), cut(data))
        return
    body = body.strip()
    if not body:
        skipped["empty Markdown"] += 1
        return
    meta = meta or {}
    hints = LicenseHints()
    for key in ("license", "licence"):
        if isinstance(meta.get(key), str | int | float) and str(meta[key]).strip():
            hints.add("meta license", str(meta[key]))
    text_license_hints(body, hints)
    title = meta.get("title")
    base: dict[str, Any] = {
        "title": " ".join(str(title).split()) if title not in (None, "") else _first_heading(body),
        "published": _date(meta.get("date")),
        "front_matter": json.dumps(meta, ensure_ascii=False, default=str) if meta else None,
    }
    url = meta.get("url") if isinstance(meta.get("url"), str) else None
    base.update(provenance(url=url, fetch_time=iso_time(os.stat(path).st_mtime), data=None, digest=sha256(data),
                           http_status=None, content_type="text/markdown", hints=hints))
    if split == "file":
        yield None, {"id": record_id, "text": body, **base}
        return
    for k, (heading, section) in enumerate(split_sections(body)):
        yield None, {"id": f"{record_id}#{k}", "text": section, "section": heading, **base}
