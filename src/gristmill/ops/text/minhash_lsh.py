"""``dedup.minhash``'s fit: band buckets -> candidate pairs -> (optional exact Jaccard) -> clusters.

Documents are numbered globally in input order (shards in order, rows in order). For
each band in turn, the band's keys of every shard are concatenated, stably sorted and
cut into runs of equal keys; each run of two or more documents yields candidate pairs
from its first (earliest) document to every other one. Memory holds one band's keys
(8 bytes per document, plus the sort's index) and the candidate pairs, never all
bands or the signatures.

Without the exact check, connected components of the candidate graph are found with
vectorised min-label propagation and pointer jumping, so each component's label is
its earliest document, the one that is kept. With ``jaccard_check``, each run also
yields the pairs of neighbours in input order (a document that fails against the
run's first one can still join through a neighbour); pairs are visited in order,
pairs already in one component are skipped, and the others are joined only if the
exact Jaccard similarity of their shingle sets reaches the threshold (union-find).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gristmill.ops.text.minhash_signature import ShingleSets, jaccard
from gristmill.ops.text.minhash_state import ShardState

__all__ = ["Clusters", "candidate_pairs", "cluster"]


@dataclass
class Clusters:
    """Documents in clusters of two or more: global index, and the cluster's earliest document."""

    members: np.ndarray  # int64 global indices, sorted
    root: np.ndarray  # int64 global index of each member's representative
    stats: dict[str, float] = field(default_factory=dict)


def _run_pairs(keys: np.ndarray, chain: bool) -> np.ndarray:
    """Packed candidate pairs ``first * n + other`` of one band's keys (``n`` = len(keys))."""
    n = keys.size
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    same = sk[1:] == sk[:-1]
    follow = np.flatnonzero(same) + 1  # sorted positions that continue a run
    if follow.size == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    first = starts[np.searchsorted(starts, follow, side="right") - 1]
    u, v = order[first], order[follow]
    packed = u * n + v
    if chain:
        w = order[follow - 1]
        packed = np.concatenate((packed, w * n + v))
    return packed


def candidate_pairs(states: Sequence[ShardState], bands: int, chain: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distinct candidate pairs ``(u, v)``, ``u < v``, over all bands, sorted."""
    n = sum(s.docs for s in states)
    packed = np.zeros(0, np.int64)
    for b in range(bands):
        keys = np.concatenate([s.band(b) for s in states]) if states else np.zeros(0, np.uint64)
        if keys.size:
            packed = np.union1d(packed, _run_pairs(keys, chain))
    u, v = np.divmod(packed, max(n, 1))
    return u, v


def _components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes of the graph with edges ``(u, v)`` and each one's smallest connected node."""
    nodes, inv = np.unique(np.concatenate((u, v)), return_inverse=True)
    a, b = inv[:u.size], inv[u.size:]
    label = np.arange(nodes.size)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        while True:  # pointer jumping: follow labels to their fixpoint
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


class _UnionFind:
    """Union-find over arbitrary ints whose root is always the smallest member."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent.get(x, x)
        return root

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            lo, hi = min(rx, ry), max(rx, ry)
            self.parent[hi] = lo
            self.parent.setdefault(lo, lo)


def _verified_components(u: np.ndarray, v: np.ndarray, states: Sequence[ShardState],
                         threshold: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Components joining only pairs whose exact Jaccard is >= threshold; also pairs checked / passed."""
    base = np.concatenate(([0], np.cumsum([s.docs for s in states])))
    sets: list[ShingleSets | None] = [None] * len(states)

    def shingles(g: int) -> np.ndarray:
        s = int(np.searchsorted(base, g, side="right") - 1)
        if sets[s] is None:
            sets[s] = states[s].sets()
        return np.asarray(sets[s].get(g - int(base[s])))

    uf = _UnionFind()
    checked = passed = 0
    for x, y in zip(u.tolist(), v.tolist()):
        if uf.find(x) == uf.find(y):
            continue
        checked += 1
        if jaccard(shingles(x), shingles(y)) >= threshold:
            passed += 1
            uf.union(x, y)
    nodes = np.array(sorted(uf.parent), np.int64)
    roots = np.array([uf.find(x) for x in nodes.tolist()], np.int64)
    return nodes, roots, checked, passed


def cluster(states: Sequence[ShardState], bands: int, jaccard_threshold: float | None = None) -> Clusters:
    """Clusters of near-duplicates among the documents of ``states`` (see the module docstring)."""
    check = jaccard_threshold is not None
    u, v = candidate_pairs(states, bands, chain=check)
    stats: dict[str, float] = {"candidate_pairs": int(u.size)}
    if u.size == 0:
        return Clusters(np.zeros(0, np.int64), np.zeros(0, np.int64), stats)
    if check:
        nodes, roots, checked, passed = _verified_components(u, v, states, jaccard_threshold)
        stats.update(pairs_checked=checked, pairs_passed=passed)
    else:
        nodes, roots = _components(u, v)
    in_cluster = nodes != roots
    in_cluster[np.isin(nodes, roots[in_cluster])] = True  # representatives too
    return Clusters(nodes[in_cluster], roots[in_cluster], stats)
