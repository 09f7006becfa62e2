"""Scores of generated text against references: BLEU, chrF, ROUGE-1/2/L, exact match, token F1.

* **BLEU** and **chrF**: corpus-level, from sacrebleu (BLEU with its ``13a`` tokenizer,
  the WMT standard; the sacrebleu signature is returned so the figure can be reproduced).
  Per-example BLEU is sacrebleu's sentence BLEU with effective order (short texts do not
  score 0 for lack of 4-grams), which is not what corpus BLEU averages to.
* **ROUGE-N** and **ROUGE-L** F-measure: ``rouge_score``'s definitions and default
  tokenization (lowercase, every run of characters outside ``[a-z0-9]`` is a separator, no
  stemming; :func:`gristmill.llm.rouge.tokenize`), implemented here so the
  ``rouge-score`` package (and its nltk/absl dependencies) is not needed at run time; the
  tests check agreement with ``rouge_score`` to 1e-6. The corpus figure is the mean of the
  per-example F-measures (what ``rouge_score``'s aggregator reports as its mid value).
  Non-ASCII letters are separators in this tokenization, as in ``rouge_score``: ROUGE is
  meaningless for text without ASCII letters and digits.
* **exact match** and **token F1**: SQuAD's normalization (lowercase, punctuation removed,
  the articles a/an/the removed, whitespace collapsed) then equality / bag-of-tokens F1.

A reference may be one string or a list of strings (several references): BLEU and chrF
use them all (sacrebleu's multi-reference form), the other scores take the best reference.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import LCSseq

from gristmill.llm.rouge import tokenize as rouge_tokenize

__all__ = ["ExampleScores", "GenerationResult", "Rouge", "bleu", "chrf", "evaluate_generation", "exact_match",
           "normalize_answer", "rouge_l", "rouge_n", "token_f1"]

BLEU_TOKENIZER = "13a"
Reference = str | Sequence[str]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization: lowercase, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _refs(reference: Reference) -> list[str]:
    return [reference] if isinstance(reference, str) else list(reference)


def exact_match(prediction: str, reference: Reference) -> bool:
    """Whether the normalized prediction equals a normalized reference."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(r) for r in _refs(reference))


