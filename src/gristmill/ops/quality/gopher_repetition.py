"""``quality.gopher_repetition``: the MassiveText (Gopher) repetition rules, as datatrove implements them."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.scoring import Rule
from gristmill.ops.text.words import ConcatHashes, Lexicon, lexicon
from gristmill.records import column_list

__all__ = ["GopherRepetition", "score_text"]

NS = "quality.rep."
TOP_N_GRAMS = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_N_GRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


class GopherRepetition(Filter):
    """Gopher repetition rules: duplicate lines and paragraphs, top n-grams, duplicated n-grams.

    Rae et al. 2021 (MassiveText, table A1), with the definitions and defaults of
    datatrove's ``GopherRepetitionFilter`` (0.10.1). Paragraphs are the text (stripped)
    split on two or more newlines, lines the text split on newlines; an element is a
    duplicate when an equal one came before it. Words are spaCy's English tokens, as in
    ``quality.gopher``. All character fractions are over the characters of the whole
    text. Scores (``quality.rep.*``), computed for every row:

    * ``dup_para_frac`` / ``dup_para_char_frac``: duplicate paragraphs, by count (of all
      paragraphs) and by characters; at most 0.3 and 0.2.
    * ``dup_line_frac`` / ``dup_line_char_frac``: the same for lines; 0.3 and 0.2.
    * ``top_<n>gram`` for n = 2, 3, 4: characters of the most frequent n-gram (words
      joined by spaces; the first one seen among equally frequent ones) times its count;
      at most 0.20, 0.18, 0.16. Null when the text has fewer than n words.
    * ``dup_<n>gram`` for n = 5..10: characters of duplicated n-grams (words joined
      without spaces), scanning left to right, counting each repeat once and skipping the
      n-grams overlapping it; at most 0.15, 0.14, 0.13, 0.12, 0.11, 0.10.
    * ``n_chars``: characters of the text; an empty text is dropped (``empty: 0 < 1``).

    Rules are checked in datatrove's order (paragraphs, lines, top n-grams, duplicated
    n-grams); the first failure is the reason, e.g. ``dup_line_frac: 0.41 > 0.3``.
    """

    name = "quality.gopher_repetition"
    version = "1"
    idempotent: ClassVar[bool] = True
    example_params: ClassVar[dict[str, Any]] = {"top_n_grams": {2: 0.5, 3: 0.5, 4: 0.5}}

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        dup_para_frac: float | None = Field(0.3, ge=0, description="Largest fraction of paragraphs that repeat "
                                            "an earlier one (None: no bound).")
        dup_para_char_frac: float | None = Field(0.2, ge=0, description="Largest fraction of characters in "
                                                 "repeated paragraphs (None: no bound).")
        dup_line_frac: float | None = Field(0.3, ge=0, description="Largest fraction of lines that repeat an "
                                            "earlier one (None: no bound).")
        dup_line_char_frac: float | None = Field(0.2, ge=0, description="Largest fraction of characters in "
                                                 "repeated lines (None: no bound).")
        top_n_grams: dict[int, float | None] = Field(
            default_factory=lambda: dict(TOP_N_GRAMS),
            description="n -> largest character fraction of the most frequent n-gram (None: scored, no bound).")
        dup_n_grams: dict[int, float | None] = Field(
            default_factory=lambda: dict(DUP_N_GRAMS),
            description="n -> largest character fraction of duplicated n-grams (None: scored, no bound).")

        @field_validator("top_n_grams", "dup_n_grams")
        @classmethod
        def _positive_n(cls, v: dict[int, float | None]) -> dict[int, float | None]:
            if any(n < 1 for n in v):
                raise ValueError(f"n-gram sizes must be >= 1, got {sorted(v)}")
            return dict(sorted(v.items()))

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        p = self.params
        return ([NS + c for c in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")]
                + [f"{NS}top_{n}gram" for n in p.top_n_grams] + [f"{NS}dup_{n}gram" for n in p.dup_n_grams]
                + [NS + "n_chars"])

    def rules(self) -> list[Rule]:
        p = self.params
        rules = [Rule("empty", NS + "n_chars", min=1)]
        for name in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
            rules.append(Rule(name, NS + name, max=getattr(p, name)))
        rules += [Rule(f"top_{n}gram", f"{NS}top_{n}gram", max=f) for n, f in p.top_n_grams.items()]
        rules += [Rule(f"dup_{n}gram", f"{NS}dup_{n}gram", max=f) for n, f in p.dup_n_grams.items()]
        return rules

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        lex = lexicon()
        p = self.params
        top, dup = tuple(p.top_n_grams), tuple(p.dup_n_grams)
        rows = [score_text(text or "", lex, top, dup) for text in column_list(batch, p.column)]
        cols = self.writes()
        last = len(cols) - 1
        return {c: pa.array([r[k] for r in rows], pa.int64() if k == last else pa.float64())
                for k, c in enumerate(cols)}


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """How many of ``parts`` equal an earlier one, and their characters (datatrove's find_duplicates)."""
    seen: set[str] = set()
    n = chars = 0
    for s in parts:
        if s in seen:
            n += 1
            chars += len(s)
        else:
            seen.add(s)
    return n, chars


def score_text(text: str, lex: Lexicon, top_n: tuple[int, ...] = tuple(TOP_N_GRAMS),
               dup_n: tuple[int, ...] = tuple(DUP_N_GRAMS)) -> tuple[Any, ...]:
    """The repetition scores of one text, in :meth:`GopherRepetition.writes` order."""
    size = len(text)
    if not size:
        return (None,) * (4 + len(top_n) + len(dup_n)) + (0,)
    paragraphs = _PARAGRAPHS.split(text.strip())
    n_para, para_chars = _duplicates(paragraphs)
    lines = _LINES.split(text)
    n_lines, line_chars = _duplicates(lines)
    out: list[Any] = [n_para / len(paragraphs), para_chars / size, n_lines / len(lines), line_chars / size]

    ids = lex.encode(text)
    n_words = len(ids)
    lengths = lex.length[ids]
    fitting = tuple(n for n in top_n if n <= n_words)
    top = _top_ngram_chars(ids, lengths, fitting) if fitting else {}
    out += [top[n] / size if n in top else None for n in top_n]
    if n_words > min(dup_n, default=n_words):
        grams = ConcatHashes(lex.hash[ids], lengths)
        words = ids.tolist()
        out += [_dup_ngram_chars(words, grams, n, lex.strings) / size for n in dup_n]
    else:
        out += [0.0] * len(dup_n)
    out.append(size)
    return tuple(out)


def _top_ngram_chars(ids: np.ndarray, lengths: np.ndarray, ns: tuple[int, ...]) -> dict[int, int]:
    """For each n in ``ns``: characters of the most frequent n-gram (words joined by spaces)
    times its count, ties going to the n-gram seen first (datatrove's find_top_duplicate)."""
    out: dict[int, int] = {}
    base = np.int64(int(ids.max()) + 1)
    dense = ids  # n-gram numbers, built one word at a time: key(k) = dense(k-1) * base + k-th word
    for k in range(1, max(ns) + 1):
        if k > 1:
            dense = dense[:-1] * base + ids[k - 1:]
        if k in ns or k > 1:
            _, first, inverse, counts = np.unique(dense, return_index=True, return_inverse=True, return_counts=True)
            dense = inverse.astype(np.int64)
            if k in ns:
                top = counts.max()
                i = int(first[counts == top].min())
                out[k] = (int(lengths[i:i + k].sum()) + k - 1) * int(top)
    return out


def _dup_ngram_chars(words: list[int], grams: ConcatHashes, n: int, strings: list[str]) -> int:
    """Characters of repeated n-grams (words joined without spaces), datatrove's find_all_duplicate.

    Scanning left to right, an n-gram equal to one recorded earlier adds its characters
    and the scan jumps n words ahead; otherwise it is recorded. Only n-grams whose hash
    occurs twice can repeat, so the scan visits those alone and compares real strings.
    """
    h, chars = grams.ngrams(n)
    if len(h) < 2:
        return 0
    s = np.sort(h)
    repeated = s[1:][s[1:] == s[:-1]]
    if not len(repeated):
        return 0
    seen: set[str] = set()
    total = 0
    next_free = 0
    for i in np.flatnonzero(np.isin(h, repeated)).tolist():
        if i < next_free:
            continue
        gram = "".join([strings[w] for w in words[i:i + n]])
        if gram in seen:
            total += int(chars[i])
            next_free = i + n
        else:
            seen.add(gram)
    return total
