"""BLEU / chrF / ROUGE / exact match of generated text against references."""

from __future__ import annotations

import random

import pytest

from gristmill.evaluate.generation_metrics import (
    bleu, chrf, evaluate_generation, exact_match, normalize_answer, rouge_l, rouge_n, token_f1,
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A stitch in time saves nine, or so they say.",
    "Colourless green ideas sleep furiously in Zürich.",
    "It's 42 degrees -- don't go outside!",
]


def test_bleu_of_identical_text_is_100_and_of_disjoint_text_is_0() -> None:
    same = bleu(SENTENCES, SENTENCES)
    assert same["score"] == pytest.approx(100.0)
    assert same["bp"] == 1.0 and same["tokenizer"] == "13a"
    assert "tok:13a" in same["signature"] and "nrefs:1" in same["signature"]
    disjoint = bleu(["alpha beta gamma delta epsilon"], ["one two three four five"])
    assert disjoint["score"] == 0.0
    assert chrf(SENTENCES, SENTENCES)["score"] == pytest.approx(100.0)


def test_bleu_takes_several_references_per_example() -> None:
    one = bleu(["the cat is on the mat"], ["there is a cat on the mat"])
    two = bleu(["the cat is on the mat"], [["there is a cat on the mat", "the cat is on the mat"]])
    assert two["score"] == pytest.approx(100.0) and one["score"] < 50
    ragged = bleu(["a b c d", "e f g h"], [["a b c d", "x"], ["e f g h"]])  # 2 refs, then 1
    assert ragged["score"] == pytest.approx(100.0) and "nrefs:var" in ragged["signature"]


@pytest.mark.parametrize(("text", "norm"), [
    ("The Cat!", "cat"),
    ("  an   apple,  a pear ", "apple pear"),
    ("Theatre", "theatre"),            # articles only as whole words
    ("U.S.A.", "usa"),
    ("", ""),
])
def test_squad_normalization(text: str, norm: str) -> None:
    assert normalize_answer(text) == norm


def test_exact_match_and_token_f1() -> None:
    assert exact_match("The Eiffel Tower.", "eiffel tower")
    assert not exact_match("Eiffel", "eiffel tower")
    assert exact_match("paris", ["London", "Paris!"])
    assert token_f1("eiffel", "the eiffel tower") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_rouge_hand_computed() -> None:
    # pred: the cat sat ; ref: the cat ran away  -> unigram overlap 2, P=2/3, R=2/4
    r1 = rouge_n("The cat sat", "the cat ran away", 1)
    assert (r1.precision, r1.recall) == (pytest.approx(2 / 3), pytest.approx(0.5))
    assert r1.fmeasure == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert rouge_n("The cat sat", "the cat ran away", 2).precision == pytest.approx(1 / 2)
    assert rouge_l("a b c d", "a x c d").fmeasure == pytest.approx(0.75)
    assert rouge_l("", "a b").fmeasure == 0.0


def test_rouge_agrees_with_rouge_score() -> None:
    from rouge_score import rouge_scorer  # the test extra installs it

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rng = random.Random(0)
    vocab = "the a cat dog sat ran on mat park Über café 42 x-ray it's , . ! running runs".split()
    pairs = [(" ".join(rng.choices(vocab, k=rng.randint(0, 15))), " ".join(rng.choices(vocab, k=rng.randint(0, 15))))
             for _ in range(150)] + [(a, b) for a in SENTENCES for b in SENTENCES]
    for pred, ref in pairs:
        want = scorer.score(ref, pred)
        got = {"rouge1": rouge_n(pred, ref, 1), "rouge2": rouge_n(pred, ref, 2), "rougeL": rouge_l(pred, ref)}
        for key, g in got.items():
            w = want[key]
            assert (g.precision, g.recall, g.fmeasure) == (
                pytest.approx(w.precision, abs=1e-6), pytest.approx(w.recall, abs=1e-6),
                pytest.approx(w.fmeasure, abs=1e-6)), (key, pred, ref)


def test_evaluate_generation_corpus_and_per_example() -> None:
    preds = ["The cat sat on the mat.", "Paris", "a dog"]
    refs: list = ["the cat sat on the mat", ["Paris, France", "paris"], "the cat"]
    res = evaluate_generation(preds, refs)
    assert res.examples == 3
    assert res.exact_match == pytest.approx(2 / 3)
    assert [e.exact_match for e in res.per_example] == [True, True, False]
    assert res.per_example[2].rouge1 == 0.0 and res.per_example[0].rougeL == 1.0
    assert res.rougeL == pytest.approx(sum(e.rougeL for e in res.per_example) / 3)
    assert 0 < res.bleu["score"] < 100
    with pytest.raises(ValueError, match="2 predictions but 1"):
        evaluate_generation(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        evaluate_generation([], [])
