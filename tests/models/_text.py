"""Real English text for model tests: paragraphs of Project Gutenberg books in ../shared/data."""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path

GUTENBERG = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gutenberg_sample.jsonl.gz"


@cache
def _book(index: int) -> str:
    with gzip.open(GUTENBERG, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == index:
                return json.loads(line)["text"]
    raise IndexError(index)


def paragraphs(book: int, n: int, min_words: int = 60, max_words: int = 160) -> list[str]:
    """``n`` prose paragraphs of ``book`` (its position in the sample) with min..max words, in book order,
    skipping the first tenth (Project Gutenberg header, contents)."""
    text = _book(book).replace("\r\n", "\n")
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text[len(text) // 10:])]
    picked = [p for p in paras if min_words <= len(p.split()) <= max_words]
    if len(picked) < n:
        raise ValueError(f"book {book} has only {len(picked)} paragraphs of {min_words}-{max_words} words")
    return picked[:n]
