"""Can the coarsest scale of a 3D SinGAN-Seg model hold the brain? Train that scale alone at several sizes.

The coarsest scale of a SinGAN-Seg model maps a fixed noise map to the whole training volume at low resolution (its
reconstruction) and random noise to new layouts. This trains only that scale (``num_stages=1``, the 3D defaults'
iterations) on the training volume resampled to a short side of each ``--short-sides`` value and prints the
reconstruction's mean squared error per channel (image channels, then label channels) and the training time.

Usage::

    python benchmarks/singanseg_3d_coarsest.py [--case DIR] [--short-sides 16 10 8] [--threads 2] [--out OUT]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from common import TCGA_CASE, add_threads

from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer, real_pyramid
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.synthesis import singanseg_training_input


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", type=Path, default=TCGA_CASE, help="BraTS-named case folder")
    p.add_argument("--short-sides", type=int, nargs="+", default=[16, 10, 8])
    add_threads(p, 2)
    p.add_argument("--out", type=Path, default=Path("bench_singanseg_3d_coarsest"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.case.name
    images = [str(args.case / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]
    gan, meta = singanseg_training_input(images, str(args.case / f"{name}_seg.nii.gz"), volume=True)
    n_img = meta["num_image_channels"]
    for short in args.short_sides:
        size = [round(d * short / min(gan.shape[1:])) for d in gan.shape[1:]]
        (small,) = real_pyramid(gan[None], [size], n_img)  # the coarsest scale as the trainer resamples it
        settings = SinGANSegSettings.for_volume(num_stages=1, min_size=short)
        model = args.out / f"coarsest_{short}.pt"
        start = time.perf_counter()
        SinGANSegTrainer(settings, device="cpu", progress=False).fit(small[0], model, meta, overwrite=True)
        seconds = time.perf_counter() - start
        error = ((SinGANSegSampler(model).reconstruction() - small) ** 2).flatten(2).mean(2)[0]
        print(
            f"short side {short}: grid {'x'.join(map(str, size))}, {settings.coarsest_iters} iterations, {seconds:.0f} "
            "s, "
            f"reconstruction MSE image {[round(float(v), 4) for v in error[:n_img]]} "
            f"label {[round(float(v), 4) for v in error[n_img:]]}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
