"""Word hashes and rolling n-gram hashes of texts: the n-gram index of ``decontam.ngram`` and
``copyright.overlap``. Words are the lower-cased text split on anything but letters, marks,
digits and ``_``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

__all__ = ["tokenize", "words", "ngram_hashes", "positional_ngrams"]

# Words are runs of letters, marks, digits and "_"; everything else separates them.
_SPLIT = r"[^\pL\pM\pN_]+"
# Odd 64-bit multiplier of the polynomial rolling hash over word hashes (arithmetic mod 2**64).
_BASE = np.uint64(0x9E3779B97F4A7C15)


def tokenize(texts: Sequence[str | None] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of all ``texts`` in one flat array, and the index of the text each came from.

    Words are the lower-cased text split on anything but letters, marks, digits and ``_``,
    so punctuation, symbols and spacing never matter (GPT-3's normalisation: lower case,
    punctuation stripped, split on whitespace). Each distinct word is hashed once (xxh3-64).
    """
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), pa.string())
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    parts = pc.split_pattern_regex(pc.utf8_lower(arr), _SPLIT)
    flat, parent = pc.list_flatten(parts), pc.list_parent_indices(parts)
    nonempty = pc.greater(pc.binary_length(flat), 0)
    flat, parent = flat.filter(nonempty), parent.filter(nonempty)
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    enc = pc.dictionary_encode(flat)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    vocab = enc.dictionary.cast(pa.binary()).to_pylist()
    vocab_hashes = np.fromiter((xxhash.xxh3_64_intdigest(w) for w in vocab), np.uint64, len(vocab))
    word_hashes = vocab_hashes[enc.indices.to_numpy(zero_copy_only=False)]
    return word_hashes, np.asarray(parent.to_numpy(zero_copy_only=False), np.int64)


def words(text: str) -> list[str]:
    """The words of ``text`` as :func:`tokenize` sees them (for inspection and tests)."""
    parts = pc.split_pattern_regex(pc.utf8_lower(pa.array([text], pa.string())), _SPLIT)
    return [w for w in parts[0].as_py() if w]


def positional_ngrams(word_hashes: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of ``n`` consecutive words of one text (``sum h[i+j] * B**(n-1-j)`` mod
    2**64) and the position of each run's first word in ``word_hashes``; runs crossing texts are left out."""
    m = len(word_hashes) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    acc = word_hashes[:m].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            acc *= _BASE
            acc += word_hashes[j:j + m]
    inside = np.flatnonzero(owner[:m] == owner[n - 1:])
    return acc[inside], inside


def ngram_hashes(word_hashes: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of :func:`positional_ngrams` with the text each run belongs to."""
    hashes, first = positional_ngrams(word_hashes, owner, n)
    return hashes, owner[first]
