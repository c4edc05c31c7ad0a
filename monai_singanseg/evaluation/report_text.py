"""The downstream report as text: training-set titles, the headline lines, and the Markdown tables of ``report.md``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["set_title", "interval_text", "real_dice_text", "headline_text", "report_markdown"]

_SET_TITLES = {
    "real": "real (all training slices)",
    "singanseg": "SinGAN-Seg only",
    "pix2pix": "pix2pix (U-Net) only",
    "spade": "SPADE only",
    "synthetic": "synthetic only (both)",
    "real+synthetic": "real + synthetic",
}


def set_title(name: str) -> str:
    """Human title of a training set (``real5+singanseg+style:histogram`` -> ``5 real slices + their SinGAN-Seg samples
    + style transfer (histogram)``)."""
    base, _, method = name.partition("+style:")
    small, plus, _ = base.partition("+singanseg")
    if base not in _SET_TITLES and small.startswith("real") and small[4:].isdigit():  # the small-data rows
        k = int(small[4:])
        title = f"{k} real slice{'s' if k > 1 else ''}" + (" + their SinGAN-Seg samples" if plus else "")
    else:
        title = _SET_TITLES.get(base, base)
    return f"{title} + style transfer ({method})" if method else title


def interval_text(entry: Mapping[str, Any]) -> str:
    """A headline ratio's 95 % interval and verdict (an entry of ``headline(...)["ratios"]``)."""
    ci = entry["interval"]
    if not ci:
        return "n/a (fewer than 2 paired runs, or a zero denominator)"
    return f"[{ci['low']:.3f}, {ci['high']:.3f}] (n = {ci['n']}; {entry['verdict']})"


def real_dice_text(h: Mapping[str, Any]) -> str:
    """The headline's real-only Dice, or that the ``real`` set was not run (``--sets`` without it)."""
    dice = h["dice_real"]
    return "not run (no 'real' set)" if dice is None or math.isnan(dice) else f"{dice:.3f}"


def headline_text(h: Mapping[str, Any]) -> list[str]:
    """The headline as plain lines: real-only Dice, then every ratio with its interval and target."""
    lines = [f"{h['region']} Dice(real only) = {real_dice_text(h)} (target >= {h['target_real_dice']})"]
    for entry in h["ratios"].values():
        lines.append(
            f"{h['region']} Dice({entry['numerator']}) / Dice({entry['denominator']}) = {entry['ratio']:.3f} "
            f"({entry['dice_numerator']:.3f} / {entry['dice_denominator']:.3f}); 95 % interval {interval_text(entry)}; "
            f"target {entry['target']}"
        )
    return lines


def quality_sets(fold: Mapping[str, Any]) -> list[str]:
    return [n for n in fold["quality"] if n != "held_out_real_baseline"]


def _share(memorisation: Mapping[str, Any]) -> str:
    share = memorisation.get("share_closer_than_held_out")  # absent from reports written before it existed
    return "" if share is None else f"{100 * share:.0f} %"


def _fmt(stat: Mapping[str, float] | None, digits: int = 3) -> str:
    if not stat or not math.isfinite(stat.get("mean", math.nan)):
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def _protocol_text(report: Mapping[str, Any]) -> str:
    """How the cases were split: leave-one-case-out folds, or one training on every case and a user's test set."""
    protocol = report.get("protocol", {"kind": "leave-one-out"})  # reports written before test sets existed
    if protocol["kind"] == "test-set":
        return (
            f"trained once on every case of the training list ({len(report['folds'][0]['train_cases'])} cases) and "
            f'tested on the {len(report["folds"])} case(s) of the test set {protocol["test_datalist"]} (each "fold" '
            "row below is one test case)"
        )
    return f"{len(report['folds'])} fold(s) (each case held out once)"


def _value(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _intro(report: Mapping[str, Any]) -> list[str]:
    """The report's title and protocol paragraph."""
    settings = report["settings"]
    seg = settings["segmentation"]
    lines = [
        "# Downstream utility of synthetic data",
        "",
        f"Segmentation network `{seg['network']}` (features {seg['features']}), at most {seg['steps']} steps of batch "
        f"{seg['batch_size']}, stopped on a validation-Dice plateau (every {settings.get('validation_every', 4)}th "
        "brain "
        f"slice of each training case held in; patience {seg.get('patience', 0)} x {seg.get('val_every', 0)} steps), "
        f"{settings['size']}x{settings['size']} slices; seeds {settings['seeds']}; {_protocol_text(report)}. Every "
        "axial slice of each test case is predicted and pasted back into its volume; "
        "Dice and HD95 (mm) per BraTS region are scored per case in 3D (BraTS convention: a region absent from both "
        "reference and prediction scores Dice 1 / HD95 0, absent from one only Dice 0 / HD95 373.13 mm). Mean ± sd "
        "over test cases × seeds; `mean` averages the three regions.",
        "",
    ]
    return lines


def _headline_table(report: Mapping[str, Any]) -> list[str]:
    """The headline ratios with their intervals and targets."""
    h = report["headline"]
    lines = [
        f"## Headline ({h['region']} Dice)",
        "",
        "| ratio | measured | 95 % bootstrap interval (paired runs) | target |",
        "| --- | --- | --- | --- |",
        f"| Dice(real only) | {real_dice_text(h)} | | ≥ {h['target_real_dice']} |",
    ]
    for entry in h["ratios"].values():
        target = "> 1" if entry["target"] == 1.0 else f"≥ {entry['target']}"
        lines.append(
            f"| Dice({set_title(entry['numerator'])}) / Dice({set_title(entry['denominator'])}) | {entry['ratio']:.3f} "
            f"({entry['dice_numerator']:.3f} / {entry['dice_denominator']:.3f}) | {interval_text(entry)} | {target} |"
        )
    return lines


def _per_set_table(report: Mapping[str, Any]) -> list[str]:
    """Dice and HD95 per training set (mean ± sd over folds and seeds)."""
    regions = list(report["regions"]) + ["mean"]
    lines = [
        "",
        "## Dice and HD95 per training set",
        "",
        "| training set | slices | "
        + " | ".join(f"Dice {r}" for r in regions)
        + " | "
        + " | ".join(f"HD95 {r} (mm)" for r in regions[:-1])
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in regions) + " | " + " | ".join("---" for _ in regions[:-1]) + " |",
    ]
    for name, stats in report["summary"].items():
        sizes = sorted({fold["runs"][name]["num_slices"] for fold in report["folds"] if name in fold["runs"]})
        lines.append(
            f"| {set_title(name)} | {'/'.join(map(str, sizes))} | "
            + " | ".join(_fmt(stats[r]["dice"]) for r in regions)
            + " | "
            + " | ".join(_fmt(stats[r]["hd95"], 1) for r in regions[:-1])
            + " |"
        )
    return lines