def _token_f1(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def token_f1(prediction: str, reference: Reference) -> float:
    """SQuAD's token F1 of the normalized texts (best reference); 1 when both are empty."""
    pred = normalize_answer(prediction).split()
    return max(_token_f1(pred, normalize_answer(r).split()) for r in _refs(reference))


@dataclass(frozen=True)
class Rouge:
    """One ROUGE score, as ``rouge_score.scoring.Score``."""

    precision: float
    recall: float
    fmeasure: float


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _rouge_n_tokens(pred: list[str], ref: list[str], n: int) -> Rouge:
    cp = Counter(tuple(pred[i:i + n]) for i in range(len(pred) - n + 1))
    cr = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    overlap = sum(min(c, cp[g]) for g, c in cr.items())
    precision = overlap / max(sum(cp.values()), 1)
    recall = overlap / max(sum(cr.values()), 1)
    return Rouge(precision, recall, _fmeasure(precision, recall))


def _rouge_l_tokens(pred: list[str], ref: list[str]) -> Rouge:
    if not pred or not ref:
        return Rouge(0.0, 0.0, 0.0)
    lcs = LCSseq.similarity(pred, ref)
    precision, recall = lcs / len(pred), lcs / len(ref)
    return Rouge(precision, recall, _fmeasure(precision, recall))


def _best(scores: list[Rouge]) -> Rouge:
    return max(scores, key=lambda s: s.fmeasure)


def rouge_n(prediction: str, reference: Reference, n: int) -> Rouge:
    """ROUGE-N of ``prediction`` against ``reference`` (the best reference by F-measure), equal to
    ``RougeScorer([f"rouge{n}"]).score(reference, prediction)``."""
    pred = rouge_tokenize(prediction)
    return _best([_rouge_n_tokens(pred, rouge_tokenize(r), n) for r in _refs(reference)])


def rouge_l(prediction: str, reference: Reference) -> Rouge:
    """ROUGE-L (longest common subsequence, no summary splitting), equal to
    ``RougeScorer(["rougeL"]).score(reference, prediction)``."""
    pred = rouge_tokenize(prediction)
    return _best([_rouge_l_tokens(pred, rouge_tokenize(r)) for r in _refs(reference)])


def _ref_streams(references: Sequence[Reference]) -> list[list[str | None]]:
    """sacrebleu's reference streams: stream k holds each example's k-th reference (None when it has fewer)."""
    lists = [_refs(r) for r in references]
    width = max((len(r) for r in lists), default=1)
    return [[r[k] if k < len(r) else None for r in lists] for k in range(width)]


def bleu(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, Any]:
    """Corpus BLEU (sacrebleu, tokenizer 13a): score 0-100, n-gram precisions, brevity penalty, lengths
    and the sacrebleu signature."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=BLEU_TOKENIZER)
    s = metric.corpus_score(list(predictions), _ref_streams(references))
    return {"score": float(s.score), "precisions": [float(p) for p in s.precisions], "bp": float(s.bp),
            "sys_len": int(s.sys_len), "ref_len": int(s.ref_len), "tokenizer": BLEU_TOKENIZER,
            "signature": str(metric.get_signature())}


def chrf(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, Any]:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, beta 2), 0-100, and its signature."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    s = metric.corpus_score(list(predictions), _ref_streams(references))
    return {"score": float(s.score), "signature": str(metric.get_signature())}


@dataclass
class ExampleScores:
    """One example's scores (ROUGE as F-measure, BLEU as sacrebleu sentence BLEU with effective order)."""

    index: int
    bleu: float
    chrf: float
    rouge1: float
    rouge2: float
    rougeL: float
    exact_match: bool
    token_f1: float
    pred_words: int
    ref_words: int


@dataclass
class GenerationResult:
    """Corpus figures of :func:`evaluate_generation` and the per-example scores."""

    examples: int
    bleu: dict[str, Any]
    chrf: dict[str, Any]
    rouge1: float
    rouge2: float
    rougeL: float
    exact_match: float
    token_f1: float
    per_example: list[ExampleScores] = field(default_factory=list, repr=False)

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "per_example"}


def evaluate_generation(predictions: Sequence[str], references: Sequence[Reference]) -> GenerationResult:
    """Every score of ``predictions`` against ``references`` (same length, at least one example)."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no examples to score")
    sent_bleu = BLEU(tokenize=BLEU_TOKENIZER, effective_order=True)
    sent_chrf = CHRF()
    per: list[ExampleScores] = []
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        refs = _refs(ref)
        per.append(ExampleScores(
            index=i,
            bleu=float(sent_bleu.sentence_score(pred, refs).score),
            chrf=float(sent_chrf.sentence_score(pred, refs).score),
            rouge1=rouge_n(pred, refs, 1).fmeasure,
            rouge2=rouge_n(pred, refs, 2).fmeasure,
            rougeL=rouge_l(pred, refs).fmeasure,
            exact_match=exact_match(pred, refs),
            token_f1=token_f1(pred, refs),
            pred_words=len(pred.split()),
            ref_words=len(refs[0].split()) if refs else 0,
        ))
    n = len(per)
    return GenerationResult(
        examples=n, bleu=bleu(predictions, references), chrf=chrf(predictions, references),
        rouge1=sum(e.rouge1 for e in per) / n, rouge2=sum(e.rouge2 for e in per) / n,
        rougeL=sum(e.rougeL for e in per) / n, exact_match=sum(e.exact_match for e in per) / n,
        token_f1=sum(e.token_f1 for e in per) / n, per_example=per)
