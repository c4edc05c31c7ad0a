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
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from monai_singanseg.data import brats_datalist
from monai_singanseg.evaluation.experiment import ExperimentSettings, run_experiment
from monai_singanseg.evaluation.segmentation import SegmentationSettings

HEADLINE_SETS = ("real", "synthetic", "real5", "real5+singanseg")


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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = ExperimentSettings(
        size=args.size, seeds=tuple(args.seeds), k_values=(1, 2, 5, 10) if args.all_sets else (5,), singan_slices=5,
        singan_iters=args.singan_iters, singan_samples=100, pix2pix_epochs=args.pix2pix_epochs,
        pix2pix_volumes=args.pix2pix_volumes, pix2pix_samples=100,
        segmentation=SegmentationSettings(network=args.network, features=args.features, steps=args.steps),
        training_sets=None if args.all_sets else HEADLINE_SETS,
    )  # fmt: skip
    start = time.perf_counter()
    report = run_experiment(brats_datalist(args.data), args.out, settings, device=args.device, overwrite=args.overwrite, progress=False)
    h = report["headline"]
    print(f"\nbudget: {settings.to_dict()}")
    print(f"wall time {time.perf_counter() - start:.0f} s, torch threads {args.threads}, device {args.device}")
    for name, stats in report["summary"].items():
        print(f"  {name:<18} mean Dice {stats['mean']['dice']['mean']:.3f} ± {stats['mean']['dice']['sd']:.3f}   WT {stats['WT']['dice']['mean']:.3f}")
    print(f"Dice(synthetic only)/Dice(real only) = {h['synthetic_over_real']:.3f} ({h['dice_synthetic']:.3f}/{h['dice_real']:.3f}); target >= 0.9")
    print(f"Dice(5 real + SinGAN-Seg)/Dice(5 real) = {h['small_plus_synthetic_over_small']:.3f} ({h['dice_real5+singanseg']:.3f}/{h['dice_real5']:.3f}); target >= 1.3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
