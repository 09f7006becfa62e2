"""``image.dedup``: exact and perceptual-hash near-duplicate images; the earliest of each cluster is kept."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field, model_validator

from gristmill.images.decode import IMAGE, DEFAULT_MAX_PIXELS, ImageProblem, as_bytes, decode
from gristmill.images.hashing import close_pairs, components, hashes_of, hex64
from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.ops.dedup.exact import CLUSTER, DUPLICATE_OF
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["DISTANCE", "ImageDedup", "PHASH", "DHASH"]

PHASH = "image.phash"
DHASH = "image.dhash"
DISTANCE = "_distance"
HASH_COLUMNS = {"phash": PHASH, "dhash": DHASH}
EXAMPLES = 20  # clusters listed in the run summary (the report shows them side by side)


class ImageDedup(GlobalOp):
    """Drop exact and near-duplicate images: identical bytes, then perceptual hashes within a Hamming distance.

    ``summarize`` hashes every image of a shard: xxh3-128 of its bytes (exact copies) and, for each
    kind in ``hashes``, imagehash's 64-bit pHash (DCT of a 32 x 32 gray copy) or dHash (gradients of a
    9 x 8 gray copy), computed in batches bit for bit as imagehash does (:mod:`gristmill.images.hashing`).
    ``fit`` joins rows with the same bytes, then compares the hashes of one row per byte group, all pairs
    (O(n^2), in blocks): two images are near duplicates when every hash kind (``require: all``) or one of
    them (``any``) differs in at most ``max_distance`` of 64 bits. Pairs form clusters by connected
    components, and the earliest row of a cluster in input order (shards, then rows) is kept.

    Every row gets ``dedup.cluster`` (the kept row's id; its own when alone) and ``image.phash`` /
    ``image.dhash`` (16 hex digits, as imagehash prints them). Dropped rows carry ``_duplicate_of`` and
    ``_distance`` (bits from the kept image's hash; 0 for a byte copy) and the reason
    ``duplicate: of <id>`` (the same bytes) or ``near_duplicate: of <id> (cluster of 3, phash distance 4)``.
    A row whose image does not decode is compared by its bytes only; a null image is never a duplicate.
    Hashes see gray structure, not colour: flat pictures of any colours share their hashes and cluster
    together (``image.quality``'s ``min_contrast`` drops them first when it runs before).
    The run summary lists the largest clusters for the report. The default, 8 bits in pHash and in dHash,
    is the largest distance at which ``benchmarks/bench_image_dedup.py`` (1,500 distinct scenes, 300 of them
    edited four ways) joined no two distinct scenes; there it finds 100% of resized copies, 97% of JPEG
    re-compressions, 55% of 85-95% crops and 4% of 3-8 degree rotations: perceptual hashes do not see
    through rotation. ``require: any`` or more bits find more edits and join distinct pictures (10 bits:
    precision 0.999; ``any`` at 6 bits: 0.21).
    """

    name = "image.dedup"
    version = "1"
    requires = ("imagehash",)  # the image extra: imagehash and the scipy it brings (the DCT)
    example_params: ClassVar[dict[str, Any]] = {"column": "text"}  # the conformance batch is text: bytes only

    class Params(Params):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        hashes: list[Literal["phash", "dhash"]] = Field(["phash", "dhash"], min_length=1,
                                                        description="Perceptual hashes compared (64 bits each).")
        max_distance: int = Field(8, ge=0, le=64, description="Most differing bits for two hashes to be near; "
                                  "0 joins only images whose hashes are equal.")
        require: Literal["all", "any"] = Field("all", description="A pair is near when all hash kinds are within "
                                               "max_distance, or when any one is.")
        exact_only: bool = Field(False, description="Compare bytes only (no decoding, no perceptual hashes).")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Images above this many pixels are "
                                       "compared by bytes only (never decoded).")

        @model_validator(mode="after")
        def _unique(self) -> ImageDedup.Params:
            if len(set(self.hashes)) != len(self.hashes):
                raise ValueError(f"hashes repeats a kind: {self.hashes}")
            return self

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # fit state: id -> (kept id, rule, distance) for every dropped row; cluster sizes by kept id
        self.duplicate_of: dict[Any, tuple[Any, str, int]] | None = None
        self.cluster_size: dict[Any, int] = {}
        self.examples: list[dict[str, Any]] = []
        self.fit_stats: dict[str, Any] = {}
        self.hash_of: dict[Any, tuple[int | None, ...]] = {}  # id -> its hashes, written by apply

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [CLUSTER, *(HASH_COLUMNS[k] for k in self.params.hashes)] if not self.params.exact_only else [CLUSTER]

    def _hashes(self, batch: pa.Table) -> tuple[list[bytes | None], dict[str, list[int | None]]]:
        """Per row: the xxh3-128 digest of its bytes (None: null) and each perceptual hash (None: no decode)."""
        p = self.params
        values = column_list(batch, p.column)
        digests: list[bytes | None] = []
        pictures, where = [], []
        for i, v in enumerate(values):
            try:
                data = as_bytes(v)
            except ImageProblem:
                data = None
            digests.append(None if data is None else xxhash.xxh3_128_digest(data))
            if data is None or p.exact_only:
                continue
            try:
                im, _ = decode(data, p.max_pixels)
            except ImageProblem:
                continue
            pictures.append(im)
            where.append(i)
        out: dict[str, list[int | None]] = {}
        for kind in ([] if p.exact_only else p.hashes):
            col: list[int | None] = [None] * len(values)
            for i, h in zip(where, hashes_of(kind, pictures).tolist()):
                col[i] = int(h)
            out[kind] = col
        return digests, out

    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """Ids, byte digests and perceptual hashes of a shard (about 40 bytes a row)."""
        digests, hashes = self._hashes(batch)
        return {"ids": column_list(batch, ID), "digests": digests, "hashes": hashes}

    def fit(self, summaries: list[Any]) -> None:
        t0 = time.perf_counter()
        p = self.params
        ids: list[Any] = []
        digests: list[bytes | None] = []
        hashes: dict[str, list[int | None]] = {k: [] for k in ([] if p.exact_only else p.hashes)}
        for s in summaries:
            if s is None:
                continue
            ids += s["ids"]
            digests += s["digests"]
            for k in hashes:
                hashes[k] += s["hashes"][k]
        n = len(ids)
        kinds = list(hashes)
        self.hash_of = {rid: tuple(hashes[k][i] for k in kinds) for i, rid in enumerate(ids)} if kinds else {}
        # exact copies: the first row with the same digest
        first: dict[bytes, int] = {}
        exact_rep = np.arange(n)
        for i, d in enumerate(digests):
            if d is not None:
                exact_rep[i] = first.setdefault(d, i)
        # near duplicates among the first row of each byte group that has every hash
        cand = [i for i in range(n) if exact_rep[i] == i and kinds and all(hashes[k][i] is not None for k in kinds)]
        root = exact_rep.copy()
        pairs = 0
        if len(cand) > 1:
            arrays = [np.array([hashes[k][i] for i in cand], np.uint64) for k in kinds]
            pi, pj = close_pairs(arrays, [p.max_distance] * len(kinds), p.require)
            pairs = int(pi.size)
            comp = components(len(cand), pi, pj)
            cand_arr = np.array(cand)
            near_rep = cand_arr[comp]  # the earliest candidate of each component
            root[cand_arr] = near_rep
            root = root[exact_rep]  # byte copies follow their group's first row
        self.duplicate_of = {}
        sizes: dict[int, int] = {}
        for i in range(n):
            sizes[int(root[i])] = sizes.get(int(root[i]), 0) + 1
        for i in range(n):
            r = int(root[i])
            if r == i:
                continue
            if exact_rep[i] != i and exact_rep[i] == r:
                self.duplicate_of[ids[i]] = (ids[r], "duplicate", 0)
            else:
                dist = max(int(np.bitwise_count(np.uint64(hashes[k][i]) ^ np.uint64(hashes[k][r]))) for k in kinds)
                self.duplicate_of[ids[i]] = (ids[r], "near_duplicate", dist)
        self.cluster_size = {ids[r]: c for r, c in sizes.items() if c > 1}
        biggest = sorted(((c, r) for r, c in sizes.items() if c > 1), key=lambda t: (-t[0], t[1]))[:EXAMPLES]
        members: dict[int, list[int]] = {r: [] for _, r in biggest}
        for i in range(n):
            if int(root[i]) in members:
                members[int(root[i])].append(i)
        self.examples = [{"kept": ids[r], "size": c, "members": [
            {"id": ids[i], "distance": 0 if i == r else self.duplicate_of[ids[i]][2],
             "rule": "kept" if i == r else self.duplicate_of[ids[i]][1]} for i in members[r]]} for c, r in biggest]
        self.fit_stats = {"images": n, "hashed": len(cand), "pairs_within_distance": pairs,
                          "clusters": len(self.cluster_size), "duplicates": len(self.duplicate_of),
                          "exact_duplicates": sum(1 for v in self.duplicate_of.values() if v[1] == "duplicate"),
                          "fit_seconds": round(time.perf_counter() - t0, 4)}

    def run_summary(self) -> dict[str, Any] | None:
        """The fit's counts, the parameters that matter and the largest clusters (ids and distances)."""
        if self.duplicate_of is None:
            return None
        p = self.params
        return {**self.fit_stats, "hashes": [] if p.exact_only else list(p.hashes), "max_distance": p.max_distance,
                "require": p.require, "clusters_shown": self.examples}

    def apply(self, batch: pa.Table) -> StepResult:
        if self.duplicate_of is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        ids = column_list(batch, ID)
        if batch.num_rows and not self.params.exact_only:
            known = [self.hash_of.get(rid) for rid in ids]
            if any(k is None for k in known):  # rows fit never saw: hash them here
                _, fresh = self._hashes(batch)
                known = [k if k is not None else tuple(fresh[kind][i] for kind in self.params.hashes)
                         for i, k in enumerate(known)]
            for j, kind in enumerate(self.params.hashes):
                batch = set_column(batch, HASH_COLUMNS[kind], pa.array(
                    [None if k[j] is None else hex64(k[j]) for k in known], pa.string()))  # type: ignore[index]
        found = [self.duplicate_of.get(rid) for rid in ids]
        kept_for = [rid if f is None else f[0] for rid, f in zip(ids, found)]
        mask = [f is None for f in found]
        reasons: list[Reason | None] = []
        for f in found:
            if f is None:
                reasons.append(None)
            elif f[1] == "duplicate":
                reasons.append(Reason("duplicate", f"of {f[0]}"))
            else:
                kinds = "/".join(self.params.hashes)
                reasons.append(Reason("near_duplicate", f"of {f[0]} (cluster of {self.cluster_size.get(f[0], 2)}, "
                                      f"{kinds} distance {f[2]})"))
        id_type = batch.schema.field(ID).type if ID in batch.column_names else pa.string()
        batch = set_column(batch, CLUSTER, pa.array(kept_for, id_type))
        return split_by_mask(batch, mask, reasons, extra={
            DUPLICATE_OF: [None if f is None else f[0] for f in found],
            DISTANCE: [None if f is None else f[2] for f in found]})
