"""Real documents for the recursive-training experiments: read, cut into documents, split.

Files are read through :mod:`gristmill.io` (plain, ``.gz`` or ``.zst``): a text file is cut
at line ends into documents of about ``doc_chars`` characters; a JSON Lines file gives the
``text`` field of each record, cut the same way, and names every record it leaves out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.io.base import Opened, Progress, ReaderOptions, read_lines, size_reason, utf8_reason
from gristmill.io.jsonl import iter_json
from gristmill.io.readers import container_of


@dataclass
class RealData:
    """Real documents split once (``data_seed``) into training and held-out validation sets."""

    train: list[str]
    val: list[str]
    skipped: list[str]


def _chunk(text: str, doc_chars: int) -> list[str]:
    """Cut ``text`` at line ends into documents of at least ``doc_chars`` characters (the last may be shorter)."""
    docs, cur, size = [], [], 0
    for line in text.splitlines():
        cur.append(line)
        size += len(line) + 1
        if size >= doc_chars:
            doc = "\n".join(cur).strip()
            if doc:
                docs.append(doc)
            cur, size = [], 0
    doc = "\n".join(cur).strip()
    if doc:
        docs.append(doc)
    return docs


def load_documents(path: str | Path, doc_chars: int = 1000) -> tuple[list[str], list[str]]:
    """Documents of about ``doc_chars`` characters from a text file, or from the ``text`` field of a
    JSON Lines file (each record's text is cut the same way); ``.gz`` / ``.zst`` are read too.

    Returns (documents, skipped) where ``skipped`` says ``file:line: reason`` for each
    malformed record or line left out (a truncated compressed file included).
    """
    path = Path(path)
    limit = ReaderOptions().max_record_bytes
    skipped: list[str] = []
    if container_of(path) == "jsonl":
        docs: list[str] = []
        for item in iter_json(path, limit, Progress()):
            if not isinstance(item, tuple):  # a BadRecord
                skipped.append(f"{item.source}:{item.line}: {item.reason}")
                continue
            n, rec = item
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped.append(f"{path}:{n}: no non-empty string 'text' field")
                continue
            docs.extend(_chunk(text.replace("\r\n", "\n"), doc_chars))
        return docs, skipped
    lines: list[str] = []
    with Opened(path) as f:
        for n, line, size in read_lines(f.stream, limit):
            if size:
                skipped.append(f"{path}:{n}: {size_reason(size, limit)}")
                continue
            try:
                lines.append(line.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n"))
            except UnicodeDecodeError as exc:
                skipped.append(f"{path}:{n}: {utf8_reason(exc)}")
    return _chunk("\n".join(lines), doc_chars), skipped


def split_documents(docs: Sequence[str], val_fraction: float, max_docs: int | None = None,
                    data_seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle (``data_seed``), keep the first ``max_docs``, and split off ``val_fraction`` (at least one) for validation."""
    docs = list(docs)
    random.Random(data_seed).shuffle(docs)
    if max_docs:
        docs = docs[:max_docs]
    n_val = max(1, round(val_fraction * len(docs)))
    if len(docs) - n_val < 2:
        raise ValueError(f"too few documents ({len(docs)}) for a training and a validation split")
    return docs[n_val:], docs[:n_val]


def read_real(spec: Any) -> RealData:
    """The real documents a :class:`~gristmill.experiments.collapse.LoopSpec` names, split."""
    docs, skipped = load_documents(spec.data, spec.doc_chars)
    train, val = split_documents(docs, spec.val_fraction, spec.max_docs, spec.data_seed)
    return RealData(train, val, skipped)
