"""SinGAN-Seg on a Kvasir-SEG polyp against the SinGAN-Seg reference code: the row re-measured with every change.

Trains ``train-singanseg`` (default schedule) on one RGB polyp picture and its mask at 128 px as a child process
(CPU time = user + system time of the child, data loading included), then scores 50 samples from start scale 0
with ``benchmarks/singanseg_quality.py``'s figures, with the model's own layout and with new tumour layouts
(``--tumour-shift``). The reference row was measured with the SinGAN-Seg reference code (200 iterations per
scale) on the same kind of polyp and the same metrics (RGB + mask, 128 px, 50 samples from scale 0); the
targets ask for every column at once.

Usage::

    python benchmarks/singanseg_kvasir.py [--polyp cju0qkwl35piu0993l0dewei2] [--threads 2] [--model PATH]
        [--train-seed 0] [--tumour-shift off 0.15] [--sheet DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import SHARED, add_threads
from singanseg_quality import quality, real_slice, report

from monai_singanseg.inferers import SinGANSegSampler

KVASIR = SHARED / "kvasir_seg"
#: the SinGAN-Seg reference code on a Kvasir polyp (issue "Generator fidelity"): CPU seconds, SWD, diversity,
#: share of samples with NCC > 0.95 to the real image, mask-centre spread (row, column), IoU with the real mask.
REFERENCE = {
    "cpu_seconds": 1311.0,
    "swd": 0.164,
    "diversity": 0.605,
    "ncc_over_095": 0.0,
    "centre_sd": (2.9, 4.3),
    "iou": 0.74,
}


def targets(fig: dict[str, float], cpu_seconds: float) -> list[tuple[str, bool]]:
    """The issue's targets for the Kvasir row, each with whether ``fig`` meets it."""
    ref = REFERENCE
    return [
        ("tumour kept >= 95 %", fig["tumour_kept"] >= 0.95),
        ("IoU with the real mask <= 0.7", fig["iou_mean"] <= 0.7),
        (
            f"centre spread >= the reference's {ref['centre_sd'][0]} / {ref['centre_sd'][1]} px",
            fig["centre_sd_row"] >= ref["centre_sd"][0] and fig["centre_sd_col"] >= ref["centre_sd"][1],
        ),
        (f"SWD <= 0.5x the reference's = {0.5 * ref['swd']:.3f}", fig["swd"] <= 0.5 * ref["swd"]),
        (f"diversity >= the reference's {ref['diversity']}", fig["diversity"] >= ref["diversity"]),
        ("NCC > 0.95 share 0 %", fig["ncc_over_095"] == 0.0),
        (
            f"CPU time <= 0.3x the reference's = {0.3 * ref['cpu_seconds']:.0f} s",
            cpu_seconds <= 0.3 * ref["cpu_seconds"],
        ),
    ]


def train(image: Path, mask: Path, out: Path, threads: int, seed: int = 0) -> tuple[float, float]:
    """Train the default model (training seed ``seed``) as a child process -> (wall seconds, CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "monai_singanseg",
        "train-singanseg",
        "--image",
        str(image),
        "--label",
        str(mask),
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--seed",
        str(seed),
        "--quiet",
        "--overwrite",
    ]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--polyp", default="cju0qkwl35piu0993l0dewei2", help="Kvasir-SEG picture name (without .jpg)")
    add_threads(parser, 2)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--train-seed", type=int, default=0, help="training seed (models differ between seeds: measure a few)"
    )
    parser.add_argument("--tumour-shift", nargs="+", default=["off", "0.15"])
    parser.add_argument(
        "--model", type=Path, default=None, help="keep the model here (an existing file is scored, not retrained)"
    )
    parser.add_argument("--sheet", type=Path, default=None, help="write DIR/kvasir_shift_<s>.png contact sheets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image, mask = KVASIR / "images" / f"{args.polyp}.jpg", KVASIR / "masks" / f"{args.polyp}.jpg"
    tmp = tempfile.TemporaryDirectory()
    model = args.model or Path(tmp.name) / "kvasir.pt"
    if model.exists():
        wall, cpu = float("nan"), float("nan")
        print(f"scoring the existing model {model} (not retrained: no training time)")
    else:
        wall, cpu = train(image, mask, model, args.threads, args.train_seed)
    sampler = SinGANSegSampler(model, device="cpu")
    cfg = sampler.config
    real_img, real_lab = real_slice(sampler)
    print(
        f"SinGAN-Seg on Kvasir-SEG {args.polyp}: scales {[s for s in cfg.scale_sizes]}, schedule "
        f"{cfg.training['schedule']}, "
        f"training seed {args.train_seed}, {wall:.0f} s wall, {cpu:.0f} s CPU ({args.threads} threads)"
    )
    ref = REFERENCE
    print(
        f"reference code: {ref['cpu_seconds']:.0f} s CPU, SWD {ref['swd']}, diversity {ref['diversity']}, NCC > 0.95 0 "
        "%, "
        f"centre sd {ref['centre_sd'][0]} / {ref['centre_sd'][1]} px, IoU {ref['iou']}"
    )
    for shift_text in args.tumour_shift:
        shift = None if shift_text == "off" else float(shift_text)
        fig, images, labels = quality(sampler, real_img, real_lab, args.num, 0, args.seed, shift)
        print(f"ours, start scale 0, tumour shift {shift_text}: {report(fig)}")
        met = targets(fig, cpu)
        print("  targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in met))
        if args.sheet is not None:
            from monai_singanseg.visualize import contact_sheet

            args.sheet.mkdir(parents=True, exist_ok=True)
            contact_sheet(args.sheet / f"kvasir_shift_{shift_text}.png", list(images[:8]), list(labels[:8]), rgb=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
