"""KL and Jensen-Shannon divergence between n-gram distributions of two datasets."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from gristmill.evaluate.diversity import ngram_counts
from gristmill.evaluate.divergence import (
    divergence, evaluate_divergence, js_divergence, kl_by_alpha, kl_divergence, smoothed,
)

A = ["the cat sat on the mat", "the dog sat on the log"]
B = ["stocks rose on monday", "the bank held rates", "the cat sat"]


def test_kl_and_js_of_identical_data_are_zero() -> None:
    for d in evaluate_divergence(A, list(A), orders=(1, 2)):
        assert d.kl_ab == pytest.approx(0.0, abs=1e-12) and d.kl_ba == pytest.approx(0.0, abs=1e-12)
        assert d.js == pytest.approx(0.0, abs=1e-12)
        assert d.shared_types == d.types_a == d.types_b


def test_js_is_symmetric_bounded_and_1_for_disjoint_data() -> None:
    ab = evaluate_divergence(A, B)
    ba = evaluate_divergence(B, A)
    for x, y in zip(ab, ba):
        assert x.js == pytest.approx(y.js) and 0 < x.js < 1
        assert x.kl_ab == pytest.approx(y.kl_ba) and x.kl_ba == pytest.approx(y.kl_ab)
    disjoint = evaluate_divergence(["a b c"], ["x y z"], orders=(1,))[0]
    assert disjoint.js == pytest.approx(1.0)


def test_hand_computed_values() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log2(2) + 0.5 * math.log2(0.5 / 0.75))
    assert kl_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == math.inf
    m = (p + q) / 2
    assert js_divergence(p, q) == pytest.approx(0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m))
    assert smoothed(np.array([3.0, 0.0]), 1.0) == pytest.approx([0.8, 0.2])  # (3+1)/(3+2), (0+1)/(3+2)


def test_divergence_matches_its_definition_and_ranks_contributors() -> None:
    ca, cb = Counter({("a",): 8, ("b",): 2}), Counter({("a",): 2, ("c",): 8})
    d = divergence(ca, cb, 1, alpha=0.5, top=3)
    # vocabulary sorted: a, b, c
    pa, pb = smoothed(np.array([8.0, 2, 0]), 0.5), smoothed(np.array([2.0, 0, 8]), 0.5)
    assert d.kl_ab == pytest.approx(kl_divergence(pa, pb)) and d.kl_ba == pytest.approx(kl_divergence(pb, pa))
    assert d.js == pytest.approx(js_divergence(np.array([0.8, 0.2, 0]), np.array([0.2, 0, 0.8])))
    assert [c.ngram for c in d.top][0] == "c"  # the largest JS term: 0.8 of B, absent from A
    assert sum(c.js for c in d.top) == pytest.approx(d.js)
    assert (d.tokens_a, d.types_a, d.types_b, d.shared_types) == (10, 2, 2, 1)


def test_kl_depends_on_alpha_and_js_does_not() -> None:
    ca, cb = ngram_counts(A, 1), ngram_counts(B, 1)
    rows = kl_by_alpha(ca, cb, alphas=(1.0, 0.01, 0.0001))
    assert rows[0][1] < rows[1][1] < rows[2][1]  # less smoothing -> missing n-grams cost more
    assert divergence(ca, cb, 1, alpha=1.0).js == divergence(ca, cb, 1, alpha=1e-4).js


def test_empty_side_and_bad_alpha_are_refused() -> None:
    with pytest.raises(ValueError, match="second"):
        divergence(Counter({("a",): 1}), Counter(), 1)
    with pytest.raises(ValueError, match="alpha"):
        divergence(Counter({("a",): 1}), Counter({("a",): 1}), 1, alpha=0)
