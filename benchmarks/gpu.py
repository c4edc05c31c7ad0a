"""The GPU figures in one call of under 8 minutes: dataset synthesis, renderer training and a 3D model, as a table.

Prints, with the device's name:

1. SinGAN-Seg models/hour at M = 1, 8, 32, 128 models trained together (``synthesize --models-per-batch M``'s code
   path, 128 px, the default schedule; :func:`synthesize_gpu.models_per_hour`, which scales an M whose full run
   would not fit its share of the budget from a shortened run and says so);
2. label-to-image training throughput (slices/s) of every generator (``train-pix2pix --architecture``) at 128 and
   256 px, on every brain slice of the packaged demo case, batch ``--batch-size``;
3. one 3D SinGAN-Seg model (``train-singanseg --volume``, the default size and tumour box) of the demo case:
   training time and peak GPU memory (a run that would not fit its budget is timed on a shortened schedule and
   scaled, as in 1).

Everything it needs is in the repository (the packaged demo case). Without a CUDA device it says that it needs one
and exits with status 2; ``--smoke`` runs every step on the CPU at toy sizes, to check the script itself.

    python benchmarks/gpu.py                 # one GPU: the figures
    python benchmarks/gpu.py --smoke         # CPU: a quick run of the same steps at toy sizes
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch
from synthesize_gpu import models_per_hour, total_iters

from monai_singanseg.data import brats_datalist, demo_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings, pix2pix_trainer
from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.networks.spade import GENERATOR_ARCHITECTURES
from monai_singanseg.synthesis import pix2pix_training_slices, singanseg_training_input


def one_case(folder: str | Path) -> dict:
    """The one BraTS-named case in ``folder`` as a datalist item (ValueError naming the folder otherwise)."""
    items = brats_datalist(folder)
    if len(items) != 1:
        raise ValueError(f"--case {folder}: expected the folder of one BraTS-named case, found {len(items)} cases")
    return items[0]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB" if device.type == "cuda" else "n/a (CPU)"


def renderer_throughput(architecture: str, size: int, batch_size: int, epochs: int, device: torch.device) -> str:
    """Train ``epochs`` epochs of one renderer on every brain slice of the demo case; slices/s of the fastest epoch
    after the first (which includes start-up)."""
    settings = Pix2PixSettings(
        size=size, architecture=architecture, batch_size=batch_size, epochs=epochs, all_brain_slices=True
    )
    data = pix2pix_training_slices([demo_case()], settings, progress=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pix2pix_trainer(data, Path(tmp) / "model.pt", settings, device=device, progress=False)
        trainer.run()
    synchronize(device)
    seconds = min(record["seconds"] for record in trainer.state.history[1:] or trainer.state.history)
    slices = len(data.image)
    return f"{slices / seconds:8.1f} slices/s ({slices} slices, batch {batch_size}, peak {peak_memory(device)})"


def volume_model(
    item: dict, settings: SinGANSegSettings, max_size: int | None, budget: float, device: torch.device
) -> str:
    """Train one 3D model of ``item``; its full training time (measured, or scaled from a shortened run when the
    projection exceeds ``budget``) and peak GPU memory. A working grid thinner than the coarsest scale's
    ``min_size`` (the packaged demo case is cut to a few slices) trains with ``min_size`` lowered to fit, and the
    line says so."""
    gan, meta = singanseg_training_input(item["image"], item["label"], None, max_size, volume=True)
    shape = "x".join(map(str, gan.shape[1:]))
    note = ""
    short_side = min(gan.shape[1:])
    if settings.min_size is not None and short_side < settings.min_size:
        settings = dataclasses.replace(settings, min_size=max(4, short_side // 2))
        note = f"; min_size lowered to {settings.min_size}: the grid is {short_side} voxels thin, pass --case"
    short = dataclasses.replace(
        settings, iters=min(10, settings.iters), coarsest_iters=min(30, settings.coarsest_iters)
    )
    with tempfile.TemporaryDirectory() as tmp:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        SinGANSegTrainer(short, device=device, progress=False).fit(gan, Path(tmp) / "short.pt", meta)
        synchronize(device)
        wall = time.perf_counter() - start
        num_scales = SinGANSegSampler(Path(tmp) / "short.pt", device="cpu").num_scales
        projected = wall * total_iters(settings, num_scales) / total_iters(short, num_scales)
        how = (
            "full schedule"
            if short == settings
            else f"scaled from {total_iters(short, num_scales)} iterations in {wall:.1f} s"
        )
        if projected < budget and short != settings:
            start = time.perf_counter()
            SinGANSegTrainer(settings, device=device, progress=False).fit(gan, Path(tmp) / "full.pt", meta)
            synchronize(device)
            projected, how = time.perf_counter() - start, "full schedule"
    return (
        f"{projected:8.1f} s to train ({how}; grid {shape}, {num_scales} scales, {total_iters(settings, num_scales)} "
        f"iterations{note}), peak {peak_memory(device)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="run every step on the CPU at toy sizes")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds for the whole run (default 360)")
    parser.add_argument("--batch-size", type=int, default=16, help="renderer training batch (default 16)")
    parser.add_argument(
        "--case",
        default=None,
        metavar="DIR",
        help="the folder of a whole BraTS-named case (<name>_{flair,t1,t1ce,t2,seg}.nii.gz) for the 3D model "
        "(default: the packaged demo case, cut to a few slices)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    item = demo_case() if args.case is None else one_case(args.case)  # a bad --case is refused before any work
    if args.smoke:
        device, sizes, models, epochs = torch.device("cpu"), (32,), (1, 2), 2
        singanseg = SinGANSegSettings(iters=4, coarsest_iters=4, num_stages=2, min_size=8)
        volume, volume_size = dataclasses.replace(singanseg, min_size=4), 24
    elif torch.cuda.is_available():
        device, sizes, models, epochs = torch.device("cuda"), (128, 256), (1, 8, 32, 128), 3
        singanseg, volume, volume_size = SinGANSegSettings(), SinGANSegSettings.for_volume(), None
    else:
        print(
            "benchmarks/gpu.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine "
            f"(torch {torch.__version__}). Run it on a machine with one GPU, or --smoke for a CPU check of the script.",
            file=sys.stderr,
        )
        sys.exit(2)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run, toy sizes)"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    size = 32 if args.smoke else 128
    print(f"\n## SinGAN-Seg dataset synthesis ({size} px, {singanseg.iters} iterations per scale)", flush=True)
    models_per_hour(models, singanseg, size, str(device), 0.5 * args.budget, samples=16)
    print("\n## label-to-image renderer training", flush=True)
    rows = []
    for architecture in GENERATOR_ARCHITECTURES:
        for size in sizes:
            figure = renderer_throughput(architecture, size, args.batch_size, epochs, device)
            rows.append((architecture, size, figure))
            print(f"| {architecture:6s} | {size:4d} px | {figure} |", flush=True)
    print(f"\n## one 3D SinGAN-Seg model of {Path(item['label']).name} (default size, tumour box)", flush=True)
    left = args.budget - (time.perf_counter() - start)
    print(f"| 3D model | {volume_model(item, volume, volume_size, max(left, 0.0), device)} |", flush=True)
    print(f"\ntotal {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
