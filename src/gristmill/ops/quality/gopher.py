"""``quality.gopher``: the MassiveText (Gopher) quality rules, as datatrove implements them."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.scoring import Rule
from gristmill.ops.text.words import Lexicon, lexicon
from gristmill.records import column_list

__all__ = ["GopherQuality", "STOP_WORDS"]

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
NS = "quality.gopher."


class GopherQuality(Filter):
    """Gopher quality rules: word count, mean word length, symbols, bullets, ellipses, letters, stop words.

    The rules of Rae et al. 2021 (MassiveText, appendix A), with the definitions and
    defaults of datatrove's ``GopherQualityFilter`` (0.10.1). Words are the tokens of
    spaCy's English tokenizer, as datatrove's ``split_into_words`` gives them (reproduced
    by :mod:`gristmill.ops.text.words`, without spaCy), punctuation tokens included. A
    *symbol word* consists only of punctuation characters (datatrove's set). Scores, one
    column each (``quality.gopher.*``), computed for every row:

    * ``n_words``: words that are not symbol words. Drops ``n_words: 12 < 50`` and
      ``n_words: 120000 > 100000``.
    * ``mean_word_length``: mean characters per non-symbol word, 3..10.
    * ``hash_word_ratio`` / ``ellipsis_word_ratio``: ``#`` characters / ``...`` and
      ``…`` occurrences per word (all words), each at most 0.1.
    * ``bullet_lines_ratio``: lines (``str.splitlines``) starting with ``•`` or ``-``
      after leading whitespace, at most 0.9.
    * ``ellipsis_lines_ratio``: lines ending with ``...`` or ``…``, at most 0.3.
    * ``alpha_words_ratio``: words with at least one letter, of all words, at least 0.8.
    * ``stop_words``: how many of the distinct stop words (the, be, to, of, and, that,
      have, with; case-sensitive) occur as words, at least 2.

    Rules are checked in datatrove's order; the first failure is the reason. A ratio over
    no words (or no lines) is null and passes its rule; a null text counts as empty.
    """

    name = "quality.gopher"
    version = "1"
    idempotent: ClassVar[bool] = True
    example_params: ClassVar[dict[str, Any]] = {"min_doc_words": 5, "min_stop_words": 1}

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        min_doc_words: int | None = Field(50, ge=0, description="Fewest non-symbol words (None: no bound).")
        max_doc_words: int | None = Field(100_000, ge=0, description="Most non-symbol words (None: no bound).")
        min_avg_word_length: float | None = Field(3, ge=0, description="Smallest mean length of non-symbol words, "
                                                  "in characters (None: no bound).")
        max_avg_word_length: float | None = Field(10, ge=0, description="Largest mean length of non-symbol words "
                                                  "(None: no bound).")
        # Ratio bounds lie in 0..1. The line and alpha ratios are fractions, so a bound above 1
        # is never reached (a max that drops nothing, a min that drops everything). The symbol
        # ratio is a rate per word and can exceed 1 ("a#b#c#d" is one word with three '#'),
        # but a bound above 1 would keep only texts with more '#' or ellipses than words, which
        # no rule means (Gopher uses 0.1): to switch a rule off, set it to None.
        max_symbol_word_ratio: float | None = Field(0.1, ge=0, le=1, description="Most '#' characters, and most "
                                                    "'...'/'…' ellipses, per word, 0..1 (None: no bound).")
        max_bullet_lines_ratio: float | None = Field(0.9, ge=0, le=1, description="Largest fraction of lines "
                                                     "starting with a bullet ('•' or '-'), 0..1 (None: no bound).")
        max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0, le=1, description="Largest fraction of lines "
                                                       "ending with an ellipsis, 0..1 (None: no bound).")
        min_alpha_words_ratio: float | None = Field(0.8, ge=0, le=1, description="Smallest fraction of words with "
                                                    "a letter, 0..1 (datatrove: max_non_alpha_words_ratio) "
                                                    "(None: no bound).")
        min_stop_words: int | None = Field(2, ge=0, description="Fewest distinct stop words present "
                                           "(None: no bound).")
        stop_words: tuple[str, ...] = Field(STOP_WORDS, description="The stop words (case-sensitive).")

        @model_validator(mode="after")
        def _ordered(self) -> GopherQuality.Params:
            # A lower bound above its upper bound would drop every row, each for one of the two reasons.
            for low, high in (("min_doc_words", "max_doc_words"), ("min_avg_word_length", "max_avg_word_length")):
                lo, hi = getattr(self, low), getattr(self, high)
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"{low} ({lo}) is above {high} ({hi}): every row would be dropped")
            return self

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [NS + c for c in ("n_words", "mean_word_length", "hash_word_ratio", "ellipsis_word_ratio",
                                 "bullet_lines_ratio", "ellipsis_lines_ratio", "alpha_words_ratio", "stop_words")]

    def rules(self) -> list[Rule]:
        p = self.params
        return [
            Rule("n_words", NS + "n_words", min=p.min_doc_words, max=p.max_doc_words),
            Rule("mean_word_length", NS + "mean_word_length", min=p.min_avg_word_length, max=p.max_avg_word_length),
            Rule("hash_word_ratio", NS + "hash_word_ratio", max=p.max_symbol_word_ratio),
            Rule("ellipsis_word_ratio", NS + "ellipsis_word_ratio", max=p.max_symbol_word_ratio),
            Rule("bullet_lines_ratio", NS + "bullet_lines_ratio", max=p.max_bullet_lines_ratio),
            Rule("ellipsis_lines_ratio", NS + "ellipsis_lines_ratio", max=p.max_ellipsis_lines_ratio),
            Rule("alpha_words_ratio", NS + "alpha_words_ratio", min=p.min_alpha_words_ratio),
            Rule("stop_words", NS + "stop_words", min=p.min_stop_words),
        ]

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        lex = lexicon()
        stop = self.params.stop_words
        rows = [score_text(text or "", lex, stop) for text in column_list(batch, self.params.column)]
        cols = self.writes()
        return {c: pa.array([r[k] for r in rows], pa.int64() if k in (0, 7) else pa.float64())
                for k, c in enumerate(cols)}


def score_text(text: str, lex: Lexicon, stop_words: tuple[str, ...] = STOP_WORDS) -> tuple[Any, ...]:
    """The eight Gopher quality scores of one text, in :meth:`GopherQuality.writes` order."""
    ids = lex.encode(text)
    n = len(ids)
    flags = lex.flags[ids]
    non_symbol = (flags & Lexicon.NON_SYMBOL) != 0
    n_words = int(np.count_nonzero(non_symbol))
    mean_len = float(lex.length[ids][non_symbol].sum()) / n_words if n_words else None
    if n:
        hash_ratio = text.count("#") / n
        ellipsis_ratio = (text.count("...") + text.count("…")) / n
        alpha_ratio = int(np.count_nonzero(flags & Lexicon.HAS_ALPHA)) / n
    else:
        hash_ratio = ellipsis_ratio = alpha_ratio = None
    lines = text.splitlines()
    if lines:
        bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-"))) / len(lines)
        ellipsis_lines = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / len(lines)
    else:
        bullets = ellipsis_lines = None
    stop_ids = [i for i in map(lex.id_of, set(stop_words)) if i is not None]
    n_stop = int(np.count_nonzero(np.isin(stop_ids, ids))) if stop_ids and n else 0
    return n_words, mean_len, hash_ratio, ellipsis_ratio, bullets, ellipsis_lines, alpha_ratio, n_stop
