"""Report folder of the downstream-utility experiment: ``report.json``, ``report.md``, PNG plots and sample grids.

Plots are drawn with PIL (no plotting library is a dependency): grouped bar charts with error bars
(mean +- sd over folds and seeds), and contact sheets of real vs synthetic slices with label overlays
(:func:`monai_singanseg.visualize.contact_sheet`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from monai_singanseg.io.atomic import atomic_path, check_outputs_free
from monai_singanseg.visualize import LABEL_COLOURS, contact_sheet

__all__ = [
    "report_files",
    "bar_chart",
    "report_markdown",
    "write_report",
    "set_title",
    "interval_text",
    "headline_text",
]

_SERIES_COLOURS = (*LABEL_COLOURS, (150, 150, 150), (200, 120, 220))
_SET_TITLES = {
    "real": "real (all training slices)",
    "singanseg": "SinGAN-Seg only",
    "pix2pix": "pix2pix only",
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
        return "n/a (fewer than 2 paired runs)"
    return f"[{ci['low']:.3f}, {ci['high']:.3f}] (n = {ci['n']}; {entry['verdict']})"


def headline_text(h: Mapping[str, Any]) -> list[str]:
    """The headline as plain lines: real-only Dice, then every ratio with its interval and target."""
    lines = [f"{h['region']} Dice(real only) = {h['dice_real']:.3f} (target >= {h['target_real_dice']})"]
    for entry in h["ratios"].values():
        lines.append(
            f"{h['region']} Dice({entry['numerator']}) / Dice({entry['denominator']}) = {entry['ratio']:.3f} "
            f"({entry['dice_numerator']:.3f} / {entry['dice_denominator']:.3f}); 95 % interval {interval_text(entry)}; "
            f"target {entry['target']}"
        )
    return lines


def _main_sets(summary: Mapping[str, Any]) -> list[str]:
    """The main training sets that were run, style-transfer variants beside plain SinGAN-Seg."""
    styled = [n for n in summary if n.startswith("singanseg+style:")]
    order = ["real", "singanseg", *styled, "pix2pix", "synthetic", "real+synthetic"]
    return [n for n in order if n in summary]


def _quality_sets(fold: Mapping[str, Any]) -> list[str]:
    return [n for n in fold["quality"] if n != "held_out_real_baseline"]


def report_files(out_dir: str | os.PathLike, num_folds: int) -> list[Path]:
    """The files :func:`write_report` writes."""
    out = Path(out_dir)
    names = ["report.json", "report.md", "dice_by_training_set.png", "dice_small_data.png"]
    return [out / n for n in names] + [out / f"samples_fold{f}.png" for f in range(num_folds)]


def _share(memorisation: Mapping[str, Any]) -> str:
    share = memorisation.get("share_closer_than_held_out")  # absent from reports written before it existed
    return "" if share is None else f"{100 * share:.0f} %"


def _fmt(stat: Mapping[str, float] | None, digits: int = 3) -> str:
    if not stat or not math.isfinite(stat.get("mean", math.nan)):
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def bar_chart(
    path: str | os.PathLike,
    groups: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    y_label: str = "Dice",
    y_max: float = 1.0,
    overwrite: bool = True,
) -> Path:
    """A grouped bar chart with error bars, drawn with PIL.

    Args:
        path: PNG file.
        groups: x-axis groups.
        series: legend name -> one ``(mean, sd)`` per group (NaN means are left out).
        title: chart title.
        y_label: y-axis title.
        y_max: top of the y axis.
        overwrite: replace an existing file.
    """
    dest = Path(path)
    check_outputs_free([dest], overwrite)
    n_series = max(1, len(series))
    bar_w, gap, left, top, plot_h = 14, 18, 50, 40, 260
    group_w = n_series * bar_w + gap
    width = max(420, left + len(groups) * group_w + 20)
    height = top + plot_h + 110
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill=(0, 0, 0))
    base = top + plot_h

    def y_of(v: float) -> int:
        return int(round(base - plot_h * max(0.0, min(v, y_max)) / y_max))

    for tick in range(0, 11, 2):
        v = y_max * tick / 10
        draw.line([(left - 4, y_of(v)), (width - 10, y_of(v))], fill=(225, 225, 225))
        draw.text((4, y_of(v) - 6), f"{v:.1f}", fill=(0, 0, 0))
    draw.text((4, top - 16), y_label, fill=(0, 0, 0))
    draw.line([(left, top), (left, base), (width - 10, base)], fill=(0, 0, 0))
    for g, group in enumerate(groups):
        x0 = left + gap // 2 + g * group_w
        for s, values in enumerate(series.values()):
            mean, sd = values[g]
            if not math.isfinite(mean):
                continue
            x = x0 + s * bar_w
            draw.rectangle(
                [x, y_of(mean), x + bar_w - 3, base], fill=_SERIES_COLOURS[s % len(_SERIES_COLOURS)], outline=(0, 0, 0)
            )
            if math.isfinite(sd) and sd > 0:
                cx = x + (bar_w - 3) // 2
                draw.line([(cx, y_of(mean - sd)), (cx, y_of(mean + sd))], fill=(0, 0, 0), width=1)
                for v in (mean - sd, mean + sd):
                    draw.line([(cx - 3, y_of(v)), (cx + 3, y_of(v))], fill=(0, 0, 0))
        label = group if len(group) <= 14 else group[:13] + "…"
        draw.text((x0, base + 6 + 12 * (g % 2)), label, fill=(0, 0, 0))
    for s, name in enumerate(series):
        y = base + 44 + 14 * s
        draw.rectangle([left, y, left + 10, y + 10], fill=_SERIES_COLOURS[s % len(_SERIES_COLOURS)], outline=(0, 0, 0))
        draw.text((left + 16, y), name, fill=(0, 0, 0))
    with atomic_path(dest) as tmp:
        img.save(tmp, format="PNG")
    return dest


def _region_series(
    summary: Mapping[str, Any], sets: Sequence[str], regions: Sequence[str]
) -> dict[str, list[tuple[float, float]]]:
    out = {}
    for region in regions:
        out["mean of regions" if region == "mean" else region] = [
            (summary[s][region]["dice"]["mean"], summary[s][region]["dice"]["sd"]) for s in sets
        ]
    return out


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
        f"{settings['size']}x{settings['size']} slices; seeds {settings['seeds']}; {len(report['folds'])} fold(s) "
        "(each "
        "case held out once). Every axial slice of the held-out case is predicted and pasted back into its volume; "
        "Dice and HD95 (mm) per BraTS region are scored per case in 3D (BraTS convention: a region absent from both "
        "reference and prediction scores Dice 1 / HD95 0, absent from one only Dice 0 / HD95 373.13 mm). Mean ± sd "
        "over folds × seeds; `mean` averages the three regions.",
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
        f"| Dice(real only) | {h['dice_real']:.3f} | | ≥ {h['target_real_dice']} |",
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
        for name in _quality_sets(fold):
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
            f"| {f} | held-out real slices (baseline) | {fold['num_test']} | | | {base['memorisation_mean']:.3f} / "
            f"{base['memorisation_max']:.3f} | | | | |"
        )
    return lines


def _fold_notes(report: Mapping[str, Any]) -> list[str]:
    """What each fold trained on and tested, flagged samples and timings."""
    lines = ["", "## Folds", ""]
    for f, fold in enumerate(report["folds"]):
        flagged = [
            x
            for name in _quality_sets(fold)
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
            f"SinGAN-Seg trained on {', '.join(fold['singanseg_slices'])}; small-data order "
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


def _finite_or_null(x: Any) -> Any:
    """Strict JSON: NaN/inf (undefined scores) become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    return x


