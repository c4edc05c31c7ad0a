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

from monai_singanseg.evaluation.report_text import (
    headline_text,
    interval_text,
    report_markdown,
    set_title,
)
from monai_singanseg.evaluation.settings import RENDERER_SETS
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


def _main_sets(summary: Mapping[str, Any]) -> list[str]:
    """The main training sets that were run, style-transfer variants beside plain SinGAN-Seg."""
    styled = [n for n in summary if n.startswith("singanseg+style:")]
    order = ["real", "singanseg", *styled, *RENDERER_SETS, "synthetic", "real+synthetic"]
    return [n for n in order if n in summary]


def report_files(out_dir: str | os.PathLike, num_folds: int) -> list[Path]:
    """The files :func:`write_report` writes."""
    out = Path(out_dir)
    names = ["report.json", "report.md", "dice_by_training_set.png", "dice_small_data.png"]
    return [out / n for n in names] + [out / f"samples_fold{f}.png" for f in range(num_folds)]


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
    """Write ``report.json``, ``report.md``, the two bar charts and one sample grid per fold (each row titled by its
    training set).

    Args:
        out_dir: report folder.
        report: :func:`~monai_singanseg.evaluation.experiment.run_experiment`'s dictionary.
        slice_sets: per fold ``{"real", "singanseg", ["singanseg+style:M", ...], "pix2pix", "spade"}`` (those made)
            :class:`SliceSet` objects.
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
        for set_name, s in sets.items():
            for i in range(min(rows, len(s))):
                images.append(s.images[i])
                labels.append(s.labels[i])
                names.append(set_name)
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
