"""Confidence intervals and tests: the one implementation every experiment, command and report uses.

* :func:`t_interval`: the mean of a few values (usually one figure per seed) with its Student-t
  interval, ``n - 1`` degrees of freedom. With 2 or 3 seeds the t quantile is 12.71 or 4.30, not
  1.96: an interval of 1.96 standard errors over so few values is several times too narrow.
* :func:`paired_difference`: the mean difference of paired runs (same seed, same prompt, ...),
  its t-interval and the two-sided p-value of the paired t-test (``scipy.stats.ttest_rel``).
* :func:`bootstrap`: the percentile bootstrap of any statistic of one or more aligned samples,
  seeded and vectorised (one ``(resamples, n)`` index matrix).
* :func:`wilson`: the Wilson score interval of a proportion ``k / n``.

Each returns an :class:`Interval` (:class:`PairedDifference` adds the test). One value, or
one pair, gives an estimate and *no* interval (``lo`` and ``hi`` are ``None`` and ``note`` says
why): a spread cannot be estimated from a single value. No data at all raises ``ValueError``.
Values must be finite; drop missing ones before calling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Interval", "PairedDifference", "bootstrap", "format_interval", "paired_difference", "t_interval",
           "wilson"]

ONE_VALUE = "one value: no interval (the spread cannot be estimated from a single value)"


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided confidence interval.

    ``lo`` / ``hi`` are ``None`` when no interval can be given (``note`` says why). ``sd``,
    ``se`` and ``df`` are filled by the t-based functions only.
    """

    estimate: float
    lo: float | None
    hi: float | None
    n: int
    confidence: float
    method: str
    sd: float | None = None
    se: float | None = None
    df: int | None = None
    note: str = ""

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (``None`` without an interval); the ``h`` of ``estimate ± h``."""
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2

    @property
    def bounds(self) -> list[float] | None:
        """``[lo, hi]`` or ``None``: the JSON shape the run directories use for ``ci95``."""
        return None if self.lo is None or self.hi is None else [self.lo, self.hi]

    def fmt(self, digits: int = 3) -> str:
        """``estimate ± half-width`` (only the estimate when there is no interval)."""
        return format_interval(self.estimate, self.lo, self.hi, digits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``half_width``."""
        return {**asdict(self), "half_width": self.half_width}


@dataclass(frozen=True)
class PairedDifference(Interval):
    """The mean of paired differences ``a - b`` with its t-interval and the paired t-test.

    ``t`` and ``p_value`` (two-sided) are ``None`` with one pair, and when every difference is 0
    (no variation at all: the test is undefined). When every difference is the same non-zero
    value, ``t`` is infinite and ``p_value`` is 0, as in ``scipy.stats.ttest_rel``.
    """

    t: float | None = None
    p_value: float | None = None
    differences: tuple[float, ...] = ()


