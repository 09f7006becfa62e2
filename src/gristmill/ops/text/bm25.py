"""BM25 relevance of documents to a few example texts, with corpus statistics gathered over shards.

Tokens and the BM25 formula are bm25s's (``bm25s.tokenize``: lower case, ``\\b\\w\\w+\\b``, its
English stop words; ``bm25s.scoring``'s idf and term-frequency functions of the chosen variant,
Lucene by default). bm25s's own index (``BM25.index``) holds the statistics of the corpus it was
built over (document frequencies, mean length), so an index per shard would score a row
differently by the shard it lands in, and one index over the whole corpus needs every document's
tokens in one process. So each shard gives only what the formula needs of it: every scored
document's length and its counts of the examples' terms (:func:`shard_counts`); :func:`corpus_stats`
adds them up and :func:`shard_scores` applies the formula with the statistics of all shards together. The result equals a bm25s
index over the whole corpus queried with each example (``tests/ops/select`` checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CorpusStats", "QueryTerms", "ShardCounts", "as_counts", "bm25_scores", "corpus_stats", "query_terms",
           "shard_counts", "shard_scores", "tokenize"]


def tokenize(texts: Sequence[str], stopwords: bool) -> list[list[str]]:
    """bm25s's tokens of each text (lower-cased words of 2+ word characters, English stop words out)."""
    import bm25s

    if not texts:
        return []
    return bm25s.tokenize(list(texts), stopwords="en" if stopwords else None, return_ids=False,
                          show_progress=False)


@dataclass(frozen=True)
class QueryTerms:
    """The examples' vocabulary (sorted) and, per example, how often each term occurs in it."""

    vocab: list[str]
    weights: np.ndarray  # (terms, examples) float64: term counts of each example (a query's repeats count)

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}


def query_terms(examples: Sequence[str], stopwords: bool) -> QueryTerms:
    """The :class:`QueryTerms` of ``examples`` (each example is one BM25 query)."""
    tokens = tokenize(examples, stopwords)
    vocab = sorted({t for doc in tokens for t in doc})
    index = {t: i for i, t in enumerate(vocab)}
    weights = np.zeros((len(vocab), len(examples)), np.float64)
    for e, doc in enumerate(tokens):
        for t in doc:
            weights[index[t], e] += 1.0
    return QueryTerms(vocab, weights)


@dataclass
class ShardCounts:
    """One shard's share of the BM25 statistics: lengths and example-term counts of its documents."""

    lengths: np.ndarray  # int64 per row: tokens of the document; -1 for a row that is not scored
    doc: np.ndarray  # int32: row of each (row, term) pair
    term: np.ndarray  # int32: index into QueryTerms.vocab
    tf: np.ndarray  # int32: occurrences of the term in the row

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lengths": self.lengths, "doc": self.doc, "term": self.term, "tf": self.tf}


def shard_counts(texts: Sequence[str | None], query: QueryTerms, stopwords: bool) -> ShardCounts:
    """Lengths and example-term counts of ``texts``; a null or whitespace-only text is not scored (-1)."""
    scored = [i for i, t in enumerate(texts) if t is not None and t.strip()]
    lengths = np.full(len(texts), -1, np.int64)
    if not scored:
        empty = np.zeros(0, np.int32)
        return ShardCounts(lengths, empty, empty, empty)
    tokens = tokenize([texts[i] for i in scored], stopwords)
    index = query.index
    keys: list[int] = []
    width = max(len(query.vocab), 1)
    for row, doc in zip(scored, tokens):
        lengths[row] = len(doc)
        keys.extend(row * width + j for j in (index.get(t) for t in doc) if j is not None)
    uniq, tf = np.unique(np.asarray(keys, np.int64), return_counts=True)
    return ShardCounts(lengths, (uniq // width).astype(np.int32), (uniq % width).astype(np.int32),
                       tf.astype(np.int32))


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs of the whole corpus: scored documents, their mean length, each example term's
    document frequency."""

    docs: int
    mean_length: float
    df: np.ndarray  # int64 per QueryTerms.vocab entry


def corpus_stats(shards: Iterable[ShardCounts], terms: int) -> CorpusStats:
    """The :class:`CorpusStats` of ``shards`` (an iterable, so shards can be loaded one at a time)."""
    docs, total, df = 0, 0.0, np.zeros(terms, np.int64)
    for s in shards:
        scored = s.lengths >= 0
        docs += int(scored.sum())
        total += float(s.lengths[scored].sum())
        df += np.bincount(s.term, minlength=terms)
    return CorpusStats(docs, total / docs if docs else 1.0, df)


def shard_scores(s: ShardCounts, query: QueryTerms, stats: CorpusStats, *, k1: float, b: float,
                 variant: str = "lucene", delta: float = 0.5) -> np.ndarray:
    """A ``(rows, examples)`` float64 array: each row's BM25 score for each example as query (NaN for
    rows not scored), with bm25s's idf and term-frequency functions of ``variant`` and ``stats``."""
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer  # pinned: bm25s>=0.3.16,<0.4

    idf_fn, tfc_fn = _select_idf_scorer(variant), _select_tfc_scorer(variant)
    avg, n_docs = stats.mean_length, stats.docs
    idf = np.array([idf_fn(int(d), N=n_docs) if d else 0.0 for d in stats.df], np.float64)
    nonoccurrence = None
    if variant in ("bm25l", "bm25+"):  # these variants score every query term, present or not
        nonoccurrence = idf * tfc_fn(0, avg, avg, k1, b, delta)
    n = len(s.lengths)
    scores = np.zeros((n, query.weights.shape[1]), np.float64)
    if len(s.doc):
        part = idf[s.term] * tfc_fn(s.tf.astype(np.float64), s.lengths[s.doc].astype(np.float64), avg, k1, b, delta)
        if nonoccurrence is not None:
            part = part - nonoccurrence[s.term]
        for e in range(query.weights.shape[1]):
            scores[:, e] = np.bincount(s.doc, weights=part * query.weights[s.term, e], minlength=n)
    if nonoccurrence is not None:
        scores += nonoccurrence @ query.weights
    scores[s.lengths < 0] = np.nan
    return scores


def bm25_scores(shards: Sequence[ShardCounts], query: QueryTerms, *, k1: float, b: float,
                variant: str = "lucene", delta: float = 0.5) -> list[np.ndarray]:
    """:func:`shard_scores` of every shard of ``shards`` with the statistics of them all."""
    stats = corpus_stats(shards, len(query.vocab))
    return [shard_scores(s, query, stats, k1=k1, b=b, variant=variant, delta=delta) for s in shards]


def as_counts(data: Any) -> ShardCounts:
    """A :class:`ShardCounts` back from its :meth:`~ShardCounts.arrays` (e.g. loaded from ``.npz``)."""
    return ShardCounts(np.asarray(data["lengths"]), np.asarray(data["doc"]), np.asarray(data["term"]),
                       np.asarray(data["tf"]))
