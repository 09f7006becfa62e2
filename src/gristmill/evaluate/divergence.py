"""How far apart two datasets' n-gram distributions are: KL both ways and Jensen-Shannon.

Both datasets are tokenized like distinct-n (:func:`gristmill.evaluate.diversity.words`:
lowercased whitespace tokens; n-grams do not cross texts), and each becomes a
distribution over the union of their n-grams. All figures are in **bits** (log base 2).

* **Jensen-Shannon divergence** ``JS(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)``, ``M = ½(P + Q)``, on
  the raw relative frequencies: no smoothing is needed (``M`` is positive wherever ``P`` or
  ``Q`` is). Symmetric, 0 for identical distributions, 1 for disjoint ones.
* **KL(P‖Q)** is infinite as soon as ``P`` has an n-gram ``Q`` never saw, which is almost
  always the case for text, so both distributions are additively smoothed over the union
  vocabulary ``V``: ``p_i = (c_i + α) / (N + α|V|)``. The default ``α = 0.01`` keeps
  observed frequencies almost unchanged (Laplace's ``α = 1`` would give every unseen n-gram
  the weight of a real occurrence, which in a corpus of a few thousand words flattens both
  distributions towards uniform) while charging an n-gram missing from ``Q`` about
  ``log2(N_Q / α)`` bits per unit of ``P``'s mass. KL therefore depends on ``α``; the result
  carries it, and :func:`kl_by_alpha` shows how much.

The n-grams that contribute most to each divergence (``p_i log2(p_i / q_i)`` for KL, the
pointwise JS terms) say *what* differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gristmill.evaluate.diversity import ngram_counts

__all__ = ["DEFAULT_ALPHA", "Divergence", "NgramContribution", "divergence", "evaluate_divergence",
           "js_divergence", "kl_by_alpha", "kl_divergence", "smoothed"]

DEFAULT_ALPHA = 0.01


def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``p * log2(p / q)`` elementwise, 0 where ``p`` is 0."""
    out = np.zeros_like(p, dtype=np.float64)
    pos = p > 0
    out[pos] = p[pos] * np.log2(p[pos] / q[pos])
    return out


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) in bits for two probability vectors over the same items (inf where q is 0 and p is not)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if np.any((p > 0) & (q <= 0)):
        return float("inf")
    return float(_xlogy_ratio(p, q).sum())


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0..1) of two probability vectors over the same items."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)
    value = 0.5 * _xlogy_ratio(p, m).sum() + 0.5 * _xlogy_ratio(q, m).sum()
    return float(min(max(value, 0.0), 1.0))  # clip float error at the bounds


def smoothed(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Additively smoothed relative frequencies ``(c + α) / (N + α·len(c))``."""
    c = np.asarray(counts, np.float64)
    return (c + alpha) / (c.sum() + alpha * len(c))


@dataclass
class NgramContribution:
    """One n-gram's counts in both datasets and its terms of each divergence (bits)."""

    ngram: str
    count_a: int
    count_b: int
    kl_ab: float
    kl_ba: float
    js: float


@dataclass
class Divergence:
    """The divergences of one n-gram order between datasets A and B (bits)."""

    n: int
    alpha: float
    kl_ab: float
    kl_ba: float
    js: float
    tokens_a: int          # n-gram occurrences in A
    tokens_b: int
    types_a: int           # distinct n-grams in A
    types_b: int
    shared_types: int
    top: list[NgramContribution] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "top"}


Ngrams = Counter[tuple[str, ...]]


def _vectors(ca: Ngrams, cb: Ngrams) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    vocab = list(ca.keys() | cb.keys())
    vocab.sort()
    a = np.array([ca.get(g, 0) for g in vocab], dtype=np.float64)
    b = np.array([cb.get(g, 0) for g in vocab], dtype=np.float64)
    return vocab, a, b


def divergence(counts_a: Counter[tuple[str, ...]], counts_b: Counter[tuple[str, ...]], n: int,
               alpha: float = DEFAULT_ALPHA, top: int = 20) -> Divergence:
    """KL both ways (smoothed with ``alpha``) and JS (unsmoothed) between two n-gram count tables,
    with the ``top`` n-grams contributing most to JS. Raises ``ValueError`` when either is empty."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, not {alpha}")
    if not counts_a or not counts_b:
        raise ValueError(f"no {n}-grams in {'the first' if not counts_a else 'the second'} dataset")
    vocab, a, b = _vectors(counts_a, counts_b)
    pa, pb = a / a.sum(), b / b.sum()
    sa, sb = smoothed(a, alpha), smoothed(b, alpha)
    kl_ab_terms, kl_ba_terms = _xlogy_ratio(sa, sb), _xlogy_ratio(sb, sa)
    m = 0.5 * (pa + pb)
    js_terms = 0.5 * _xlogy_ratio(pa, m) + 0.5 * _xlogy_ratio(pb, m)
    order = np.argsort(-js_terms, kind="stable")[:top]
    contributions = [NgramContribution(" ".join(vocab[i]), int(a[i]), int(b[i]), float(kl_ab_terms[i]),
                                       float(kl_ba_terms[i]), float(js_terms[i])) for i in order]
    return Divergence(n=n, alpha=alpha, kl_ab=float(kl_ab_terms.sum()), kl_ba=float(kl_ba_terms.sum()),
                      js=float(min(max(js_terms.sum(), 0.0), 1.0)),
                      tokens_a=int(a.sum()), tokens_b=int(b.sum()), types_a=int((a > 0).sum()),
                      types_b=int((b > 0).sum()), shared_types=int(((a > 0) & (b > 0)).sum()), top=contributions)


def kl_by_alpha(counts_a: Counter[tuple[str, ...]], counts_b: Counter[tuple[str, ...]],
                alphas: Sequence[float] = (1.0, 0.1, 0.01, 0.001, 1e-4)) -> list[tuple[float, float, float]]:
    """``(α, KL(A‖B), KL(B‖A))`` for each ``α``: how much the smoothing decides the KL figures."""
    _, a, b = _vectors(counts_a, counts_b)
    rows = []
    for alpha in alphas:
        sa, sb = smoothed(a, alpha), smoothed(b, alpha)
        rows.append((alpha, float(_xlogy_ratio(sa, sb).sum()), float(_xlogy_ratio(sb, sa).sum())))
    return rows


def evaluate_divergence(texts_a: Sequence[str], texts_b: Sequence[str], orders: Sequence[int] = (1, 2),
                        alpha: float = DEFAULT_ALPHA, top: int = 20) -> list[Divergence]:
    """:func:`divergence` of each n-gram order between two lists of texts."""
    return [divergence(ngram_counts(texts_a, n), ngram_counts(texts_b, n), n, alpha, top) for n in orders]