def _per_case_table(report: Mapping[str, Any]) -> list[str]:
    """Every run's Dice per region."""
    regions = list(report["regions"]) + ["mean"]
    lines = [
        "",
        "## Per case",
        "",
        "| fold | test case | training set | seed | steps (best) | "
        + " | ".join(f"Dice {r}" for r in regions[:-1])
        + " |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in regions[:-1]) + " |",
    ]
    for f, fold in enumerate(report["folds"]):
        for name, entry in fold["runs"].items():
            for seed, run in entry["runs"].items():
                lines.append(
                    f"| {f} | {fold['test_case']} | {name} | {seed} | {run.get('steps', '')} "
                    f"({run.get('best_step', '')}) | "
                    + " | ".join(f"{run[r]['dice']:.3f}" for r in regions[:-1])
                    + " |"
                )
    return lines


def _quality_table(report: Mapping[str, Any]) -> list[str]:
    """Fidelity, diversity and memorisation of every synthetic set."""
    lines = [
        "",
        "## Synthetic sets (fidelity, diversity, memorisation)",
        "",
        "NCC: each sample's nearest-neighbour correlation against ALL real training tumour slices (image + label). "
        "Closer than the held-out patient: the share of samples more similar to a training slice than any tumour "
        "slice of the held-out patient is (the baseline row: two different patients).",
        "",
        "| fold | set | samples | SWD ↓ | diversity (real) | NCC to nearest real slice mean / max | flagged > thr | "
        "closer than the held-out patient | tumour area ratio | class-mix TV |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f, fold in enumerate(report["folds"]):
        for name in quality_sets(fold):
            q = fold["quality"][name]
            m = q["memorisation"]
            lines.append(
                f"| {f} | {name} | {q['num_samples']} | {q['swd']:.3f} | {q['diversity']:.3f} "
                f"({q['real_diversity']:.3f}) | "
                f"{m['mean']:.3f} / {m['max']:.3f} | {m['num_flagged']} (> {m['threshold']}) | {_share(m)} | "
                f"{q['labels']['tumour_area_ratio']:.2f} | {q['labels']['class_proportion_tv']:.2f} |"
            )
        base = fold["quality"]["held_out_real_baseline"]
        lines.append(
            f"| {f} | held-out real slices (baseline) | {fold['num_test']} | | | {_value(base['memorisation_mean'])} / "
            f"{_value(base['memorisation_max'])} | | | | |"
        )
    return lines


def _fold_notes(report: Mapping[str, Any]) -> list[str]:
    """What each fold trained on and tested, flagged samples and timings."""
    lines = ["", "## Folds", ""]
    for f, fold in enumerate(report["folds"]):
        flagged = [
            x
            for name in quality_sets(fold)
            if name != "synthetic"
            for x in fold["quality"][name]["memorisation"]["flagged"]
        ]
        flagged_text = (
            ", ".join(f"{x['sample']}→{x['nearest_real']} ({x['score']:.3f})" for x in flagged[:10]) or "none"
        )
        lines += [
            f"- fold {f}: train {', '.join(fold['train_cases'])} ({fold['num_real_train']} brain slices, "
            f"{fold.get('num_real_train_tumour', '?')} with tumour; {fold.get('num_validation', 0)} held in for "
            "validation), "
            f"test {fold['test_case']} ({fold['num_test']} brain slices; regions present: "
            f"{', '.join(r for r, present in fold['test_regions_present'].items() if present) or 'none'}); "
            f"SinGAN-Seg trained on {', '.join(fold['singanseg_slices']) or 'no slice (no requested set needs it)'}; "
            "small-data order "
            f"{', '.join(fold['small_data_slices'])}; "
            f"flagged samples: {flagged_text}"
            + (f" (+{len(flagged) - 10} more in report.json)" if len(flagged) > 10 else ""),
            "  - seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in fold["seconds"].items()),
        ]
    return lines


def report_markdown(report: Mapping[str, Any]) -> str:
    """Paper-style tables of a report dictionary."""
    lines = [
        *_intro(report),
        *_headline_table(report),
        *_per_set_table(report),
        *_per_case_table(report),
        *_quality_table(report),
        *_fold_notes(report),
        "",
        f"Total time {report['seconds']:.0f} s. Plots: `dice_by_training_set.png`, `dice_small_data.png`, "
        "`samples_fold*.png`.",
        "",
    ]
    return "\n".join(lines)
