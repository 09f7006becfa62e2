"""The bad-word list C4 used (LDNOOBW English, CC BY 4.0, shipped in ``gristmill/data``), read once.

Shared by ``quality.c4`` (its bad-words rule) and ``toxicity.score`` (its lexicon).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BAD_WORDS_FILE = "ldnoobw_en.txt"


def bad_words(path: str | None = None) -> list[str]:
    """The bad-word list at ``path`` (default: the shipped LDNOOBW English list), lower-cased."""
    if path is None:
        text = resources.files("gristmill").joinpath("data", BAD_WORDS_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    words = (line.strip().lower() for line in text.splitlines())
    return sorted({w for w in words if w and not w.startswith("#")})
