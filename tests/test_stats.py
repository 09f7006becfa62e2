"""gristmill.stats against scipy.stats on fixed samples, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from gristmill import stats

SAMPLES = [
    [1.0, 2.0, 3.0],
    [10.026390897693064, 9.942895491874127],          # sft_curated_vs_raw: uncurated perplexity per seed
    [0.4360241625480505, 0.42841409691629956, 0.4407713498622589],  # wnut17_ner: baseline test F1 per seed
    [0.3, -1.2, 4.5, 2.2, 0.0, 7.1, -3.3, 2.9],
]


@pytest.mark.parametrize("xs", SAMPLES)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(xs: list[float], confidence: float) -> None:
    ci = stats.t_interval(xs, confidence)
    lo, hi = sps.t.interval(confidence, len(xs) - 1, loc=np.mean(xs), scale=sps.sem(xs))
    assert ci.estimate == pytest.approx(np.mean(xs), rel=1e-12)
    assert (ci.lo, ci.hi) == (pytest.approx(lo, rel=1e-10), pytest.approx(hi, rel=1e-10))
    assert ci.half_width == pytest.approx(sps.t.ppf(0.5 + confidence / 2, len(xs) - 1) * sps.sem(xs), rel=1e-10)
    assert (ci.n, ci.df, ci.method) == (len(xs), len(xs) - 1, "t")
    assert ci.sd == pytest.approx(np.std(xs, ddof=1)) and ci.se == pytest.approx(sps.sem(xs))


def test_t_interval_textbook_value_and_two_seeds_are_wide() -> None:
    ci = stats.t_interval([1.0, 2.0, 3.0])
    assert ci.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    # two seeds: t(0.975, 1) = 12.706, 6.5 times the 1.96 a normal interval would use
    two = stats.t_interval([10.026390897693064, 9.942895491874127])
    assert two.half_width == pytest.approx(12.7062047 * two.se, rel=1e-7)
    assert two.half_width == pytest.approx(0.5305, abs=1e-4)


def test_t_interval_one_value_has_no_interval() -> None:
    ci = stats.t_interval([5.0])
    assert (ci.estimate, ci.lo, ci.hi, ci.n, ci.half_width, ci.bounds) == (5.0, None, None, 1, None, None)
    assert "no interval" in ci.note
    assert ci.fmt(2) == "5.00"


def test_t_interval_zero_variance_is_a_point() -> None:
    ci = stats.t_interval([2.5, 2.5, 2.5])
    assert (ci.lo, ci.hi, ci.sd, ci.half_width) == (2.5, 2.5, 0.0, 0.0)
    assert "zero variance" in ci.note


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf"), 1.0]])
def test_t_interval_refuses_no_or_non_finite_values(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.t_interval(bad)


def test_confidence_must_be_a_probability() -> None:
    for fn in (lambda: stats.t_interval([1.0, 2.0], 1.0), lambda: stats.wilson(1, 2, 0.0),
               lambda: stats.bootstrap([1.0, 2.0], confidence=95)):
        with pytest.raises(ValueError, match="confidence"):
            fn()


PAIRS = [
    ([0.4420839656044512, 0.4369134515119917, 0.44387755102040816],     # wnut17 augmented vs 4-epoch baseline
     [0.4410480349344978, 0.43225083986562146, 0.4375]),
    ([9.910258804435712, 10.027671473379991], [10.026390897693064, 9.942895491874127]),  # sft curated vs uncurated
    ([5.1, 4.9, 6.2, 5.5, 5.0, 6.1], [4.0, 5.0, 5.2, 5.6, 4.1, 5.0]),
]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_paired_difference_matches_ttest_rel(a: list[float], b: list[float]) -> None:
    d = stats.paired_difference(a, b)
    ref = sps.ttest_rel(a, b)
    assert d.t == pytest.approx(ref.statistic, rel=1e-10)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    lo, hi = ref.confidence_interval(0.95)
    assert (d.lo, d.hi) == (pytest.approx(lo, rel=1e-10), pytest.approx(hi, rel=1e-10))
    assert d.estimate == pytest.approx(np.mean(np.subtract(a, b)))
    assert d.differences == tuple(x - y for x, y in zip(a, b)) and d.df == len(a) - 1
    # the paired difference is the t-interval of the differences
    assert d.half_width == pytest.approx(stats.t_interval(np.subtract(a, b)).half_width)


def test_paired_difference_published_wnut17_figure() -> None:
    """README: augmented minus the 4-epoch control, +0.004 ± 0.007 (t-interval), p ≈ 0.12."""
    d = stats.paired_difference(*PAIRS[0])
    assert round(d.estimate, 3) == 0.004 and round(d.half_width, 3) == 0.007 and round(d.p_value, 2) == 0.12


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_paired_difference_edge_cases() -> None:
    one = stats.paired_difference([2.0], [1.0])
    assert (one.estimate, one.lo, one.hi, one.t, one.p_value) == (1.0, None, None, None, None)
    assert "no interval" in one.note
    same = stats.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.estimate, same.lo, same.hi, same.t, same.p_value) == (0.0, 0.0, 0.0, None, None)
    shift = stats.paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    ref = sps.ttest_rel([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shift.t == ref.statistic == math.inf and shift.p_value == ref.pvalue == 0.0
    assert (shift.lo, shift.hi) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same length"):
        stats.paired_difference([1.0, 2.0], [1.0])


def test_bootstrap_mean_is_the_vectorised_percentile_bootstrap() -> None:
    xs = [3.1, 0.4, 2.2, 5.0, 1.7, 2.9, 4.4, 0.8]
    ci = stats.bootstrap(xs, resamples=500, seed=7)
    # the same draws, written out: one (resamples, n) index matrix from default_rng(seed)
    arr = np.asarray(xs)
    means = arr[np.random.default_rng(7).integers(0, len(xs), size=(500, len(xs)))].mean(axis=1)
    assert (ci.lo, ci.hi) == (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
    assert ci.estimate == pytest.approx(np.mean(xs)) and ci.n == len(xs)
    assert stats.bootstrap(xs, resamples=500, seed=7) == ci
    assert stats.bootstrap(xs, resamples=500, seed=8) != ci


@pytest.mark.parametrize("xs", [[3.1, 0.4, 2.2, 5.0, 1.7, 2.9, 4.4, 0.8], list(np.linspace(-2, 9, 40) ** 2)])
def test_bootstrap_agrees_with_scipy_percentile_bootstrap(xs: list[float]) -> None:
    ours = stats.bootstrap(xs, resamples=20000, seed=0)
    ref = sps.bootstrap((xs,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(1))
    scale = np.std(xs, ddof=1) / math.sqrt(len(xs))
    assert ours.lo == pytest.approx(ref.confidence_interval.low, abs=0.05 * scale)
    assert ours.hi == pytest.approx(ref.confidence_interval.high, abs=0.05 * scale)


def test_bootstrap_of_a_statistic_of_aligned_samples() -> None:
    """A token-weighted perplexity: documents' NLL sums and token counts resampled together."""
    nll = [12.0, 30.0, 7.5, 22.0, 15.0]
    tokens = [4, 10, 3, 8, 5]

    def ppl(n: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.exp(n.sum(axis=axis) / c.sum(axis=axis))

    ci = stats.bootstrap(nll, tokens, statistic=ppl, resamples=2000, seed=0)
    ref = sps.bootstrap((nll, tokens), ppl, paired=True, vectorized=True, n_resamples=2000, method="percentile",
                        rng=np.random.default_rng(0))
    assert ci.estimate == pytest.approx(math.exp(sum(nll) / sum(tokens)))
    assert ci.lo <= ci.estimate <= ci.hi
    assert ci.lo == pytest.approx(ref.confidence_interval.low, rel=0.02)
    assert ci.hi == pytest.approx(ref.confidence_interval.high, rel=0.02)
    with pytest.raises(ValueError, match="aligned"):
        stats.bootstrap(nll, tokens[:-1], statistic=ppl)
    with pytest.raises(ValueError, match="statistic"):
        stats.bootstrap(nll, tokens)


def test_bootstrap_edge_cases() -> None:
    one = stats.bootstrap([4.0])
    assert (one.estimate, one.lo, one.hi, one.bounds) == (4.0, None, None, None) and "no interval" in one.note
    flat = stats.bootstrap([2.0, 2.0, 2.0])
    assert (flat.lo, flat.hi) == (2.0, 2.0)
    with pytest.raises(ValueError):
        stats.bootstrap([])
    with pytest.raises(ValueError):
        stats.bootstrap()


@pytest.mark.parametrize(("k", "n"), [(5, 10), (808, 1508), (1, 3), (0, 10), (10, 10), (1, 1), (0, 1), (99, 100)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_wilson_matches_scipy_binomtest(k: int, n: int, confidence: float) -> None:
    ci = stats.wilson(k, n, confidence)
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ci.lo == pytest.approx(ref.low, abs=1e-12) and ci.hi == pytest.approx(ref.high, abs=1e-12)
    assert ci.estimate == k / n and 0.0 <= ci.lo <= ci.estimate <= ci.hi <= 1.0


def test_wilson_edges() -> None:
    assert stats.wilson(10, 10).hi == 1.0 and stats.wilson(10, 10).lo < 1.0   # all successes: not a point
    assert stats.wilson(0, 10).lo == 0.0 and stats.wilson(0, 10).hi > 0.0
    with pytest.raises(ValueError, match="no trials"):
        stats.wilson(0, 0)
    with pytest.raises(ValueError):
        stats.wilson(11, 10)
    with pytest.raises(ValueError):
        stats.wilson(1.5, 10)  # type: ignore[arg-type]


def test_interval_formatting_and_dict() -> None:
    ci = stats.t_interval([1.0, 2.0, 3.0])
    assert ci.fmt(2) == f"2.00 ± {4.302653 / math.sqrt(3):.2f}"
    assert stats.format_interval(None, None, None) == "-"
    d = ci.to_dict()
    assert d["half_width"] == ci.half_width and d["df"] == 2 and d["method"] == "t"
    assert stats.paired_difference([2.0, 3.5], [1.0, 2.0]).to_dict()["p_value"] is not None
