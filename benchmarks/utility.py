"""Downstream-utility headline: does synthetic data train a segmentation network?

Generators (SinGAN-Seg, pix2pix) are trained on one ``brats_tcga`` case, segmentation networks on real /
synthetic / mixed slices of that case, and tested on every tumour slice of the other case; then the
cases are swapped. Prints the two headline ratios of mean Dice (over the BraTS regions present in the
test case, over both folds and all seeds):

- Dice(synthetic only: SinGAN-Seg + pix2pix) / Dice(all real slices)   -- target >= 0.9
- Dice(5 real + SinGAN-Seg) / Dice(5 real), SinGAN-Seg trained on exactly those 5 slices -- target >= 1.3

The default budget (64 px, 5 SinGAN-Seg models x 20 iterations per scale, pix2pix 20 epochs, UNet++
width 8 x 200 steps, 2 seeds, the 4 headline training sets) takes about 15 minutes on 2 shared CPU
cores. ``--all-sets`` runs every training set of the protocol. The full report (tables, plots, sample
grids) is written to ``--out``.

Run: ``python benchmarks/utility.py --out utility_report`` (``--threads 1`` default).

Style transfer (SinGAN-Seg's second stage): ``--style histogram random histogram+random`` adds the training
sets ``singanseg+style:M`` and ``real5+singanseg+style:M`` and prints Dice(styled)/Dice(plain).

On a GPU the two folds can run as two processes side by side and be merged afterwards::

    python benchmarks/utility.py --device cuda --fold 0 --out u/fold0 &
    python benchmarks/utility.py --device cuda --fold 1 --out u/fold1 & wait
    python benchmarks/utility.py --merge u/fold0 u/fold1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from monai_singanseg.data import brats_datalist
from monai_singanseg.evaluation.experiment import (
    ExperimentSettings,
    headline,
    mean_sd,
    run_experiment,
    style_set_name,
    summarise_folds,
)
from monai_singanseg.evaluation.segmentation import SegmentationSettings

HEADLINE_SETS = ("real", "singanseg", "synthetic", "real5", "real5+singanseg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats_tcga"
    parser.add_argument("--data", default=str(default_data))
    parser.add_argument("--out", default="utility_report")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--singan-iters", type=int, default=20)
    parser.add_argument("--pix2pix-epochs", type=int, default=20)
    parser.add_argument("--pix2pix-volumes", type=int, default=2)
    parser.add_argument("--network", default="unetpp")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--all-sets", action="store_true", help="every training set, not only the headline ones")
    parser.add_argument("--style", nargs="+", default=[], help="style-transfer methods to compare (default: none)")
    parser.add_argument("--style-steps", type=int, default=100)
    parser.add_argument("--sets", nargs="+", default=None, help="only these training sets (default: the headline ones)")
    parser.add_argument("--fold", type=int, default=None, help="run only this fold (the case at this index is held out)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="DIR", help="print the headline of several fold reports")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.merge:
        reports = [json.loads((Path(d) / "report.json").read_text(encoding="utf-8")) for d in args.merge]
        settings = ExperimentSettings.from_dict(reports[0]["settings"])
        folds = [fold for r in reports for fold in r["folds"]]
        summary = summarise_folds(folds, settings)
        print_headline(summary, headline(summary, 5, settings.style_methods), f"{len(folds)} folds from {len(reports)} reports")
        print_paired_style_differences(folds, settings.style_methods)
        return 0
    torch.set_num_threads(args.threads)
    settings = ExperimentSettings(
        size=args.size, seeds=tuple(args.seeds), k_values=(1, 2, 5, 10) if args.all_sets else (5,), singan_slices=5,
        singan_iters=args.singan_iters, singan_samples=100, pix2pix_epochs=args.pix2pix_epochs,
        pix2pix_volumes=args.pix2pix_volumes, pix2pix_samples=100,
        segmentation=SegmentationSettings(network=args.network, features=args.features, steps=args.steps),
        style_methods=tuple(args.style), style_steps=args.style_steps,
        training_sets=tuple(args.sets) if args.sets else None if args.all_sets else HEADLINE_SETS + tuple(
            style_set_name(base, m) for m in args.style for base in ("singanseg", "real5+singanseg")
        ),
    )  # fmt: skip
    items = brats_datalist(args.data)
    if args.fold is not None:  # the held-out case first, then only one fold
        items = [items[args.fold]] + [it for i, it in enumerate(items) if i != args.fold]
        settings.max_folds = 1
    start = time.perf_counter()
    report = run_experiment(items, args.out, settings, device=args.device, overwrite=args.overwrite, progress=False)
    print(f"\nbudget: {settings.to_dict()}")
    print(f"wall time {time.perf_counter() - start:.0f} s, torch threads {args.threads}, device {args.device}")
    print_headline(report["summary"], report["headline"], f"{len(report['folds'])} fold(s)")
    print_paired_style_differences(report["folds"], settings.style_methods)
    return 0


def print_paired_style_differences(folds: list, methods: tuple) -> None:
    """Mean Dice with style transfer minus without, paired by fold and seed (same initialisation)."""
    for base in ("singanseg", "real5+singanseg"):
        for method in methods:
            styled = style_set_name(base, method)
            diffs = [
                run["mean"]["dice"] - fold["runs"][base]["runs"][seed]["mean"]["dice"]
                for fold in folds if styled in fold["runs"] and base in fold["runs"]
                for seed, run in fold["runs"][styled]["runs"].items()
            ]
            if len(diffs) > 1:
                stats = mean_sd(diffs)
                print(f"paired Dice({styled}) - Dice({base}): {stats['mean']:+.3f} ± {stats['sd']:.3f} (sd over {len(diffs)} fold x seed runs; "
                      f"{sum(d > 0 for d in diffs)} of {len(diffs)} positive)")


def print_headline(summary: dict, h: dict, what: str) -> None:
    """Mean Dice per training set and the headline ratios."""
    print(what)
    for name, stats in summary.items():
        print(f"  {name:<18} mean Dice {stats['mean']['dice']['mean']:.3f} ± {stats['mean']['dice']['sd']:.3f}   WT {stats['WT']['dice']['mean']:.3f}")
    print(f"Dice(synthetic only)/Dice(real only) = {h['synthetic_over_real']:.3f} ({h['dice_synthetic']:.3f}/{h['dice_real']:.3f}); target >= 0.9")
    print(f"Dice(5 real + SinGAN-Seg)/Dice(5 real) = {h['small_plus_synthetic_over_small']:.3f} ({h['dice_real5+singanseg']:.3f}/{h['dice_real5']:.3f}); target >= 1.3")
    for method, st in h.get("style", {}).items():
        print(
            f"style {method}: Dice(SinGAN-Seg + style)/Dice(SinGAN-Seg) = {st['styled_over_plain']:.3f} "
            f"({st['dice_singanseg+style']:.3f}/{st['dice_singanseg']:.3f}); Dice(5 real + SinGAN-Seg + style)/"
            f"Dice(5 real + SinGAN-Seg) = {st['small_styled_over_small_plain']:.3f} "
            f"({st['dice_real5+singanseg+style']:.3f}/{h['dice_real5+singanseg']:.3f})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
