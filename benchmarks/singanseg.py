"""SinGAN-Seg benchmark: training time and peak memory, sampling speed, fidelity of 50 samples.

On a 128x128 tumour slice of a ``../shared/data/brats_tcga`` case (4 MR sequences + 3 tumour classes = 7
channels), on CPU with 2 torch threads:

- wall time and peak RSS of ``train-singanseg`` with the default ("fast") schedule, run as a child
  process (peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)``, data loading included);
- samples per second of the trained model;
- SWD (real slice vs samples, image channels), diversity (mean pairwise 1 - SSIM) and memorisation
  (max NCC against the training slice) of 50 samples;
- the same SWD for the reference "singan" schedule (``--singan-iters`` per scale; its default 2000 takes
  hours on CPU, so the comparison uses fewer iterations: the figure printed says how many).

Usage::

    python benchmarks/singanseg.py [--case DIR] [--threads 2] [--singan-iters 50] [--skip-singan] [--keep-model PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import TCGA_CASE, add_threads

from monai_singanseg.evaluation import diversity, memorisation_scores, sliced_wasserstein_distance
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.synthesis import singanseg_training_input

DEFAULT_CASE = TCGA_CASE


def case_files(case: Path) -> tuple[list[str], str]:
    name = case.name
    return [str(case / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")], str(case / f"{name}_seg.nii.gz")


def train(images: list[str], label: str, out: Path, threads: int, extra: list[str]) -> tuple[float, float]:
    """Run ``train-singanseg`` as a child process; returns (wall seconds, peak RSS MiB of the child)."""
    cmd = [
        sys.executable,
        "-m",
        "monai_singanseg",
        "train-singanseg",
        "--image",
        *images,
        "--label",
        label,
        "--out",
        str(out),
        "--max-size",
        "128",
        "--threads",
        str(threads),
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"training failed: {res.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"  (child CPU time so far: {usage.ru_utime + usage.ru_stime:.1f} s, machine load {os.getloadavg()[0]:.1f})")
    return wall, usage.ru_maxrss / 1024.0


def fidelity(model: Path, real: torch.Tensor, num: int = 50) -> dict[str, float]:
    sampler = SinGANSegSampler(model, device="cpu")
    images, _ = sampler.split(sampler.sample(num, seed=0, batch_size=25))
    n_img = sampler.num_image_channels
    ref = real[None, :n_img]
    scores = memorisation_scores(images, ref).scores
    return {
        "swd": sliced_wasserstein_distance(ref, images),
        "diversity": diversity(images),
        "memorisation_mean": float(scores.mean()),
        "memorisation_max": float(scores.max()),
    }


def samples_per_second(model: Path, num: int = 200, batch_size: int = 50) -> float:
    sampler = SinGANSegSampler(model, device="cpu")
    sampler.sample(4, seed=1)  # warm-up
    start = time.perf_counter()
    sampler.sample(num, seed=2, batch_size=batch_size)
    return num / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE)
    add_threads(parser, 2)
    parser.add_argument("--singan-iters", type=int, default=50)
    parser.add_argument("--skip-singan", action="store_true")
    parser.add_argument("--keep-model", type=Path, default=None, help="copy the default-schedule model here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, label = case_files(args.case)
    real, meta = singanseg_training_input(images, label, "auto", max_size=128)
    print(
        f"case {meta['source_name']} slice {meta['source_slice_index']}: {tuple(real.shape)} (7 = 4 MR + 3 classes), "
        f"CPU, {args.threads} threads, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        fast_model = Path(tmp) / "fast.pt"
        wall, rss = train(images, label, fast_model, args.threads, [])
        cfg = SinGANSegSampler(fast_model).config
        if args.keep_model is not None:
            shutil.copyfile(fast_model, args.keep_model)
        print(f"fast (default): scales {[s[0] for s in cfg.scale_sizes]}, {cfg.training['iters']} iters/stage")
        print(f"  training wall time: {wall:.1f} s ({wall / 60:.2f} min) [target <= 600 s]")
        print(f"  training peak RSS:  {rss:.0f} MiB [target <= 1536 MiB]")
        print(f"  sampling: {samples_per_second(fast_model):.1f} samples/s at 128x128 [target >= 50]")
        fid = fidelity(fast_model, real)
        print(
            "  50 samples: SWD {swd:.4f}, diversity (1-SSIM) {diversity:.4f}, memorisation NCC mean "
            "{memorisation_mean:.4f} max {memorisation_max:.4f}".format(**fid)
        )
        if not args.skip_singan:
            singan_model = Path(tmp) / "singan.pt"
            wall_s, _ = train(
                images, label, singan_model, args.threads, ["--schedule", "singan", "--iters", str(args.singan_iters)]
            )
            cfg = SinGANSegSampler(singan_model).config
            fid_s = fidelity(singan_model, real)
            print(
                f"singan (reference schedule, {args.singan_iters} iters/scale instead of 2000): "
                f"scales {[s[0] for s in cfg.scale_sizes]}, training {wall_s:.1f} s"
            )
            print(
                "  50 samples: SWD {swd:.4f}, diversity {diversity:.4f}, memorisation NCC mean "
                "{memorisation_mean:.4f} max {memorisation_max:.4f}".format(**fid_s)
            )
            verdict = "no worse" if fid["swd"] <= fid_s["swd"] else "WORSE"
            print(f"fast SWD {fid['swd']:.4f} vs singan SWD {fid_s['swd']:.4f}: fast is {verdict}")


if __name__ == "__main__":
    main()
