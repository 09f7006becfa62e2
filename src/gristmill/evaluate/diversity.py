"""How varied a set of texts is: distinct-n, self-BLEU, compression ratio, embedding distance, Vendi score.

Every figure is about the set, not about one text:

* **distinct-n** (Li et al. 2016): unique n-grams / all n-grams, over every text's
  lowercased whitespace tokens (:func:`words`, the tokenization the divergence measures
  share). Higher is more varied. Depends on the set's size: compare sets of equal size.
* **self-BLEU** (Zhu et al. 2018, Texygen): the mean sentence BLEU of each text of a seeded
  sample against all the other sampled texts as references (sacrebleu, tokenizer 13a,
  effective order, exponential smoothing). 0-100; lower is more varied.
* **compression ratio** (Shaib et al. 2024): bytes of all texts joined by newlines / bytes
  of their gzip (level 9). Higher means more repeated material, so less varied.
* **mean pairwise embedding distance**: mean ``1 - cos`` over all pairs of a sample's
  all-MiniLM-L6-v2 vectors; and the mean distance to the nearest neighbour. Higher is more
  varied.
* **Vendi score** (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric
  for Machine Learning", TMLR): ``exp(-Σ λ_i log λ_i)`` over the eigenvalues ``λ_i`` of
  ``K / n``, with ``K`` the cosine-similarity kernel of the sample. It is the effective
  number of distinct items: 1 for ``n`` identical items, ``n`` for ``n`` mutually
  orthogonal ones. Computed on the embeddings, and on unigram+bigram count vectors (which
  needs no model).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DiversityResult", "compression_ratio", "distinct_n", "evaluate_diversity", "mean_pairwise_distance",
    "nearest_neighbour_distance", "ngram_counts", "ngram_vectors", "ngrams", "sample_texts", "self_bleu",
    "vendi_score", "words",
]


def words(text: str) -> list[str]:
    """Lowercased whitespace tokens (no punctuation splitting): the tokens of distinct-n and divergence."""
    return text.lower().split()


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of ``tokens`` in order (none when there are fewer than ``n`` tokens)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def ngram_counts(texts: Iterable[str], n: int) -> Counter[tuple[str, ...]]:
    """How often each n-gram of :func:`words` occurs over all ``texts`` (n-grams do not cross texts)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        counts.update(ngrams(words(text), n))
    return counts


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique n-grams / all n-grams over every text's :func:`words` (0 when there are none)."""
    counts = ngram_counts(texts, n)
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def sample_texts(texts: Sequence[str], k: int, seed: int = 0) -> list[str]:
    """``k`` texts drawn without replacement with ``seed``, in their original order (all when ``k >= len``)."""
    if len(texts) <= k:
        return list(texts)
    rng = np.random.default_rng(seed)
    return [texts[i] for i in sorted(rng.choice(len(texts), k, replace=False))]


def self_bleu(texts: Sequence[str]) -> tuple[float, list[float]]:
    """Mean sentence BLEU of each text against all the others, and each text's BLEU (0-100).

    Equal to ``BLEU(tokenize="13a", effective_order=True).sentence_score(texts[i], others)``
    for every ``i`` (sacrebleu's default exponential smoothing; every other text is a
    reference), but each text is tokenized and counted once, and the clipping count of an
    n-gram against "all texts but ``i``" comes from its two largest counts, so ``k`` texts cost
    O(k) n-gram work plus O(k²) integer length comparisons instead of O(k²) tokenizations.
    Needs at least 2 texts (else ``(0.0, [])``).
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    if len(texts) < 2:
        return 0.0, []
    metric = BLEU(tokenize="13a", effective_order=True)
    order = metric.max_ngram_order
    counted = [extract_all_word_ngrams(metric._preprocess_segment(t), 1, order) for t in texts]
    # per n-gram: (largest count, its text, second largest count)
    best: dict[tuple[str, ...], list[int]] = {}
    for i, (grams, _) in enumerate(counted):
        for g, c in grams.items():
            top = best.get(g)
            if top is None:
                best[g] = [c, i, 0]
            elif c > top[0]:
                top[2], top[0], top[1] = top[0], c, i
            elif c > top[2]:
                top[2] = c
    lengths = [n for _, n in counted]
    scores = []
    for i, (grams, hyp_len) in enumerate(counted):
        correct, total = [0] * order, [0] * order
        for g, c in grams.items():
            top = best[g]
            ref = top[2] if top[1] == i else top[0]
            total[len(g) - 1] += c
            correct[len(g) - 1] += min(c, ref)
        others = lengths[:i] + lengths[i + 1:]
        ref_len = metric._get_closest_ref_len(hyp_len, others)
        scores.append(float(metric._compute_score_from_stats([hyp_len, ref_len, *correct, *total]).score))
    return float(np.mean(scores)), scores


def compression_ratio(texts: Iterable[str]) -> float:
    """UTF-8 bytes of the texts joined by newlines / bytes of their gzip (level 9); 0 for no text."""
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance ``1 - cos`` over all pairs of distinct rows (0 below 2 rows)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    x = _unit_rows(vectors)
    sims = x @ x.T
    off = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - off)


def nearest_neighbour_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance (1 - cosine) from each row to its nearest other one (0 below 2 rows)."""
    if len(vectors) < 2:
        return 0.0
    x = _unit_rows(vectors)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean(1.0 - sims.max(axis=1)))


