"""Word-list matching shared by ``toxicity.score`` and ``bias.audit``: tokens, phrases, segments.

A text is cut into tokens (runs of letters and digits, and single other non-space
characters), and a :class:`PhraseMatcher` finds listed phrases as whole token sequences,
longest first, left to right, without overlaps. A phrase written with an upper-case
letter matches only in that case (``Miss``, not ``miss``); an all-lower-case phrase matches
any case. A phrase may end in a placeholder (``black {person}``) naming a set of words
one of which must follow; the following word is required but not part of the match, so
it can still match on its own (``woman`` in "a Black woman").

:func:`segments` cuts a text into sentence-like pieces for classifiers and co-occurrence
counts: at ``. ! ?`` followed by white space, and at blank lines; single line breaks are
spaces (hard-wrapped prose), and a piece longer than ``max_words`` is cut into pieces of
``max_words`` words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Match", "PhraseMatcher", "data_lines", "segments", "tokenize"]

_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}$")
_SEGMENT = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n[ \t\r\f\v]*\n\s*")


def tokenize(text: str) -> list[str]:
    """Runs of letters/digits and single other non-space characters: ``"g-spot!"`` -> g - spot !"""
    return _TOKEN.findall(text)


def segments(text: str, max_words: int = 64) -> list[str]:
    """Sentence-like pieces of ``text`` with white space collapsed; empty pieces left out."""
    out = []
    for piece in _SEGMENT.split(text):
        words = piece.split()
        for i in range(0, len(words), max_words):
            out.append(" ".join(words[i:i + max_words]))
    return out


@dataclass(frozen=True)
class Match:
    """A phrase found at tokens ``start:end`` with the label it was listed under."""

    start: int
    end: int
    label: Any
    text: str


@dataclass
class _Entry:
    tokens: tuple[str, ...]
    label: Any
    follow: frozenset[str] | None


@dataclass
class PhraseMatcher:
    """Finds listed phrases in token sequences (see the module docstring for the rules)."""

    placeholders: Mapping[str, Iterable[str]] = field(default_factory=dict)
    _by_first_ci: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)
    _by_first_cs: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)
    _sets: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._sets = {k: frozenset(w.lower() for w in v) for k, v in self.placeholders.items()}

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_first_ci.values()) + sum(len(v) for v in self._by_first_cs.values())

    def add(self, phrase: str, label: Any) -> None:
        """List ``phrase`` under ``label``; a later listing of the same phrase replaces the label."""
        phrase = phrase.strip()
        follow = None
        m = _PLACEHOLDER.search(phrase)
        if m:
            if m.group(1) not in self._sets:
                raise ValueError(f"phrase {phrase!r}: unknown placeholder {{{m.group(1)}}}; "
                                 f"known: {', '.join(sorted(self._sets)) or 'none'}")
            follow = self._sets[m.group(1)]
            phrase = phrase[:m.start()].strip()
        tokens = tuple(tokenize(phrase))
        if not tokens:
            raise ValueError(f"empty phrase {phrase!r}")
        cased = any(c.isupper() for c in phrase)
        if not cased:
            tokens = tuple(t.lower() for t in tokens)
        table = self._by_first_cs if cased else self._by_first_ci
        entries = table.setdefault(tokens[0], [])
        entries[:] = [e for e in entries if (e.tokens, e.follow) != (tokens, follow)]
        entries.append(_Entry(tokens, label, follow))
        entries.sort(key=lambda e: -len(e.tokens))

    def find(self, tokens: list[str]) -> list[Match]:
        """Non-overlapping matches in ``tokens``, longest first at each position, left to right."""
        lower = [t.lower() for t in tokens]
        out: list[Match] = []
        n = len(tokens)
        ci, cs = self._by_first_ci, self._by_first_cs
        starts = [i for i, (t, low) in enumerate(zip(tokens, lower)) if low in ci or t in cs]
        end = 0
        for i in starts:
            if i < end:
                continue
            best = None
            for entries, seq in ((cs.get(tokens[i]), tokens), (ci.get(lower[i]), lower)):
                for e in entries or ():
                    k = len(e.tokens)
                    if best is not None and k <= best[0]:
                        break
                    if tuple(seq[i:i + k]) != e.tokens:
                        continue
                    if e.follow is not None and (i + k >= n or lower[i + k] not in e.follow):
                        continue
                    best = (k, e)
                    break
            if best is not None:
                k, e = best
                out.append(Match(i, i + k, e.label, " ".join(tokens[i:i + k])))
                end = i + k
        return out


def data_lines(name: str | None = None, path: str | Path | None = None) -> list[list[str]]:
    """Tab-separated fields of each non-comment, non-blank line of a word-list file.

    ``path`` wins; otherwise ``name`` is a file under the package's ``data/bias/`` folder.
    """
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("gristmill").joinpath("data", "bias", str(name)).read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rows.append([f.strip() for f in line.split("\t")])
    return rows
