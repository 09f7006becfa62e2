"""Perceptual hashes (pHash, dHash) of many pictures at once, and clusters of hashes within a Hamming distance.

:func:`phash` and :func:`dhash` compute imagehash's ``phash`` and ``dhash`` (8 x 8 = 64 bits) for a list
of pictures, bit for bit (``tests/ops/image`` compares them with imagehash itself): each picture is made
gray and resized with Lanczos by Pillow as imagehash does, then the DCTs, medians and comparisons run
once over the stacked batch instead of once per picture. A hash is an unsigned 64-bit integer whose
most significant bit is the first cell of imagehash's bit matrix, so ``f"{h:016x}"`` equals
``str(imagehash.phash(im))``.

:func:`close_pairs` finds every pair of hashes within a Hamming distance by comparing all pairs in
blocks (XOR and a popcount, O(n^2) in time, a few MB of memory); 10,000 hashes take well under a
second. :func:`components` joins pairs into clusters (connected components).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["HASHES", "close_pairs", "components", "dhash", "hamming", "hashes_of", "hex64", "phash"]

HASHES = ("phash", "dhash")
_LANCZOS = Image.Resampling.LANCZOS
_BLOCK_CELLS = 1 << 22  # pair distances computed at once (8 bytes each)


def _pack(bits: np.ndarray) -> np.ndarray:
    """``(n, 64)`` booleans as ``n`` uint64, the first bit the most significant (imagehash's hex order)."""
    packed = np.packbits(bits.reshape(bits.shape[0], 64).astype(np.uint8), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def phash(images: Sequence[Image.Image], hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """imagehash's ``phash`` of each picture: the signs of the low 8 x 8 DCT coefficients of a 32 x 32
    gray copy against their median."""
    from scipy.fftpack import dct

    if not images:
        return np.zeros(0, np.uint64)
    size = hash_size * highfreq_factor
    pixels = np.stack([np.asarray(im.convert("L").resize((size, size), _LANCZOS)) for im in images])
    coeffs = dct(dct(pixels, axis=1), axis=2)[:, :hash_size, :hash_size]
    med = np.median(coeffs.reshape(len(images), -1), axis=1)
    return _pack(coeffs > med[:, None, None])


def dhash(images: Sequence[Image.Image], hash_size: int = 8) -> np.ndarray:
    """imagehash's ``dhash`` of each picture: whether each pixel of a 9 x 8 gray copy is brighter than
    its left neighbour."""
    if not images:
        return np.zeros(0, np.uint64)
    pixels = np.stack([np.asarray(im.convert("L").resize((hash_size + 1, hash_size), _LANCZOS)) for im in images])
    return _pack(pixels[:, :, 1:] > pixels[:, :, :-1])


def hashes_of(kind: str, images: Sequence[Image.Image]) -> np.ndarray:
    """The ``kind`` hash (``phash`` or ``dhash``) of each picture."""
    if kind == "phash":
        return phash(images)
    if kind == "dhash":
        return dhash(images)
    raise ValueError(f"unknown hash {kind!r}; expected one of {', '.join(HASHES)}")


def hex64(h: int) -> str:
    """A 64-bit hash as imagehash prints it: 16 hex digits."""
    return f"{int(h):016x}"


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bits that differ between hashes ``a`` and ``b`` (element-wise)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def close_pairs(hashes: Sequence[np.ndarray], max_distance: Sequence[int],
                require: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes lie within ``max_distance`` bits.

    ``hashes`` holds one array per hash kind (the same rows in each); with ``require="all"`` a pair
    must be close in every kind, with ``"any"`` in at least one. Compared in blocks of rows against
    every later row, so memory stays near ``_BLOCK_CELLS`` distances whatever the count."""
    first = np.asarray(hashes[0], np.uint64)
    n = first.size
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    kinds = [np.asarray(h, np.uint64) for h in hashes]
    limits = [int(t) for t in max_distance]
    step = max(1, _BLOCK_CELLS // n)
    for start in range(0, n - 1, step):
        stop = min(n - 1, start + step)
        rows = np.arange(start, stop)
        close = None
        for h, t in zip(kinds, limits):
            d = np.bitwise_count(h[start:stop, None] ^ h[None, start:])
            ok = d <= t
            close = ok if close is None else (close & ok if require == "all" else close | ok)
        assert close is not None
        close &= np.arange(start, n)[None, :] > rows[:, None]  # the upper triangle: j > i
        i, j = np.nonzero(close)
        found_i.append(i + start)
        found_j.append(j + start)
    return np.concatenate(found_i).astype(np.int64), np.concatenate(found_j).astype(np.int64)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The cluster of each of ``n`` items joined by pairs ``(i, j)``: the smallest index in its
    connected component (so the earliest item represents its cluster)."""
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(x) for x in range(n)], dtype=np.int64)
