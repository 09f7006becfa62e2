"""The fast ROUGE-L gate against rouge_score itself: same tokens, same F1 bit for bit, same decisions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz.distance import Indel
from rouge_score import rouge_scorer, tokenize as rs_tokenize

from gristmill.llm.rouge import RougeLIndex, mean_pairwise_rouge_l, rouge_l_f1, tokenize

SEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

ODD = ["", "   ", "!!!", "İstanbul STRASSE straße", "Ǆemal café naïve", "x²+y² = 10", "ＡＢＣ full-width",
       "tab\tand\nnewline", "1,000.5 apples-and-oranges", "数据 data 数据", "K (Kelvin sign) vs K"]


def _instructions() -> list[str]:
    return [json.loads(line)["instruction"] for line in SEEDS.read_text(encoding="utf-8").splitlines()]


def _variants(texts: list[str], n: int, seed: int) -> list[str]:
    """Texts made by swapping, dropping and repeating words of ``texts`` (many near-duplicates)."""
    rng = random.Random(seed)
    words = [w for t in texts for w in t.split()]
    out = []
    for _ in range(n):
        w = rng.choice(texts).split()
        for _ in range(rng.randint(0, 5) if w else 0):
            op, i = rng.random(), rng.randrange(len(w))
            if op < 0.4:
                w[i] = rng.choice(words)
            elif op < 0.7 and len(w) > 1:
                del w[i]
            else:
                w.insert(i, rng.choice(words))
        out.append(" ".join(w))
    return out


def _reference(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def test_tokenizer_is_rouge_scores() -> None:
    for text in _instructions() + ODD:
        assert tokenize(text) == rs_tokenize.tokenize(text, None)


def test_f1_equals_rouge_score_bit_for_bit_on_thousands_of_pairs() -> None:
    texts = _instructions() + ODD
    pool = texts + _variants(texts, 400, seed=1)
    rng = random.Random(7)
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(4000)]
    pairs += [(t, t) for t in ODD] + [(a, b) for a in ODD for b in ODD]
    for a, b in pairs:
        assert rouge_l_f1(a, b) == _reference(a, b), (a, b)


def test_f1_is_rapidfuzz_normalized_indel_similarity() -> None:
    texts = _variants(_instructions(), 500, seed=3)
    rng = random.Random(5)
    for _ in range(2000):
        a, b = tokenize(rng.choice(texts)), tokenize(rng.choice(texts))
        assert Indel.normalized_similarity(a, b) == pytest.approx(_reference(" ".join(a), " ".join(b)), abs=1e-12)


def test_index_scores_and_max_scores_match_rouge_score() -> None:
    pool = _instructions()[:60]
    queries = _variants(pool, 50, seed=11) + ODD
    index = RougeLIndex(pool)
    for q in queries[:10]:
        assert index.scores(q).tolist() == [_reference(q, p) for p in pool]
    best, where = index.max_scores(queries)
    for q, b, w in zip(queries, best, where):
        ref = [_reference(q, p) for p in pool]
        assert b == max(ref)
        assert ref[w] == b


def _naive_gate(pool: list[str], candidates: list[str], threshold: float) -> list[bool]:
    """The reference Self-Instruct loop with rouge_score (bootstrap_instructions.py)."""
    pool, kept = list(pool), []
    for c in candidates:
        scores = [_reference(c, p) for p in pool]
        ok = not scores or max(scores) <= threshold
        kept.append(ok)
        if ok:
            pool.append(c)
    return kept


@pytest.mark.parametrize("block", [7, 256])
def test_gate_makes_the_same_decisions_as_the_reference_loop(block: int) -> None:
    seeds = _instructions()[:40]
    candidates = _variants(seeds, 150, seed=2)
    candidates += candidates[:10]  # exact repeats must be dropped
    index = RougeLIndex(seeds, block=block)
    verdicts = index.gate(candidates, threshold=0.7)
    assert [v.kept for v in verdicts] == _naive_gate(seeds, candidates, 0.7)
    assert 0 < sum(v.kept for v in verdicts) < len(candidates)
    assert len(index) == len(seeds) + sum(v.kept for v in verdicts)
    for c, v in zip(candidates, verdicts):
        assert v.max_score == _reference(c, index.texts[v.most_similar])


def test_gate_threshold_is_inclusive_at_exactly_point_seven() -> None:
    # 7 shared of 10 + 10 tokens: F1 = 0.7 exactly as rouge_score computes it; the paper keeps <= 0.7
    a = "a b c d e f g h i j"
    b = "a b c d e f g x y z"
    assert rouge_l_f1(a, b) == _reference(a, b)
    verdict = RougeLIndex([a]).gate([b], threshold=_reference(a, b))[0]
    assert verdict.kept


def test_empty_pool_and_empty_text() -> None:
    index = RougeLIndex()
    v = index.gate(["", "write a haiku about rain", "write a haiku about rain"])
    assert [x.kept for x in v] == [True, True, False]
    assert v[0].max_score == 0.0 and v[0].most_similar == -1
    assert index.max_scores([]) == (pytest.approx(np.zeros(0)), pytest.approx(np.zeros(0)))


def test_mean_pairwise_rouge_l() -> None:
    texts = _instructions()[:30]
    ref = [_reference(a, b) for i, a in enumerate(texts) for j, b in enumerate(texts) if i != j]
    assert mean_pairwise_rouge_l(texts) == pytest.approx(sum(ref) / len(ref))
    assert mean_pairwise_rouge_l(["same words here"] * 4) == 1.0
    assert mean_pairwise_rouge_l(["one"]) == 0.0