def format_interval(estimate: float | None, lo: float | None, hi: float | None, digits: int = 3) -> str:
    """``mean ± half-width`` with ``digits`` decimals; just the mean without bounds; ``-`` without a mean."""
    if estimate is None:
        return "-"
    if lo is None or hi is None:
        return f"{estimate:.{digits}f}"
    return f"{estimate:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def _finite(values: Sequence[float] | np.ndarray, what: str = "values") -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"no {what}: nothing to estimate")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite (drop missing values first): {arr.tolist()}")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _t_parts(arr: np.ndarray, confidence: float) -> tuple[float, float, float, float, int]:
    """(mean, sd, se, half-width, df) of the Student-t interval of ``arr`` (at least 2 values)."""
    from scipy.stats import t

    n = arr.size
    mean = float(arr.mean())
    sd = float(arr.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    return mean, sd, se, half, n - 1


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its Student-t interval: ``mean ± t(1 - a/2, n - 1) * sd / sqrt(n)``.

    One value: the mean with no interval. Zero variance: an interval of width 0 (every value
    is the mean; with more runs that may not last). Raises ``ValueError`` for no values or a
    non-finite one.
    """
    _check_confidence(confidence)
    arr = _finite(values)
    if arr.size == 1:
        return Interval(float(arr[0]), None, None, 1, confidence, "t", note=ONE_VALUE)
    mean, sd, se, half, df = _t_parts(arr, confidence)
    note = "zero variance: an interval of width 0" if sd == 0 else ""
    return Interval(mean, mean - half, mean + half, int(arr.size), confidence, "t", sd, se, df, note)


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      confidence: float = 0.95) -> PairedDifference:
    """Mean of ``a[i] - b[i]`` over pairs (same seed, same prompt), its t-interval and paired t-test p-value.

    Pairing removes what both runs of a pair share (the seed's data order, the prompt's
    difficulty), so this is the comparison to make whenever runs are paired.
    """
    _check_confidence(confidence)
    xa, xb = _finite(a, "a"), _finite(b, "b")
    if xa.size != xb.size:
        raise ValueError(f"paired samples must have the same length, got {xa.size} and {xb.size}")
    d = xa - xb
    diffs = tuple(float(x) for x in d)
    if d.size == 1:
        return PairedDifference(diffs[0], None, None, 1, confidence, "paired t",
                                note=ONE_VALUE.replace("value", "pair"), differences=diffs)
    mean, sd, se, half, df = _t_parts(d, confidence)
    if sd == 0:
        if mean == 0:
            return PairedDifference(mean, mean, mean, int(d.size), confidence, "paired t", sd, se, df,
                                    "every difference is 0: no test", differences=diffs)
        return PairedDifference(mean, mean, mean, int(d.size), confidence, "paired t", sd, se, df,
                                "every difference is the same: zero variance", t=math.copysign(math.inf, mean),
                                p_value=0.0, differences=diffs)
    from scipy.stats import t as t_dist

    tstat = mean / se
    p = float(2 * t_dist.sf(abs(tstat), df))
    return PairedDifference(mean, mean - half, mean + half, int(d.size), confidence, "paired t", sd, se, df,
                            t=float(tstat), p_value=p, differences=diffs)


def bootstrap(*samples: Sequence[float] | np.ndarray, statistic: Callable[..., Any] | None = None,
              resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of ``statistic`` over ``samples`` (default: the mean of one sample).

    Several samples must be aligned (one item each per unit, e.g. a document's NLL and its
    token count) and are resampled together with the same indices. ``statistic(*arrays,
    axis=-1)`` must reduce the last axis: it receives arrays of shape ``(resamples, n)``, so
    every resample is computed at once. The draws are ``numpy.random.default_rng(seed).integers(0,
    n, size=(resamples, n))``: the same seed gives the same interval. One item: the statistic
    with no interval.
    """
    _check_confidence(confidence)
    if not samples:
        raise ValueError("bootstrap needs at least one sample")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    arrays = [_finite(s, "sample") for s in samples]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise ValueError(f"bootstrap samples must be aligned, got lengths {[a.size for a in arrays]}")
    if statistic is None:
        if len(arrays) != 1:
            raise ValueError("give a statistic for more than one sample")
        statistic = np.mean
    estimate = float(statistic(*arrays, axis=-1))
    method = f"percentile bootstrap ({resamples} resamples, seed {seed})"
    if n == 1:
        return Interval(estimate, None, None, 1, confidence, method, note=ONE_VALUE)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    stats = np.asarray(statistic(*(a[idx] for a in arrays), axis=-1), dtype=np.float64)
    lo, hi = np.percentile(stats, [50 - 50 * confidence, 50 + 50 * confidence])  # 2.5 and 97.5 exactly at 95%
    return Interval(estimate, float(lo), float(hi), int(n), confidence, method)


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of the proportion ``k / n`` (``k`` successes in ``n`` trials).

    Unlike ``p ± z * sqrt(p(1-p)/n)`` it stays inside [0, 1] and is not empty at ``k = 0`` or
    ``k = n``. ``z`` is the exact normal quantile (1.95996 for 95%). Raises ``ValueError`` for
    ``n = 0``.
    """
    from scipy.stats import norm

    _check_confidence(confidence)
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise ValueError(f"k and n must be integers, got {k!r} and {n!r}")
    k, n = int(k), int(n)
    if n <= 0:
        raise ValueError(f"no trials (n = {n}): no proportion to estimate")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n], got k={k}, n={n}")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, lo, hi, n, confidence, "wilson")
