"""Hashed n-gram features and importance weights of DSIR (Xie et al. 2023, "Data Selection for
Language Models via Importance Resampling").

A text's features are its word unigrams and bigrams hashed into ``buckets`` counts (words as
:func:`gristmill.ops.text.ngrams.tokenize` gives them: lower case, split on anything but letters,
marks, digits and ``_``). A bag-of-n-grams model is a distribution over buckets: the target model
from the task examples, the raw model from the whole corpus. A document's log importance weight is
``sum_b count_b * (log p_target[b] - log p_raw[b])``, the log-likelihood ratio of its features
under the two models. That sum grows with the document's length, and with a few examples (a
target model that has seen a few thousand n-grams, most buckets empty) nearly every n-gram pulls it
down, so short documents win: on the planted set of ``benchmarks/bench_search.py`` the sum picks
documents of median 360 characters among documents of median 2,750, and finds 0-20% of the
planted task documents. ``select.search`` therefore divides it by the document's n-gram count and
multiplies by the corpus's mean count by default (the weight a document of average length with the
same n-gram mix would get), which finds 84%. Resampling keeps the top k of ``log weight + Gumbel noise`` (sampling k
without replacement in proportion to the weights) or of the weights alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xxhash

from gristmill.ops.text.ngrams import positional_ngrams, tokenize

__all__ = ["Features", "as_features", "bucket_model", "feature_counts", "features", "gumbel", "log_ratio",
           "log_weights"]


@dataclass
class Features:
    """Sparse hashed n-gram counts of a shard's rows (pairs sorted by row, then bucket)."""

    scored: np.ndarray  # bool per row: has text to score
    doc: np.ndarray  # int32: row of each (row, bucket) pair
    bucket: np.ndarray  # int32
    count: np.ndarray  # int32

    def totals(self, buckets: int) -> np.ndarray:
        """Counts per bucket summed over the rows (float64, length ``buckets``)."""
        return np.bincount(self.bucket, weights=self.count, minlength=buckets).astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scored": self.scored, "doc": self.doc, "bucket": self.bucket, "count": self.count}


def features(texts: Sequence[str | None], buckets: int, ngram: int = 2) -> Features:
    """Unigram..``ngram``-gram counts of each text hashed into ``buckets``; null or blank texts are not scored."""
    scored = np.array([t is not None and bool(t.strip()) for t in texts], np.bool_)
    rows = np.flatnonzero(scored)
    word_hashes, owner = tokenize([texts[i] for i in rows])
    hashes, owners = [word_hashes], [owner]
    for n in range(2, ngram + 1):
        grams, first = positional_ngrams(word_hashes, owner, n)
        hashes.append(grams)
        owners.append(owner[first])
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    o = rows[np.concatenate(owners)] if len(h) else np.zeros(0, np.int64)
    key = o.astype(np.int64) * buckets + (h % np.uint64(buckets)).astype(np.int64)
    uniq, count = np.unique(key, return_counts=True)
    return Features(scored, (uniq // buckets).astype(np.int32), (uniq % buckets).astype(np.int32),
                    count.astype(np.int32))


def bucket_model(totals: np.ndarray, smoothing: float) -> np.ndarray:
    """The bag-of-n-grams distribution of bucket ``totals`` with ``smoothing`` pseudo-counts per bucket."""
    counts = totals + smoothing
    s = counts.sum()
    return counts / s if s > 0 else np.full(len(totals), 1.0 / len(totals))


def log_ratio(target_totals: np.ndarray, raw_totals: np.ndarray, smoothing: float) -> np.ndarray:
    """``log p_target - log p_raw`` per bucket (a bucket with zero probability gets a floor of 1e-12)."""
    pt = np.maximum(bucket_model(target_totals, smoothing), 1e-12)
    pr = np.maximum(bucket_model(raw_totals, smoothing), 1e-12)
    return np.log(pt) - np.log(pr)


def log_weights(feats: Features, ratio: np.ndarray) -> np.ndarray:
    """Each row's log importance weight (float64; NaN for rows not scored)."""
    n = len(feats.scored)
    out = np.bincount(feats.doc, weights=feats.count * ratio[feats.bucket], minlength=n).astype(np.float64)
    out[~feats.scored] = np.nan
    return out


def feature_counts(feats: Features) -> np.ndarray:
    """Each row's number of n-gram features (float64; 0 for rows not scored)."""
    return np.bincount(feats.doc, weights=feats.count, minlength=len(feats.scored)).astype(np.float64)


def gumbel(ids: Sequence[Any], seed: int) -> np.ndarray:
    """Standard Gumbel noise per id, a function of ``(seed, id)`` only: the same draw for a row whatever
    shard or worker it is in."""
    u = np.array([((xxhash.xxh3_64_intdigest(f"{seed}\0{i}".encode("utf-8", "surrogatepass")) >> 11) + 0.5)
                  / float(1 << 53) for i in ids], np.float64)
    return -np.log(-np.log(u)) if len(u) else u


def as_features(data: Any) -> Features:
    """A :class:`Features` back from its :meth:`~Features.arrays` (e.g. loaded from ``.npz``)."""
    return Features(np.asarray(data["scored"]), np.asarray(data["doc"]), np.asarray(data["bucket"]),
                    np.asarray(data["count"]))
