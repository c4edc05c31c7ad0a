"""Summaries and the headline: mean and sd over runs, the compared pairs of training sets with their paired bootstrap
intervals and verdicts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from monai_singanseg.evaluation.scoring import SCORE_NAMES
from monai_singanseg.evaluation.settings import ExperimentSettings, style_set_name, training_set_names
from monai_singanseg.evaluation.statistics import Interval, paired_ratio_ci

__all__ = [
    "mean_sd",
    "summarise",
    "region_scores",
    "summarise_folds",
    "paired_values",
    "paired_ratio",
    "headline_ratios",
    "headline",
]


def mean_sd(values: Sequence[float | None]) -> dict[str, float]:
    """Mean, sample sd and count of the finite values (None/NaN: undefined scores, skipped)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]  # null: undefined in a reloaded report
    if not finite:
        return {"mean": math.nan, "sd": math.nan, "n": 0}
    mean = sum(finite) / len(finite)
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": len(finite)}


def summarise(runs: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per region and metric: mean, sample sd and count over runs
    (:func:`~monai_singanseg.evaluation.scoring.case_scores`
    results).
    """
    if not runs:
        return {}
    return {region: {m: mean_sd([r[region][m] for r in runs]) for m in SCORE_NAMES} for region in runs[0]}


def region_scores(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run's per-region scores (without its training figures)."""
    return {r: v for r, v in run.items() if isinstance(v, Mapping)}


def summarise_folds(folds: Sequence[Mapping[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
    """Per training set, :func:`summarise` over every fold's runs (folds from one or several reports)."""
    names = [
        n
        for n in training_set_names(settings.k_values, settings.style_methods)
        if any(n in fold["runs"] for fold in folds)
    ]
    return {
        name: summarise(
            [region_scores(run) for fold in folds for run in fold["runs"].get(name, {}).get("runs", {}).values()]
        )
        for name in names
    }


def paired_values(
    folds: Sequence[Mapping[str, Any]], name: str, region: str = "WT", metric: str = "dice"
) -> dict[tuple[str, str], float]:
    """``{(test case, seed): score}`` of one training set over ``folds``: the keys that pair two sets' runs, within
    one report or across the reports of two runs over the same test cases."""
    return {
        (str(fold["test_case"]), str(seed)): float(run[region][metric])
        for fold in folds
        for seed, run in fold["runs"].get(name, {}).get("runs", {}).items()
    }


def paired_ratio(
    folds: Sequence[Mapping[str, Any]],
    numerator: str,
    denominator: str,
    region: str = "WT",
    denominator_folds: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Bootstrap 95 % interval of ``mean Dice(numerator) / mean Dice(denominator)`` over the paired runs (same test
    case and seed): both sets from ``folds``, or the denominator from another run's ``denominator_folds`` (the same
    set with and without an option, say).

    Returns:
        ``{"estimate", "low", "high", "n", "mean_numerator", "mean_denominator"}`` (the means over the pairs).

    Raises:
        ValueError: fewer than 2 pairs, or a denominator mean of zero (observed or in a resample: the ratio is
            undefined or unstable on these runs).
    """
    a = paired_values(folds, numerator, region)
    b = paired_values(folds if denominator_folds is None else denominator_folds, denominator, region)
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        raise ValueError(f"{len(keys)} paired run(s) of {numerator!r} and {denominator!r}: an interval needs 2")
    x, y = [a[k] for k in keys], [b[k] for k in keys]
    interval = paired_ratio_ci(x, y)
    return {
        "estimate": interval.estimate,
        "low": interval.low,
        "high": interval.high,
        "n": interval.n,
        "mean_numerator": sum(x) / len(x),
        "mean_denominator": sum(y) / len(y),
    }


def _interval(folds: Sequence[Mapping[str, Any]] | None, numerator: str, denominator: str, region: str) -> Any:
    """The headline's :func:`paired_ratio` entry: its interval (without the means), or None where there is none."""
    if folds is None:
        return None
    try:
        ci = paired_ratio(folds, numerator, denominator, region)
    except ValueError:
        return None
    return {k: ci[k] for k in ("estimate", "low", "high", "n")}


def _verdict(ci: Mapping[str, Any] | None, target: float) -> str:
    """Where an interval of :func:`paired_ratio` lies against ``target`` (and against 1, when the target is not 1:
    whether the added data helps at all): e.g. ``"unresolved against 1.3; above 1"``."""
    if ci is None:
        return "unresolved (no interval: fewer than 2 paired runs, or a zero denominator)"
    interval = Interval(ci["estimate"], ci["low"], ci["high"], ci["n"])
    sides = [(target, interval.resolved_against(target))] + (
        [(1.0, interval.resolved_against(1.0))] if target != 1.0 else []
    )
    return "; ".join(
        f"{side} {value:g}" if side != "unresolved" else f"unresolved against {value:g}" for value, side in sides
    )


def headline_ratios(k_values: Sequence[int], style_methods: Sequence[str] = ()) -> dict[str, tuple[str, str, float]]:
    """The compared pairs of training sets: ``{name: (numerator set, denominator set, target ratio)}``.

    Targets: synthetic only reaches 0.9 of real; k real slices + their SinGAN-Seg samples reach 1.3 x k real slices
    alone; adding synthetic data to all real slices, the SPADE renderer against the U-Net pix2pix, and style
    transfer, should do better than without (> 1).
    """
    ratios = {
        "synthetic/real": ("synthetic", "real", 0.9),
        "real+synthetic/real": ("real+synthetic", "real", 1.0),
        "spade/pix2pix": ("spade", "pix2pix", 1.0),
    }
    for k in sorted(k_values):
        ratios[f"real{k}+singanseg/real{k}"] = (f"real{k}+singanseg", f"real{k}", 1.3)
    for m in style_methods:
        ratios[f"singanseg+style:{m}/singanseg"] = (style_set_name("singanseg", m), "singanseg", 1.0)
        for k in sorted(k_values):
            styled = style_set_name(f"real{k}+singanseg", m)
            ratios[f"{styled}/real{k}+singanseg"] = (styled, f"real{k}+singanseg", 1.0)
    return ratios


def headline(
    summary: Mapping[str, Any],
    k_values: Sequence[int] = (5,),
    style_methods: Sequence[str] = (),
    region: str = "WT",
    folds: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The headline: real-only ``region`` Dice and the ratios of :func:`headline_ratios` (mean Dice over folds and
    seeds), each with its paired bootstrap 95 % interval and verdict against its target.

    Returns:
        ``{"region", "k" (the smallest k), "dice_real", "target_real_dice", "ratios": {name: {"numerator",
        "denominator", "dice_numerator", "dice_denominator", "ratio", "target", "interval", "verdict"}}}``; a ratio
        whose training sets were not run is left out; ``interval`` is None without ``folds``, with fewer than 2
        paired runs (same test case and seed) or a zero denominator, and the verdict is then "unresolved".
    """

    def dice(name: str) -> float:
        return float(summary.get(name, {}).get(region, {}).get("dice", {}).get("mean", math.nan))

    ratios: dict[str, Any] = {}
    for name, (num, den, target) in headline_ratios(k_values, style_methods).items():
        if num not in summary or den not in summary:
            continue
        a, b = dice(num), dice(den)
        ci = _interval(folds, num, den, region)
        ratios[name] = {
            "numerator": num,
            "denominator": den,
            "dice_numerator": a,
            "dice_denominator": b,
            "ratio": a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan,
            "target": target,
            "interval": ci,
            "verdict": _verdict(ci, target),
        }
    return {
        "region": region,
        "k": min(k_values, default=0),
        "dice_real": dice("real"),
        "target_real_dice": 0.75,
        "ratios": ratios,
    }
