from __future__ import annotations

import pytest

from gristmill.experiments import text_stats as ts


def test_words_lowercase_keep_inner_apostrophes():
    assert ts.words("Thou'rt a KING, sir!  'Tis") == ["thou'rt", "a", "king", "sir", "tis"]


def test_distinct_n_counts_within_documents_only():
    # "a b" twice, "b a" never (it would only appear across the document boundary)
    assert ts.distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)
    assert ts.distinct_n(["a b c", "d e f"], 1) == 1.0
    assert ts.distinct_n(["a a a a"], 1) == pytest.approx(1 / 4)
    assert ts.distinct_n(["a"], 2) is None


def test_rare_ngrams_bounds_are_inclusive():
    real = ["x y " * 4, "p q", "p q", "p q", "r s"]  # x y: 4 times (plus y x 3 times), p q: 3, r s: 1
    rare = ts.rare_ngrams(real, n=2, min_count=1, max_count=3)
    assert ("p", "q") in rare and ("r", "s") in rare and ("y", "x") in rare
    assert ("x", "y") not in rare


def test_tail_coverage_on_hand_made_texts():
    rare = {("old", "king"), ("pale", "moon"), ("sweet", "rose"), ("dark", "night")}
    assert ts.tail_coverage(rare, ["the old king saw the pale moon"]) == pytest.approx(2 / 4)
    # a rare pair split across documents does not count
    assert ts.tail_coverage(rare, ["the old", "king"]) == 0.0
    assert ts.tail_coverage(rare, []) == 0.0
    assert ts.tail_coverage(set(), ["anything"]) is None


def test_mean_frequency_rank_and_unseen_words():
    ranks = ts.FrequencyRanks.of(["a a a b b c"])
    assert ranks.rank("a") == 1 and ranks.rank("b") == 2 and ranks.rank("c") == 3 and ranks.rank("zzz") == 4
    r = ts.mean_frequency_rank(ranks, ["a b", "zzz a"])
    assert r["mean_rank"] == pytest.approx((1 + 2 + 4 + 1) / 4)
    assert r["oov_share"] == pytest.approx(1 / 4)
    assert ts.mean_frequency_rank(ranks, [""])["mean_rank"] is None


def test_length_stats_quantiles():
    s = ts.length_stats(["a", "a b", "a b c", "", "a b c d e"])
    assert s["docs"] == 5 and s["p50"] == 2 and s["mean"] == pytest.approx(11 / 5)
    assert s["empty_share"] == pytest.approx(0.2) and s["p90"] == pytest.approx(4.2)
    assert ts.length_stats([])["mean"] is None

