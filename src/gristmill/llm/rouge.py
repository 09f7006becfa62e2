"""Fast ROUGE-L F1 between short texts, bit-identical to ``rouge_score`` (no stemmer).

ROUGE-L F1 of token sequences ``a`` and ``b`` is ``2·LCS / (|a| + |b|)``, which is exactly
rapidfuzz's normalized Indel similarity of the same sequences. Each distinct token is
mapped to one character, so a text becomes a short string and rapidfuzz's bit-parallel
LCS kernel (``process.cdist``) compares one text against tens of thousands per
millisecond. The integer LCS comes from that kernel and the F1 is then computed with
``rouge_score``'s own float formula (``2·P·R / (P + R)``), so a decision at a threshold
such as Self-Instruct's ``> 0.7`` is the same as ``rouge_score`` would make, bit for bit.

Tokenization is ``rouge_score``'s default: lowercase, every run of characters outside
``[a-z0-9]`` becomes a space, split. A text with no tokens scores 0 against everything
(as in ``rouge_score``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Indel, LCSseq

__all__ = ["RougeLIndex", "Verdict", "f1_from_lcs", "mean_pairwise_rouge_l", "rouge_l_f1", "tokenize"]

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_FIRST_CHAR = 0x100
_SURROGATES = (0xD800, 0xE000)
_NEAR = 1e-6  # float32 Indel similarity is within ~1e-7 of the exact F1


def tokenize(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer without stemming: lowercase, non-[a-z0-9] → space, split."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def f1_from_lcs(lcs: np.ndarray | int, len_a: np.ndarray | int, len_b: np.ndarray | int) -> np.ndarray:
    """ROUGE-L F1 from LCS lengths, with ``rouge_score``'s float operations (0 where a side is empty)."""
    lcs = np.asarray(lcs, dtype=np.float64)
    len_a = np.asarray(len_a, dtype=np.float64)
    len_b = np.asarray(len_b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / len_b
        recall = lcs / len_a
        f1 = 2 * precision * recall / (precision + recall)
    return np.where((lcs > 0) & (len_a > 0) & (len_b > 0), f1, 0.0)


def _f1(lcs: int, len_a: int, len_b: int) -> float:
    """Scalar :func:`f1_from_lcs` (the same float operations)."""
    if lcs == 0:
        return 0.0
    precision = lcs / len_b
    recall = lcs / len_a
    return 2 * precision * recall / (precision + recall)


def _exact_max(s: str, pool: Sequence[str], near: Iterable[int]) -> tuple[float, int]:
    """The exact highest F1 of ``s`` among ``pool[j]`` for ``j`` in ``near``, and that ``j`` (first on ties)."""
    best, where = -1.0, -1
    for j in near:
        f = _f1(LCSseq.similarity(s, pool[j]), len(s), len(pool[j]))
        if f > best:
            best, where = f, int(j)
    return max(best, 0.0), where


class _Encoder:
    """Maps each distinct token to one character, so a token sequence is a short string."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def _char(self, token: str) -> str:
        idx = self.vocab.get(token)
        if idx is None:
            idx = self.vocab[token] = len(self.vocab)
        code = _FIRST_CHAR + idx
        if code >= _SURROGATES[0]:
            code += _SURROGATES[1] - _SURROGATES[0]
        if code > 0x10FFFF:
            raise OverflowError("more distinct tokens than Unicode code points")
        return chr(code)

    def encode(self, text: str) -> str:
        return "".join(self._char(t) for t in tokenize(text))


def rouge_l_f1(a: str, b: str) -> float:
    """ROUGE-L F1 of two texts, equal to ``RougeScorer(['rougeL']).score(a, b)['rougeL'].fmeasure``."""
    enc = _Encoder()
    sa, sb = enc.encode(a), enc.encode(b)
    return float(f1_from_lcs(LCSseq.similarity(sa, sb), len(sa), len(sb)))


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one candidate: kept or not, and its closest text in the pool."""

    kept: bool
    max_score: float      # highest ROUGE-L F1 against the pool (0.0 against an empty pool)
    most_similar: int     # index of that text in the pool (-1 for an empty pool)
    mean_score: float     # mean F1 against the pool (Self-Instruct's avg_similarity_score)


class RougeLIndex:
    """A growing pool of texts to compare new texts against with ROUGE-L F1.

    ``scores`` / ``max_scores`` compare without adding; ``gate`` is Self-Instruct's
    incremental filter: each candidate, in order, is kept only when its F1 against every
    text in the pool (and every candidate kept before it) is ``<= threshold``, and a kept
    candidate joins the pool. ``workers`` is passed to rapidfuzz (``-1``: all cores).
    """

    def __init__(self, texts: Iterable[str] = (), *, workers: int = 1, block: int = 256) -> None:
        self._enc = _Encoder()
        self._strings: list[str] = []
        self._lengths = np.zeros(0, dtype=np.int64)
        self.texts: list[str] = []
        self.workers = workers
        self.block = block
        self.add(texts)

    def __len__(self) -> int:
        return len(self._strings)

    def add(self, texts: Iterable[str]) -> None:
        """Append ``texts`` to the pool."""
        self._add_encoded([(t, self._enc.encode(t)) for t in texts])

    def _add_encoded(self, items: Sequence[tuple[str, str]]) -> None:
        if not items:
            return
        self.texts.extend(t for t, _ in items)
        self._strings.extend(s for _, s in items)
        self._lengths = np.concatenate([self._lengths, np.array([len(s) for _, s in items], dtype=np.int64)])

    def _f1_matrix(self, queries: Sequence[str], qlens: np.ndarray) -> np.ndarray:
        lcs = process.cdist(queries, self._strings, scorer=LCSseq.similarity, dtype=np.int32, workers=self.workers)
        return f1_from_lcs(lcs, qlens[:, None], self._lengths[None, :])

    def _best(self, strings: Sequence[str], lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact max F1, its pool index and the mean F1 of each string against the whole pool.

        One float32 Indel-similarity matrix finds the near-maximal entries of each row;
        only those are recomputed exactly from integer LCS (float arithmetic on the full
        matrix would cost more than the LCS kernel itself). The mean is float32-precise.
        """
        n = len(strings)
        best, where, mean = np.zeros(n), np.full(n, -1, dtype=np.int64), np.zeros(n)
        if not self._strings or n == 0:
            return best, where, mean
        sim = process.cdist(strings, self._strings, scorer=Indel.normalized_similarity, dtype=np.float32,
                            workers=self.workers)
        empty_pool = self._lengths == 0
        if empty_pool.any():  # Indel calls two empty strings identical; ROUGE scores them 0
            sim[:, empty_pool] = 0.0
        row_max = sim.max(axis=1)
        mean[:] = sim.sum(axis=1, dtype=np.float64) / len(self._strings)
        for i, s in enumerate(strings):
            if lens[i] == 0:
                best[i], where[i], mean[i] = 0.0, 0, 0.0
                continue
            best[i], where[i] = _exact_max(s, self._strings, np.flatnonzero(sim[i] >= row_max[i] - _NEAR))
        return best, where, mean

    def scores(self, text: str) -> np.ndarray:
        """F1 of ``text`` against every text in the pool, in pool order."""
        s = self._enc.encode(text)
        if not self._strings:
            return np.zeros(0)
        return self._f1_matrix([s], np.array([len(s)]))[0]

    def max_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """For each text: its highest F1 against the pool and the index of that pool text (-1 if empty)."""
        best = np.zeros(len(texts))
        where = np.full(len(texts), -1, dtype=np.int64)
        for start in range(0, len(texts), self.block):
            chunk = [self._enc.encode(t) for t in texts[start:start + self.block]]
            b, w, _ = self._best(chunk, np.array([len(s) for s in chunk], dtype=np.int64))
            best[start:start + len(chunk)], where[start:start + len(chunk)] = b, w
        return best, where

    def gate(self, candidates: Sequence[str], threshold: float = 0.7) -> list[Verdict]:
        """Self-Instruct's filter: keep a candidate iff its max F1 against the growing pool is ``<= threshold``."""
        verdicts: list[Verdict] = []
        for start in range(0, len(candidates), self.block):
            texts = list(candidates[start:start + self.block])
            strings = [self._enc.encode(t) for t in texts]
            lens = np.array([len(s) for s in strings], dtype=np.int64)
            n_pool = len(self._strings)
            best, where, mean = self._best(strings, lens)
            total = mean * n_pool
            # each candidate is also compared with the candidates of its block kept before it
            inner = process.cdist(strings, strings, scorer=Indel.normalized_similarity, dtype=np.float32)
            kept_here: list[int] = []
            for i, s in enumerate(strings):
                b, w, tot, n = float(best[i]), int(where[i]), float(total[i]), n_pool + len(kept_here)
                if kept_here and lens[i] > 0:
                    row = inner[i, kept_here] * (lens[kept_here] > 0)
                    near = np.flatnonzero(row >= row.max() - _NEAR)
                    f, k = _exact_max(s, [strings[j] for j in kept_here], near)
                    if f > b:
                        b, w = f, n_pool + k
                    tot += float(row.sum())
                kept = b <= threshold
                verdicts.append(Verdict(kept, b, w, tot / n if n else 0.0))
                if kept:
                    kept_here.append(i)
            self._add_encoded([(texts[j], strings[j]) for j in kept_here])
        return verdicts


def mean_pairwise_rouge_l(texts: Sequence[str], *, max_texts: int = 2000, seed: int = 0, workers: int = 1) -> float:
    """Mean ROUGE-L F1 over all distinct pairs (a diversity measure; lower is more diverse).

    Above ``max_texts`` texts, a seeded random sample of that many is used.
    """
    texts = list(texts)
    if len(texts) > max_texts:
        rng = np.random.default_rng(seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_texts, replace=False))]
    if len(texts) < 2:
        return 0.0
    enc = _Encoder()
    strings = [enc.encode(t) for t in texts]
    lens = np.array([len(s) for s in strings])
    lcs = process.cdist(strings, strings, scorer=LCSseq.similarity, dtype=np.int32, workers=workers)
    f1 = f1_from_lcs(lcs, lens[:, None], lens[None, :])
    n = len(texts)
    return float((f1.sum() - np.trace(f1)) / (n * (n - 1)))