def write_report(
    out_dir: str | os.PathLike,
    report: Mapping[str, Any],
    slice_sets: Sequence[Mapping[str, Any]],
    overwrite: bool = False,
    rows: int = 4,
) -> list[Path]:
    """Write ``report.json``, ``report.md``, the two bar charts and one sample grid per fold.

    Args:
        out_dir: report folder.
        report: :func:`~monai_singanseg.evaluation.experiment.run_experiment`'s dictionary.
        slice_sets: per fold ``{"real", "singanseg", ["singanseg+style:M", ...], "pix2pix"}`` :class:`SliceSet` objects.
        overwrite: replace existing files.
        rows: slices of each kind in a sample grid.
    """
    out = Path(out_dir)
    files = report_files(out, len(report["folds"]))
    check_outputs_free(files, overwrite)
    summary = report["summary"]
    regions = list(report["regions"]) + ["mean"]
    main = _main_sets(summary)
    if main:
        bar_chart(
            files[2],
            main,
            _region_series(summary, main, regions),
            "Dice on held-out real cases (3D) per training set (mean ± sd)",
        )
    else:
        bar_chart(files[2], ["(none)"], {"-": [(math.nan, math.nan)]}, "no main training set was run")
    ks = [k for k in report["settings"]["k_values"] if f"real{k}" in summary or f"real{k}+singanseg" in summary]
    nan = {"dice": {"mean": math.nan, "sd": math.nan}}

    def mean_dice(name: str) -> tuple[float, float]:
        stat = summary.get(name, {}).get("mean", nan)["dice"]
        return stat["mean"], stat["sd"]

    small = {
        "k real": [mean_dice(f"real{k}") for k in ks],
        "k real + SinGAN-Seg": [mean_dice(f"real{k}+singanseg") for k in ks],
    }
    for method in report["settings"].get("style_methods", []):
        small[f"+ style ({method})"] = [mean_dice(f"real{k}+singanseg+style:{method}") for k in ks]
    bar_chart(
        files[3],
        [f"k = {k}" for k in ks] or ["(none)"],
        small if ks else {"-": [(math.nan, math.nan)]},
        "Small-data regime: mean Dice of the regions (mean ± sd)",
    )
    for f, sets in enumerate(slice_sets):
        images, labels, names = [], [], []
        for s in sets.values():
            for i in range(min(rows, len(s))):
                images.append(s.images[i])
                labels.append(s.labels[i])
                names.append(s.names[i])
        contact_sheet(
            files[4 + f],
            images,
            labels,
            channel_names=report.get("channel_names") or None,
            row_names=names,
            overwrite=overwrite,
        )
    with atomic_path(files[1]) as tmp:
        tmp.write_text(report_markdown(report), encoding="utf-8")
    with atomic_path(files[0]) as tmp:
        tmp.write_text(json.dumps(_finite_or_null(report), indent=1, allow_nan=False), encoding="utf-8")
    return files
