"""MinHash signatures for a batch of texts at once: normalise, shingle, hash and minimise in numpy.

No Python loop runs per token, shingle or permutation; per document there are only
``str.lower`` and, for non-ASCII text, ``unicodedata.normalize("NFD")``.

1. Normalisation (``normalize=True``, the default; mirrors datatrove's ``simplify_text``):
   lowercase; accents stripped (NFD, then combining marks, category Mn, deleted); a run
   of digits, possibly joined by ``. , ، ٫ ⎖ ⎗ ⎘`` between digits, becomes ``0``;
   punctuation, symbols, control characters and whitespace separate tokens. With
   ``normalize=False`` only whitespace separates tokens. :func:`normalize_text` is the
   same thing in plain Python (for tests and for peers in benchmarks).
2. Tokens and shingles. The batch is one array of code points (UTF-32); character
   classes come from a lookup table over all of Unicode. A token is a maximal run of
   non-separator characters. Every substring hash is a 64-bit polynomial hash taken from
   prefix sums (``h(s[i:j]) = B^(j-1) * (C[j] - C[i])`` where ``C`` is the cumulative sum
   of ``s[t] * B^-t`` mod 2^64), finished with murmur3's 64-bit mixer. Word shingles fold
   the hashes of ``size`` consecutive tokens; character shingles hash windows of ``size``
   characters of the normalised text (tokens joined by single spaces). A document with
   fewer tokens (characters) than ``size`` is one shingle; one with none has no signature.
3. Permutations: ``num_perm`` hashes ``h_k(x) = (a_k * x + b_k) mod 2^32`` of the 32-bit
   shingle hashes ``x`` (``a_k`` odd, so each is a permutation of 32-bit values),
   evaluated for a block of shingles and all permutations as one ``(num_perm, shingles)``
   uint32 array, minimised per document with ``np.minimum.reduceat``. 32-bit lanes are
   what numpy vectorises best; the shingle hashes are already uniformly mixed, so the
   linear permutations only have to decorrelate the orderings. This is datasketch 2.0's
   default "affine32" scheme too; tests/ops/dedup/test_minhash.py checks that the
   estimated Jaccard similarity is unbiased, with the variance J(1-J)/num_perm.

:func:`band_keys` folds each band's ``rows`` values into one mixed 64-bit key, so two
documents share a bucket in a band exactly when their band rows are equal (up to a
2^-64 collision).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["MinHasher", "ShingleSets", "Shingles", "Tokens", "band_keys", "jaccard", "normalize_text", "tokenize"]

U64 = np.uint64
U32 = np.uint32
_BASE = U64(0x9E3779B97F4A7C15)  # odd, so invertible mod 2^64
_BASE_INV = U64(pow(int(_BASE), -1, 1 << 64))
_FOLD = U64(0xC2B2AE3D27D4EB4F)
_M1 = U64(0xFF51AFD7ED558CCD)
_M2 = U64(0xC4CEB9FE1A85EC53)
_S33 = U64(33)
_SPACE = 32
_ZERO = ord("0")
_BLOCK = 8192  # shingles per (num_perm, shingles) block: 8 Ki x 128 x 4 B = 4 MiB
_CHUNK_CHARS = 1 << 19  # characters tokenised at once

# character classes
WORD, SEP, DELETE, DIGIT, JOINER = 0, 1, 2, 3, 4
_JOINERS = ".,،٫⎖⎗⎘"
_DIGITS = re.compile(r"\d+(?:[" + _JOINERS + r"]\d+)*")


@cache
def _classes(normalize: bool) -> np.ndarray:
    """Class of every code point: WORD, SEP, DELETE (Mn), DIGIT (Nd) or JOINER (only if ``normalize``)."""
    by_category = {"Mn": DELETE, "Nd": DIGIT} if normalize else {}
    if normalize:
        by_category.update(dict.fromkeys(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
                                          "Zs", "Zl", "Zp", "Cc"), SEP))
    category = unicodedata.category
    out = np.frombuffer(bytes([by_category.get(category(chr(cp)), WORD) for cp in range(0x110000)]), np.uint8).copy()
    out[[cp for cp in range(0x3000 + 1) if chr(cp).isspace()]] = SEP  # every whitespace character is below U+3001
    if normalize:
        out[[ord(c) for c in _JOINERS]] = JOINER
    return out


@cache
def _translate_table() -> dict[int, int | None]:
    """For :func:`normalize_text`: separators -> space, combining marks deleted."""
    cls = _classes(True)
    table: dict[int, int | None] = {int(cp): _SPACE for cp in np.flatnonzero((cls == SEP) | (cls == JOINER))}
    table.update({int(cp): None for cp in np.flatnonzero(cls == DELETE)})
    return table


def normalize_text(text: str, lowercase: bool = True, normalize: bool = True) -> str:
    """A text's tokens joined by single spaces, as the shingler sees them (plain Python, slower)."""
    if lowercase:
        text = text.lower()
    if normalize:
        if not text.isascii():
            text = unicodedata.normalize("NFD", text)
        text = _DIGITS.sub("0", text).translate(_translate_table())
    return " ".join(text.split())


