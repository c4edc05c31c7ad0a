"""Percentile-bootstrap confidence intervals for per-case scores, alone or paired between two training sets.

Paired intervals resample the PAIRS (the two training sets' scores on the same fold, seed and test case)
jointly, so case difficulty, shared by both members of a pair, cancels out of the interval. Every function
is deterministic given ``seed`` (:func:`numpy.random.default_rng`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Interval", "bootstrap_ci", "paired_ratio_ci", "paired_difference_ci"]

#: at most this many resampled values are held in memory at once (resamples x sample size).
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A bootstrap estimate and its confidence interval.

    Attributes:
        estimate: the statistic on the observed data.
        low: lower bound of the interval.
        high: upper bound of the interval.
        n: number of cases (pairs) it rests on.
    """

    estimate: float
    low: float
    high: float
    n: int

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside ``[low, high]``."""
        return value < self.low or value > self.high

    def resolved_against(self, target: float) -> Literal["above", "below", "unresolved"]:
        """``"above"`` if the whole interval lies above ``target``, ``"below"`` if below, else ``"unresolved"``."""
        if self.low > target:
            return "above"
        if self.high < target:
            return "below"
        return "unresolved"


def _as_values(name: str, values: ArrayLike) -> np.ndarray:
    """``values`` as a 1D float64 array of finite numbers, at least two."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        kinds = "NaN" if np.isnan(arr[bad]).all() else "NaN or infinite values"
        raise ValueError(f"{name} holds {kinds} at positions {bad[:10].tolist()}{' ...' if bad.size > 10 else ''}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 values for a bootstrap, got {arr.size}")
    return arr


def _check_settings(num_resamples: int, confidence: float) -> None:
    if int(num_resamples) < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _resample_indices(n: int, num_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of bootstrap index rows ``(b, n)``, ``num_resamples`` rows in all."""
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, num_resamples, block):
        yield rng.integers(0, n, size=(min(block, num_resamples - start), n))


def _percentiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_ci(
    values: ArrayLike,
    num_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of ``statistic(values)`` (the mean by default).

    Args:
        values: 1D per-case values.
        num_resamples: bootstrap resamples.
        confidence: coverage of the interval, e.g. 0.95.
        seed: seed of the resampling.
        statistic: a reduction taking an ``axis`` keyword as numpy's do (``np.mean``, ``np.median``).

    Returns:
        ``(estimate, low, high)``.

    Raises:
        ValueError: ``values`` is not 1D, holds NaN/inf (positions named) or fewer than 2 values; bad
            ``num_resamples`` or ``confidence``.
    """
    x = _as_values("values", values)
    _check_settings(num_resamples, confidence)
    stats = np.concatenate([statistic(x[idx], axis=1) for idx in _resample_indices(x.size, int(num_resamples), seed)])
    low, high = _percentiles(stats, confidence)
    return float(statistic(x)), low, high


def _paired(name_a: str, a: ArrayLike, name_b: str, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_values(name_a, a), _as_values(name_b, b)
    if x.size != y.size:
        raise ValueError(f"paired values need equal lengths: {name_a} has {x.size}, {name_b} has {y.size}")
    return x, y


def paired_ratio_ci(
    numerator: ArrayLike,
    denominator: ArrayLike,
    num_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of ``mean(numerator) / mean(denominator)``, resampling the pairs jointly.

    Args:
        numerator: per-case scores of one training set, e.g. Dice of ``real5+singanseg``.
        denominator: the other set's scores on the same cases (same fold, seed, test case, same order).
        num_resamples: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling.

    Raises:
        ValueError: lengths differ, fewer than 2 pairs, NaN/inf values, a zero denominator mean (observed or
            in a resample).
    """
    x, y = _paired("numerator", numerator, "denominator", denominator)
    _check_settings(num_resamples, confidence)
    if y.mean() == 0:
        raise ValueError("the denominator's mean is zero: the ratio is undefined")
    ratios = []
    for idx in _resample_indices(x.size, int(num_resamples), seed):
        den = y[idx].mean(axis=1)
        zero = int(np.count_nonzero(den == 0))
        if zero:
            raise ValueError(f"the denominator's mean is zero in {zero} resamples: the ratio is unstable on these data")
        ratios.append(x[idx].mean(axis=1) / den)
    low, high = _percentiles(np.concatenate(ratios), confidence)
    return Interval(float(x.mean() / y.mean()), low, high, int(x.size))


def paired_difference_ci(
    a: ArrayLike,
    b: ArrayLike,
    num_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of ``mean(a - b)`` over paired per-case values.

    Args:
        a: per-case scores of one training set.
        b: the other set's scores on the same cases, same order.
        num_resamples: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling.

    Raises:
        ValueError: lengths differ, fewer than 2 pairs, NaN/inf values.
    """
    x, y = _paired("a", a, "b", b)
    estimate, low, high = bootstrap_ci(x - y, num_resamples, confidence, seed)
    return Interval(estimate, low, high, int(x.size))
