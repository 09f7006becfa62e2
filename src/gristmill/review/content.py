"""What a reviewer judges in a row: its content fields, their hash, a display text, and diffs of edits.

A row's *content* is its payload columns (:data:`CONTENT`: ``text``, ``instruction`` / ``input`` /
``output``, ``messages``, ``tokens`` / ``tags``, ``label``, ...), not its annotations (``pii.*``,
scores) nor its provenance (``id``, ``source``, ``license``). Decisions are keyed by the row id and
:func:`content_hash`, so a row whose content changed after it was reviewed is queued again, while a
rerun that only recomputes scores keeps the decisions.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["CONTENT", "EDITABLE", "LABEL", "TAGS", "TOKENS", "content_hash", "content_of", "display_text",
           "editable_fields", "jsonable", "unified_diff", "word_diff"]

TOKENS, TAGS, LABEL = "tokens", "tags", "label"
CONTENT = ("text", "instruction", "input", "output", "prompt", "completion", "chosen", "rejected", "messages",
           "conversations", TOKENS, TAGS, LABEL)
"""Payload columns that make up a row's content (in display order)."""

EDITABLE = ("text", "instruction", "input", "output", "prompt", "completion", "chosen", "rejected")
"""String columns a reviewer can edit as text (a label and NER tags have their own editors)."""


def jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made plain: bytes as text, NaN and infinities as None, others as str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The content fields of ``row`` that are present and not null (drops every other column)."""
    return {c: jsonable(row[c]) for c in CONTENT if c in row and row[c] is not None}


def content_hash(row: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of the row's content (:func:`content_of`) as canonical JSON."""
    text = json.dumps(content_of(row), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def display_text(row: Mapping[str, Any], limit: int = 4000) -> str:
    """The text a reviewer reads and searches: ``text``, else the instruction fields, the chat turns or the
    tokens, joined; cut to ``limit`` characters."""
    parts: list[str] = []
    if isinstance(row.get("text"), str):
        parts.append(row["text"])
    else:
        for c in ("instruction", "input", "output", "prompt", "completion", "chosen", "rejected"):
            if isinstance(row.get(c), str) and row[c]:
                parts.append(row[c])
        for c in ("messages", "conversations"):
            for turn in row.get(c) or []:
                if isinstance(turn, Mapping):
                    parts.append(str(turn.get("content") or turn.get("value") or ""))
        if not parts and isinstance(row.get(TOKENS), list):
            parts.append(" ".join(map(str, row[TOKENS])))
        if not parts and isinstance(row.get("raw"), str):
            parts.append(row["raw"])
    text = "\n".join(parts)
    return text if len(text) <= limit else text[:limit] + "…"


def editable_fields(row: Mapping[str, Any]) -> list[str]:
    """The string content fields of ``row`` a reviewer can edit, in :data:`EDITABLE` order."""
    return [c for c in EDITABLE if isinstance(row.get(c), str)]


def unified_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """A unified diff per changed field (``--- field`` / ``+++ field``), lines of text; empty when nothing changed."""
    out: list[str] = []
    for field in dict.fromkeys([*before, *after]):
        a, b = before.get(field), after.get(field)
        if a == b:
            continue
        a_text = a if isinstance(a, str) else json.dumps(a, ensure_ascii=False)
        b_text = b if isinstance(b, str) else json.dumps(b, ensure_ascii=False)
        out += difflib.unified_diff(a_text.splitlines(), b_text.splitlines(), f"{field} (before)", f"{field} (after)",
                                    lineterm="")
    return "\n".join(out)


def word_diff(a: str, b: str) -> list[list[Any]]:
    """``[[op, text_a, text_b], ...]`` over whitespace-separated words, ``op`` one of ``equal``, ``replace``,
    ``delete`` (only in ``a``) and ``insert`` (only in ``b``): what marks two near-duplicates' differences."""
    wa, wb = a.split(" "), b.split(" ")
    out: list[list[Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        out.append([op, " ".join(wa[i1:i2]), " ".join(wb[j1:j2])])
    return out