def _mix(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, in place on a uint64 array (returned for chaining)."""
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


class _Powers:
    """B^t and B^-t mod 2^64 for t < n, grown on demand (cumprod wraps mod 2^64)."""

    fwd = np.ones(1, U64)
    inv = np.ones(1, U64)

    @classmethod
    def get(cls, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > cls.fwd.size:
            size = max(n, 2 * cls.fwd.size)
            cls.fwd = np.full(size, _BASE, U64)
            cls.inv = np.full(size, _BASE_INV, U64)
            cls.fwd[0] = cls.inv[0] = 1
            np.cumprod(cls.fwd, out=cls.fwd)
            np.cumprod(cls.inv, out=cls.inv)
        return cls.fwd[:n], cls.inv[:n]


def _substring_hashes(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mixed 64-bit hashes of ``codes[starts[i]:ends[i]]`` (non-empty) for every i."""
    fwd, inv = _Powers.get(codes.size + 1)
    prefix = np.zeros(codes.size + 1, U64)
    np.multiply(codes.astype(U64) + U64(1), inv[:codes.size], out=prefix[1:])
    np.cumsum(prefix, out=prefix)
    h = (prefix[ends] - prefix[starts]) * fwd[ends - 1]
    h += (ends - starts).astype(U64) * _FOLD
    return _mix(h)


@dataclass(frozen=True)
class Tokens:
    """Tokens of a batch: ``codes[starts[t]:ends[t]]`` is token t; ``offsets[d]:offsets[d+1]`` are doc d's tokens."""

    codes: np.ndarray  # uint32 code points of the normalised batch
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    offsets: np.ndarray  # int64, documents + 1

    def strings(self, doc: int) -> list[str]:
        """Document ``doc``'s tokens as strings (for tests and debugging)."""
        t = range(self.offsets[doc], self.offsets[doc + 1])
        return [self.codes[self.starts[i]:self.ends[i]].tobytes().decode("utf-32-le") for i in t]


def tokenize(texts: Sequence[str | None], lowercase: bool = True, normalize: bool = True) -> Tokens:
    """Tokens of every text (None counts as empty), as :func:`normalize_text` would split them."""
    prepared = []
    for t in texts:
        t = t or ""
        if lowercase:
            t = t.lower()
        if normalize and not t.isascii():
            t = unicodedata.normalize("NFD", t)
        prepared.append(t)
    # one separator after every document, so no token spans two documents
    lengths = np.fromiter((len(t) + 1 for t in prepared), np.int64, len(prepared))
    bounds = np.zeros(len(prepared) + 1, np.int64)
    np.cumsum(lengths, out=bounds[1:])
    codes = np.frombuffer((" ".join(prepared) + " ").encode("utf-32-le", "surrogatepass"), U32)
    cls = _classes(normalize)[codes]
    if normalize:
        codes, word, bounds = _fold_digits_and_marks(codes, cls, bounds)
    else:
        word = cls == WORD
    # +1 where a token starts, -1 after it ends (the batch ends with a separator, so every token ends)
    step = np.diff(word.view(np.int8), prepend=np.int8(0))
    edges = np.flatnonzero(step)
    rising = step[edges] > 0
    starts, ends = edges[rising], edges[~rising]
    offsets = np.searchsorted(starts, bounds)
    return Tokens(codes, starts, ends, offsets)


def _fold_digits_and_marks(codes: np.ndarray, cls: np.ndarray,
                           bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A digit run (runs joined by one JOINER between digits) becomes one ``0``; marks are deleted.

    Returns the new code points, a word mask and the new document bounds. Works on the
    (few) positions of digits, joiners and marks rather than on whole-batch masks.
    """
    word = cls == WORD
    special = np.flatnonzero(cls >= DELETE)
    if special.size == 0:
        return codes, word, bounds
    kind = cls[special]
    digits = special[kind == DIGIT]
    drop = [special[kind == DELETE]]
    if digits.size:
        joiners = special[kind == JOINER]
        joiners = joiners[(joiners > 0) & (joiners + 1 < cls.size)]
        joiners = joiners[(cls[joiners - 1] == DIGIT) & (cls[joiners + 1] == DIGIT)]
        run = np.union1d(digits, joiners)  # sorted positions of digit-like characters
        drop.append(run[1:][np.diff(run) == 1])  # all but the first of each run
        codes = codes.copy()
        codes[digits] = _ZERO
        word[digits] = True
    gone = np.concatenate(drop)
    if gone.size:
        gone.sort()
        codes, word = np.delete(codes, gone), np.delete(word, gone)
        bounds = bounds - np.searchsorted(gone, bounds)
    return codes, word, bounds


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of a batch: ``hashes[offsets[d]:offsets[d + 1]]`` belong to document d."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, documents + 1


def _repeat_index(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``count[d]`` items per document: the offsets of those items, and each item's index within its document."""
    out = np.zeros(count.size + 1, np.int64)
    np.cumsum(count, out=out[1:])
    within = np.arange(out[-1]) - np.repeat(out[:-1], count)
    return out, within


def word_shingles(tok: Tokens, size: int) -> Shingles:
    """Hashes of each document's word ``size``-grams (one shingle of all tokens if it has fewer)."""
    th = _substring_hashes(tok.codes, tok.starts, tok.ends)
    per_doc = np.diff(tok.offsets)
    count = np.where(per_doc >= size, per_doc - size + 1, np.minimum(per_doc, 1))
    offsets = np.zeros(count.size + 1, np.int64)
    np.cumsum(count, out=offsets[1:])
    # fold every window of `size` tokens of the batch, then keep the windows inside one document
    n = th.size
    full = np.zeros(n, U64)
    if n >= size:
        acc = th[:n - size + 1].copy()
        for k in range(1, size):
            acc *= _FOLD
            acc += th[k:n - size + 1 + k]
        full[:n - size + 1] = acc
    to_end = np.repeat(tok.offsets[1:], per_doc) - np.arange(n)
    keep = to_end >= size
    short = np.flatnonzero((per_doc > 0) & (per_doc < size))
    if short.size:  # one shingle folding all tokens, stored at the document's first token
        first, width = tok.offsets[short], per_doc[short]
        acc = th[first].copy()
        for k in range(1, size):
            live = width > k
            acc[live] = acc[live] * _FOLD + th[first[live] + k]
        full[first] = acc
        keep[first] = True
    return Shingles(_mix(full[keep]), offsets)


def char_shingles(tok: Tokens, size: int) -> Shingles:
    """Hashes of each document's character ``size``-grams of its tokens joined by single spaces."""
    lens = tok.ends - tok.starts
    # lay the normalised batch out as: every token followed by one space
    out_start = np.zeros(lens.size + 1, np.int64)
    np.cumsum(lens + 1, out=out_start[1:])
    text = np.full(int(out_start[-1]), _SPACE, U32)
    is_char = np.ones(text.size, bool)
    is_char[out_start[1:] - 1] = False
    text[is_char] = tok.codes[np.flatnonzero(is_char) - np.repeat(out_start[:-1] - tok.starts, lens)]
    doc_start = out_start[tok.offsets[:-1]]
    doc_len = np.maximum(out_start[tok.offsets[1:]] - 1 - doc_start, 0)  # without the last space
    count = np.where(doc_len >= size, doc_len - size + 1, np.minimum(doc_len, 1))
    offsets, within = _repeat_index(count)
    starts = np.repeat(doc_start, count) + within
    ends = starts + np.repeat(np.minimum(doc_len, size), count)
    return Shingles(_substring_hashes(text, starts, ends), offsets)


class MinHasher:
    """MinHash signatures with ``num_perm`` permutations drawn from ``seed``."""

    def __init__(self, num_perm: int, shingle: str = "word", size: int = 5, seed: int = 1,
                 lowercase: bool = True, normalize: bool = True) -> None:
        if shingle not in ("word", "char"):
            raise ValueError(f"shingle must be 'word' or 'char', not {shingle!r}")
        self.num_perm, self.shingle, self.size = num_perm, shingle, size
        self.lowercase, self.normalize = lowercase, normalize
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 1 << 32, num_perm, dtype=U32) | U32(1)
        self.b = rng.integers(0, 1 << 32, num_perm, dtype=U32)

    def shingles(self, texts: Sequence[str | None]) -> Shingles:
        """Shingle hashes (64-bit) of every text."""
        tok = tokenize(texts, self.lowercase, self.normalize)
        return (word_shingles if self.shingle == "word" else char_shingles)(tok, self.size)

    def signatures(self, shingles: Shingles) -> np.ndarray:
        """``(documents, num_perm)`` uint32 signatures; rows of documents without shingles are 0."""
        offsets = shingles.offsets
        out = np.zeros((offsets.size - 1, self.num_perm), U32)
        has = np.flatnonzero(np.diff(offsets) > 0)
        x = shingles.hashes.astype(U32)  # the low 32 bits of the mixed hash
        a, b = self.a[:, None], self.b[:, None]
        buf = np.empty((self.num_perm, _BLOCK), U32)
        starts, ends = offsets[has], offsets[has + 1]
        d = 0
        while d < has.size:
            # a block of whole documents: at least one, else up to _BLOCK shingles
            lo = int(starts[d])
            e = max(int(np.searchsorted(ends, lo + _BLOCK, side="right")), d + 1)
            hi = int(ends[e - 1])
            block = buf[:, :hi - lo] if hi - lo <= _BLOCK else np.empty((self.num_perm, hi - lo), U32)
            np.multiply(a, x[None, lo:hi], out=block)
            block += b
            out[has[d:e]] = np.minimum.reduceat(block, starts[d:e] - lo, axis=1).T
            d = e
        return out

    def __call__(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Signatures of ``texts`` and a mask of the texts that have one (some shingle)."""
        sig, has, _ = self.sketch(texts)
        return sig, has

    def sketch(self, texts: Sequence[str | None], sets: bool = False) -> tuple[np.ndarray, np.ndarray, ShingleSets | None]:
        """Signatures, the has-a-signature mask and (if ``sets``) each text's sorted 32-bit shingle set.

        Works through ``texts`` in slices of about ``_CHUNK_CHARS`` characters, so the
        intermediate arrays stay in cache whatever the batch size.
        """
        sigs, has, parts = [], [], []
        for lo, hi in _slices(texts, _CHUNK_CHARS):
            sh = self.shingles(texts[lo:hi])
            sigs.append(self.signatures(sh))
            has.append(np.diff(sh.offsets) > 0)
            if sets:
                parts.append(shingle_sets(sh))
        sig = np.concatenate(sigs) if sigs else np.zeros((0, self.num_perm), U32)
        mask = np.concatenate(has) if has else np.zeros(0, bool)
        return sig, mask, (ShingleSets.concat(parts) if sets else None)


def _slices(texts: Sequence[str | None], chars: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` slices of ``texts`` of about ``chars`` characters each (at least one text)."""
    out, lo, size = [], 0, 0
    for i, t in enumerate(texts):
        size += len(t) if t else 0
        if size >= chars:
            out.append((lo, i + 1))
            lo, size = i + 1, 0
    if lo < len(texts):
        out.append((lo, len(texts)))
    return out


@dataclass(frozen=True)
class ShingleSets:
    """Each document's distinct shingles as sorted uint32: ``values[offsets[d]:offsets[d + 1]]``."""

    values: np.ndarray  # uint32
    offsets: np.ndarray  # int64, documents + 1

    def get(self, doc: int) -> np.ndarray:
        return self.values[self.offsets[doc]:self.offsets[doc + 1]]

    @staticmethod
    def concat(parts: Sequence[ShingleSets]) -> ShingleSets:
        if not parts:
            return ShingleSets(np.zeros(0, U32), np.zeros(1, np.int64))
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return ShingleSets(np.concatenate([p.values for p in parts]), offsets)


def shingle_sets(sh: Shingles) -> ShingleSets:
    """The distinct low-32-bit shingle hashes of every document, sorted (for exact Jaccard)."""
    docs = sh.offsets.size - 1
    doc = np.repeat(np.arange(docs, dtype=U64), np.diff(sh.offsets))
    keys = np.unique((doc << U64(32)) | (sh.hashes & U64(0xFFFFFFFF)))
    counts = np.bincount((keys >> U64(32)).astype(np.int64), minlength=docs)
    offsets = np.zeros(docs + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ShingleSets(keys.astype(U32), offsets)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted sets of distinct values."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(bands, documents)`` uint64 keys: band b's key hashes ``signatures[:, b*rows:(b+1)*rows]``."""
    docs = signatures.shape[0]
    sig = signatures[:, :bands * rows].reshape(docs, bands, rows).astype(U64)
    acc = np.zeros((docs, bands), U64)
    for r in range(rows):
        acc *= _FOLD
        acc += sig[:, :, r]
    return np.ascontiguousarray(_mix(acc).T)