def vendi_score(vectors: np.ndarray) -> float:
    """Vendi score with the cosine-similarity kernel: ``exp`` of the Shannon entropy (nats) of the
    eigenvalues of ``K / n`` (Friedman & Dieng 2023). Rows are L2-normalised first; an all-zero row
    (e.g. a text with no n-grams) has zero similarity to everything, itself included, and so adds
    nothing. 0 for no rows."""
    n = len(vectors)
    if n == 0:
        return 0.0
    x = _unit_rows(vectors)
    # K / n and X^T X / n share their non-zero eigenvalues: use the smaller matrix.
    gram = (x @ x.T) if n <= x.shape[1] else (x.T @ x)
    lam = np.linalg.eigvalsh(gram / n)
    lam = lam[lam > 1e-12]
    if lam.size == 0:
        return 0.0
    lam = lam / lam.sum()  # exactly 1 already unless a row was all zero
    return float(np.exp(-np.sum(lam * np.log(lam))))


def ngram_vectors(texts: Sequence[str], orders: Sequence[int] = (1, 2)) -> np.ndarray:
    """Count vectors of each text's :func:`words` n-grams of the given orders, one row per text."""
    vocab: dict[tuple[str, ...], int] = {}
    rows: list[Counter[int]] = []
    for text in texts:
        toks = words(text)
        row: Counter[int] = Counter()
        for n in orders:
            for g in ngrams(toks, n):
                row[vocab.setdefault(g, len(vocab))] += 1
        rows.append(row)
    out = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, c in row.items():
            out[i, j] = c
    return out


@dataclass
class DiversityResult:
    """Every figure of :func:`evaluate_diversity`; embedding figures are ``None`` when not computed."""

    texts: int
    sample: int
    distinct_1: float
    distinct_2: float
    distinct_3: float
    self_bleu: float | None
    compression_ratio: float
    vendi_ngram: float
    embedding_distance: float | None = None
    nn_distance: float | None = None
    vendi_embedding: float | None = None
    words_mean: float = 0.0
    words_median: float = 0.0
    words_p5: float = 0.0
    words_p95: float = 0.0
    note: str | None = None
    lengths: list[int] = field(default_factory=list, repr=False)
    self_bleu_scores: list[float] = field(default_factory=list, repr=False)

    def figures(self) -> dict[str, Any]:
        """The scalar figures (no per-text lists)."""
        d = asdict(self)
        d.pop("lengths")
        d.pop("self_bleu_scores")
        return d


def evaluate_diversity(texts: Sequence[str], sample_size: int = 500, seed: int = 0,
                       embed: bool = True, encoder: Any = None) -> DiversityResult:
    """The diversity figures of ``texts``: distinct-n, compression and lengths over all of them;
    self-BLEU, Vendi and embedding distances over a seeded sample of ``sample_size``.

    ``encoder`` (anything with ``encode(texts) -> array``) defaults to
    :func:`gristmill.models.embed.load_sentence_encoder` when ``embed``; if that model is
    not installed the embedding figures are ``None`` and ``note`` says why.
    """
    sample = sample_texts(texts, sample_size, seed)
    lengths = [len(words(t)) for t in texts]
    sb, sb_scores = self_bleu(sample) if len(sample) >= 2 else (None, [])
    res = DiversityResult(
        texts=len(texts), sample=len(sample),
        distinct_1=distinct_n(texts, 1), distinct_2=distinct_n(texts, 2), distinct_3=distinct_n(texts, 3),
        self_bleu=sb, compression_ratio=compression_ratio(texts),
        vendi_ngram=vendi_score(ngram_vectors(sample)),
        lengths=lengths, self_bleu_scores=sb_scores,
    )
    if lengths:
        arr = np.asarray(lengths, dtype=np.float64)
        res.words_mean, res.words_median = float(arr.mean()), float(np.median(arr))
        res.words_p5, res.words_p95 = float(np.percentile(arr, 5)), float(np.percentile(arr, 95))
    if len(sample) < 2:
        res.note = "fewer than 2 texts: no self-BLEU or embedding figures"
        return res
    if not embed:
        res.note = "embedding figures not computed (--no-embed)"
        return res
    if encoder is None:
        from gristmill.models.embed import load_sentence_encoder
        from gristmill.models.locate import ModelNotInstalled

        try:
            encoder = load_sentence_encoder()
        except (ModelNotInstalled, ImportError) as exc:
            res.note = f"embedding figures not computed: {exc}"
            return res
    vectors = np.asarray(encoder.encode(sample))
    res.embedding_distance = mean_pairwise_distance(vectors)
    res.nn_distance = nearest_neighbour_distance(vectors)
    res.vendi_embedding = vendi_score(vectors)
    return res
