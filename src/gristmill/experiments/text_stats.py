"""Statistics of a set of generated documents, measured against real text.

Words are lower-cased runs of letters and digits, with inner apostrophes kept
(``"Thou'rt"`` -> ``thou'rt``); punctuation is dropped. N-grams never cross a document
boundary.

* :func:`distinct_n`: distinct n-grams / all n-grams over the whole set (Li et al. 2016).
* :func:`tail_coverage`: the share of the real data's *rare* word n-grams — those that
  occur at least ``min_count`` and at most ``max_count`` times in the real training text
  (default: word 2-grams seen 1 to 3 times) — that occur at least once in the generated
  text. Model collapse loses the tails first (Shumailov et al. 2024), so this falls before
  perplexity moves. It depends on how much text is generated: compare sets of equal size.
* :func:`mean_frequency_rank`: the mean, over the generated word tokens, of each word's
  rank in the real training text's word frequencies (1: the most frequent word; ties
  ranked by first occurrence); a word the real text never had gets rank ``V + 1`` with
  ``V`` the real vocabulary size. Falls when a model keeps to frequent words.
* :func:`length_stats`: words per document, mean and quantiles.

Intervals over seeds are :func:`gristmill.stats.t_interval`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gristmill.evaluate.diversity import ngrams

__all__ = ["words", "ngrams", "ngram_counts", "distinct_n", "rare_ngrams", "tail_coverage",
           "FrequencyRanks", "mean_frequency_rank", "length_stats"]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (punctuation dropped; unlike :func:`gristmill.evaluate.diversity.words`,
    which splits on whitespace only, so ``"king,"`` and ``"king"`` count as one word here)."""
    return _WORD.findall(text.lower())


def ngram_counts(texts: Iterable[str], n: int) -> Counter:
    """Word n-gram counts over documents (n-grams do not cross documents)."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(ngrams(words(t), n))
    return counts


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct word n-grams / all word n-grams over ``texts``; ``None`` when there are none."""
    counts = ngram_counts(texts, n)
    total = sum(counts.values())
    return len(counts) / total if total else None


def rare_ngrams(real_texts: Iterable[str], n: int = 2, min_count: int = 1, max_count: int = 3) -> set[tuple[str, ...]]:
    """Word n-grams that occur ``min_count``..``max_count`` times (inclusive) in ``real_texts``."""
    return {g for g, c in ngram_counts(real_texts, n).items() if min_count <= c <= max_count}


def tail_coverage(rare: set[tuple[str, ...]], generated: Iterable[str]) -> float | None:
    """Share of the ``rare`` n-grams that occur in ``generated`` (n taken from the n-grams);
    ``None`` when ``rare`` is empty."""
    if not rare:
        return None
    n = len(next(iter(rare)))
    seen = set(ngram_counts(generated, n))
    return len(rare & seen) / len(rare)


@dataclass(frozen=True)
class FrequencyRanks:
    """Word -> frequency rank in the real text (1 = most frequent); unseen words rank ``size + 1``."""

    ranks: dict[str, int]

    @classmethod
    def of(cls, real_texts: Iterable[str]) -> FrequencyRanks:
        counts: Counter = Counter()
        for t in real_texts:
            counts.update(words(t))
        # Counter.most_common keeps first-insertion order among equal counts
        return cls({w: i + 1 for i, (w, _) in enumerate(counts.most_common())})

    @property
    def size(self) -> int:
        return len(self.ranks)

    def rank(self, word: str) -> int:
        return self.ranks.get(word, self.size + 1)


def mean_frequency_rank(ranks: FrequencyRanks, generated: Iterable[str]) -> dict[str, float | None]:
    """Mean and median frequency rank of the generated word tokens, and the share of them the
    real text never had (``oov_share``); ``None`` values when nothing was generated."""
    rs = [ranks.rank(w) for t in generated for w in words(t)]
    if not rs:
        return {"mean_rank": None, "median_rank": None, "oov_share": None}
    rs.sort()
    oov = sum(r > ranks.size for r in rs)
    return {"mean_rank": sum(rs) / len(rs), "median_rank": float(_quantile(rs, 0.5)), "oov_share": oov / len(rs)}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def length_stats(texts: Iterable[str]) -> dict[str, float | int | None]:
    """Words per document: count of documents, mean, quantiles 10/25/50/75/90, share of empty documents."""
    lengths = sorted(len(words(t)) for t in texts)
    if not lengths:
        return {"docs": 0, "mean": None, "p10": None, "p25": None, "p50": None, "p75": None, "p90": None,
                "empty_share": None}
    out: dict[str, float | int | None] = {"docs": len(lengths), "mean": sum(lengths) / len(lengths)}
    for q in (10, 25, 50, 75, 90):
        out[f"p{q}"] = _quantile(lengths, q / 100)
    out["empty_share"] = sum(x == 0 for x in lengths) / len(lengths)
    return out

