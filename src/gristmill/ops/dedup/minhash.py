"""``dedup.minhash``: MinHash-LSH near-duplicate clusters; the earliest document of each is kept."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Context, GlobalOp, Params, StepResult, split_by_mask
from gristmill.ops.dedup.exact import CLUSTER, DUPLICATE_OF
from gristmill.ops.text.minhash_lsh import cluster
from gristmill.ops.text.minhash_signature import MinHasher, ShingleSets, band_keys
from gristmill.ops.text.minhash_state import ShardState, content_key, write_state
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["MinHashDedup", "flag_probability", "probability_table"]

SIMILARITIES = (0.5, 0.6, 0.7, 0.8, 0.9)
FIT_FILE = "minhash_fit.json"


def flag_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two documents of Jaccard similarity ``s`` share a bucket: 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - s ** rows) ** bands


def probability_table(bands: int, rows: int, similarities: tuple[float, ...] = SIMILARITIES) -> list[tuple[float, float]]:
    """``(similarity, probability of being flagged)`` for each similarity."""
    return [(s, flag_probability(s, bands, rows)) for s in similarities]


class MinHashDedup(GlobalOp):
    """Drop near-duplicate documents found with MinHash-LSH; the earliest of each cluster stays.

    Each document's text is normalised (lowercase, accents stripped, digit runs -> 0,
    punctuation and symbols -> spaces), cut into shingles (word n-grams by default,
    datatrove's 5-grams; or character n-grams) and summarised by a signature of
    ``num_perm`` minimum hash values (see ``minhash_signature``). The signature is cut
    into ``bands`` bands of ``rows`` values; two documents whose values agree on a whole
    band become candidates. A pair of Jaccard similarity s becomes a candidate with
    probability 1 - (1 - s^rows)^bands (``gristmill ops show dedup.minhash`` prints it).
    The defaults (112 = 14 x 8, word 5-grams) are datatrove's and FineWeb's, so results
    compare one to one with theirs (and signing costs grow with num_perm: 112 is 12%
    cheaper than 128). About 0.72
    is the similarity at which the probability passes 1/2; a pair at 0.9 is a candidate
    99.97% of the time, at 0.8 92%, 0.7 57%, 0.6 21%, 0.5 5%. With ``jaccard_check``
    (off by default, as in datatrove) a candidate pair is joined only if the
    exact Jaccard similarity of its shingle sets reaches ``threshold``.

    Candidates form clusters by connected components (A~B and B~C put A, B and C in one
    cluster). The earliest document of a cluster in input order (shards, then rows) is
    kept; every other one is dropped with ``_duplicate_of`` = the kept id and the reason
    ``near_duplicate: of <kept id> (cluster of <n>)``. Every row gets ``dedup.cluster``,
    the id of the document kept for its cluster (its own id when it is alone). Documents
    with no tokens (null or empty text) are never duplicates.

    State: each shard's summary writes its band keys (``bands`` x 8 bytes per document)
    and ids to the step's scratch directory; ``fit`` reads one band at a time across
    shards, so memory holds one band's keys, not the signatures. On the 14,877-document
    Gutenberg benchmark (3 KB documents) that is 115 bytes of state per document with the
    defaults, and 1,990 with ``jaccard_check``, which also stores each document's shingle
    set (4 bytes per distinct shingle). The fitted operator keeps only the ids of
    clustered rows.
    """

    name = "dedup.minhash"
    version = "1"
    idempotent = True

    class Params(Params):
        column: str = Field("text", description="String column compared between rows.")
        num_perm: int = Field(112, ge=1, le=4096,
                              description="Permutations (hash functions) in a signature; must equal bands x rows.")
        bands: int = Field(14, ge=1, description="LSH bands: a pair that agrees on every row of any one band is a candidate.")
        rows: int = Field(8, ge=1, description="Signature values per band.")
        shingle: Literal["word", "char"] = Field("word", description="Shingles are word n-grams or character n-grams.")
        shingle_size: int = Field(5, ge=1, le=255, description="n of the n-grams (words or characters).")
        lowercase: bool = Field(True, description="Lowercase the text before shingling.")
        normalize: bool = Field(True, description="Strip accents, turn digit runs into 0 and punctuation/symbols "
                                "into spaces before shingling; otherwise only whitespace separates words.")
        seed: int = Field(1, ge=0, description="Seed of the permutations; the same seed gives the same signatures.")
        jaccard_check: bool = Field(False, description="Join a candidate pair only if the exact Jaccard similarity "
                                    "of its shingle sets reaches threshold (stores shingle sets in the scratch directory).")
        threshold: float = Field(0.7, ge=0.0, le=1.0,
                                 description="Jaccard similarity a candidate pair needs when jaccard_check is on.")

        @model_validator(mode="after")
        def _bands_times_rows(self) -> MinHashDedup.Params:
            if self.bands * self.rows != self.num_perm:
                options = [f"bands={b} rows={self.num_perm // b}" for b in range(1, self.num_perm + 1)
                           if self.num_perm % b == 0 and 2 <= self.num_perm // b <= 32][-4:]
                hint = f"; for num_perm={self.num_perm} e.g. {', '.join(options)}" if options else ""
                raise ValueError(f"bands * rows must equal num_perm: {self.bands} * {self.rows} = "
                                 f"{self.bands * self.rows} != {self.num_perm}{hint}")
            return self

    example_params = {"num_perm": 32, "bands": 8, "rows": 4, "shingle_size": 2}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._hasher: MinHasher | None = None
        # fit state: id of each clustered non-representative row -> representative id; cluster sizes
        self.duplicate_of: dict[Any, Any] | None = None
        self.cluster_size: dict[Any, int] = {}
        self.fit_stats: dict[str, Any] = {}

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [CLUSTER]

    def setup(self, ctx: Context) -> None:
        p = self.params
        self._hasher = MinHasher(p.num_perm, p.shingle, p.shingle_size, p.seed, p.lowercase, p.normalize)

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_hasher": None}

    def describe_extra(self) -> str:
        """The probability of being flagged at Jaccard 0.5-0.9 for this operator's bands and rows."""
        return flag_table_text(self.params.bands, self.params.rows)

    def summarize(self, batch: pa.Table) -> ShardState:
        """Sign every row, write the band keys (and shingle sets) of rows with a signature."""
        self.ensure_setup()
        p = self.params
        texts = column_list(batch, p.column)
        sig, has, sets = self._hasher.sketch(texts, sets=p.jaccard_check)
        keep = np.flatnonzero(has)
        if sets is not None and keep.size != has.size:
            sets = _subset(sets, keep)
        keys = band_keys(sig[keep], p.bands, p.rows)
        key = content_key(p.model_dump_json(), column_list(batch, ID), texts)
        return write_state(self.scratch, key, batch.num_rows, keys, batch.column(ID).take(pa.array(keep)), sets)

    def fit(self, summaries: list[Any]) -> None:
        t0 = time.perf_counter()
        p = self.params
        states = [s for s in summaries if s is not None and s.docs]
        found = cluster(states, p.bands, p.threshold if p.jaccard_check else None)
        ids = _ids_at(states, found.members)
        rep = {int(g): ids[int(g)] for g in np.unique(found.root).tolist()}
        self.duplicate_of = {ids[g]: rep[r] for g, r in zip(found.members.tolist(), found.root.tolist()) if g != r}
        sizes = np.unique(found.root, return_counts=True)
        self.cluster_size = {rep[int(r)]: int(c) for r, c in zip(*sizes)}
        docs = sum(s.rows for s in summaries if s is not None)
        state_bytes = sum(s.nbytes() for s in states)
        self.fit_stats = {
            "documents": docs, "signed": sum(s.docs for s in states), **found.stats,
            "clusters": len(self.cluster_size), "duplicates": len(self.duplicate_of),
            "state_bytes": state_bytes, "state_bytes_per_document": state_bytes / docs if docs else 0.0,
            "fit_seconds": time.perf_counter() - t0,
        }
        if self.scratch is not None:
            (Path(self.scratch) / FIT_FILE).write_text(json.dumps(self.fit_stats, indent=2))

    def apply(self, batch: pa.Table) -> StepResult:
        if self.duplicate_of is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        ids = column_list(batch, ID)
        kept_for = [self.duplicate_of.get(rid, rid) for rid in ids]
        mask = [k == rid for k, rid in zip(kept_for, ids)]
        reasons = [None if m else Reason("near_duplicate", f"of {k} (cluster of {self.cluster_size.get(k, 2)})")
                   for m, k in zip(mask, kept_for)]
        batch = set_column(batch, CLUSTER, pa.array(kept_for, batch.schema.field(ID).type))
        return split_by_mask(batch, mask, reasons,
                             extra={DUPLICATE_OF: [None if m else k for m, k in zip(mask, kept_for)]})


def flag_table_text(bands: int, rows: int) -> str:
    """A plain-text table of the probability of being flagged (no markup: rich prints it as is)."""
    threshold = (1.0 / bands) ** (1.0 / rows)
    lines = [f"LSH with {bands} bands x {rows} rows: probability that a pair of Jaccard similarity s "
             f"becomes a candidate, 1 - (1 - s^{rows})^{bands}; it passes 1/2 near s = {threshold:.2f}",
             "  Jaccard s   P(flagged)"]
    lines += [f"  {s:>9.1f}   {prob:>10.3f}" for s, prob in probability_table(bands, rows)]
    return "\n".join(lines)


def _subset(sets: ShingleSets, keep: np.ndarray) -> ShingleSets:
    """The shingle sets of documents ``keep`` only."""
    counts = np.diff(sets.offsets)[keep]
    offsets = np.zeros(keep.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    idx = np.repeat(sets.offsets[keep] - offsets[:-1], counts) + np.arange(offsets[-1])
    return ShingleSets(sets.values[idx], offsets)


def _ids_at(states: list[ShardState], globals_: np.ndarray) -> dict[int, Any]:
    """Ids of the documents at global indices ``globals_`` (sorted), reading each shard's ids once."""
    out: dict[int, Any] = {}
    base = 0
    for s in states:
        lo, hi = np.searchsorted(globals_, [base, base + s.docs])
        if hi > lo:
            ids = s.ids()
            for g in globals_[lo:hi].tolist():
                out[g] = ids[g - base]
        base += s.docs
    return out
