"""Many SinGAN-Seg models at once on one device: models per hour at M = 1, 8, 32, 128 batched models.

Issue #14's goal: the SinGAN-Seg paper's 1,000-model setting (one model per image) in under one hour on one GPU,
i.e. >= 1,000 models/hour. Each M trains M models of one shape together with ``BatchedSinGANSegTrainer.fit_many``
(the code path of ``synthesize --models-per-batch M``), at 128x128 with the default ("fast") schedule, on tumour
slices of the packaged demo case (4 MR sequences + 3 tumour classes = 7 channels; M > the number of distinct slices
repeats slices, which does not change the cost). It then times sampling (``SinGANSegSampler``, 64 per call).

The whole script is sized for one call of under 8 minutes on a GPU: ``--budget`` seconds (default 420) are shared
by the M values; an M whose full training would not fit in what is left (projected from the previous M, as the
time per model never grows with M) is measured on a shortened schedule (``--short-iters`` per scale) and scaled
to the default schedule's iterations (training time is linear in the iterations of each scale); the line says so.

    python benchmarks/synthesize_gpu.py                                   # GPU: M = 1 8 32 128
    python benchmarks/synthesize_gpu.py --device cpu --models 1 4 --iters 10 --max-size 64   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from monai_singanseg.data import demo_case
from monai_singanseg.engines.singanseg import BatchedSinGANSegTrainer, SinGANSegSettings
from monai_singanseg.farm import plan_work
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.synthesis import singanseg_training_input


def demo_slices(max_size: int, count: int) -> list[tuple[torch.Tensor, dict]]:
    """GAN tensors and metadata of up to ``count`` tumour slices of the packaged demo case, spread over the tumour."""
    entries = plan_work([demo_case()], slices_per_case=count)
    return [singanseg_training_input(e.image, e.label, e.slice_index, max_size, name=e.id) for e in entries]


def total_iters(settings: SinGANSegSettings, num_scales: int) -> int:
    """Training iterations over all scales (the coarsest scale has its own count)."""
    return settings.coarsest_iters + (num_scales - 1) * settings.iters


def train(m: int, slices: list, settings: SinGANSegSettings, device: str, folder: Path) -> tuple[float, list[Path]]:
    """Train ``m`` models together; returns (wall seconds, model files)."""
    reals = [slices[i % len(slices)][0] for i in range(m)]
    metas = [dict(slices[i % len(slices)][1], source_name=f"model{i}") for i in range(m)]
    outs = [folder / f"m{m}_{i}.pt" for i in range(m)]
    trainer = BatchedSinGANSegTrainer(settings, device=device, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.fit_many(reals, outs, metas, seeds=list(range(m)), overwrite=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, outs


def models_per_hour(
    models: Sequence[int],
    settings: SinGANSegSettings,
    max_size: int,
    device: str,
    budget: float,
    short_iters: int = 20,
    samples: int = 64,
) -> None:
    """Print the models/hour of each batch size M in ``models`` (and sampling speed), within ``budget`` seconds.

    An M whose full training would not fit in what is left of the budget (projected from the previous M) is
    measured on ``short_iters`` iterations per scale and scaled to the schedule's iterations; the line says so.
    """
    start = time.perf_counter()
    dev = torch.device(device)
    slices = demo_slices(max_size, 16)
    print(f"{len(slices)} distinct tumour slices of the demo case, GAN tensor {tuple(slices[0][0].shape)}", flush=True)
    per_model = None  # seconds per model of the last M (never grows with M)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train(1, slices, dataclasses.replace(settings, iters=2, coarsest_iters=2), device, folder)  # warm-up
        for m in models:
            left = budget - (time.perf_counter() - start)
            projected = None if per_model is None else per_model * m
            short = projected is not None and projected > left * 0.8
            run = (
                dataclasses.replace(settings, iters=short_iters, coarsest_iters=3 * short_iters) if short else settings
            )
            wall, outs = train(m, slices, run, device, folder)
            num_scales = SinGANSegSampler(outs[0], device="cpu").num_scales
            full = wall * total_iters(settings, num_scales) / total_iters(run, num_scales)
            per_model = full / m
            memory = (
                f", peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB"
                if dev.type == "cuda"
                else ""
            )
            how = (
                f"measured on {total_iters(run, num_scales)} iterations in {wall:.1f} s, scaled to "
                f"{total_iters(settings, num_scales)}"
                if short
                else "full schedule"
            )
            print(
                f"M = {m:4d}: {full:8.1f} s for {m} models ({how}) -> {3600 / per_model:8.1f} models/hour{memory}",
                flush=True,
            )
            if m == models[0] or m == 8:
                sampler = SinGANSegSampler(outs[0], device=device)
                sampler.sample(samples, seed=0)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                sampler.sample(samples, seed=1)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                print(
                    f"           sampling: {samples / (time.perf_counter() - t):.1f} samples/s "
                    f"({samples} per call, start scale 0)",
                    flush=True,
                )
            for path in outs:
                path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--models", type=int, nargs="+", default=[1, 8, 32, 128], help="batch sizes M (default 1 8 32 128)"
    )
    parser.add_argument("--max-size", type=int, default=128)
    parser.add_argument("--iters", type=int, default=None, help="iterations per scale (default: the schedule's, 200)")
    parser.add_argument("--short-iters", type=int, default=20, help="iterations per scale of a shortened measurement")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all M values (default 420)")
    parser.add_argument("--samples", type=int, default=64, help="samples per sampling call (default 64)")
    args = parser.parse_args()
    start = time.perf_counter()
    settings = SinGANSegSettings(iters=args.iters)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(
        f"device {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"{args.max_size}px, schedule {settings.schedule}, {settings.num_stages} stages, iters {settings.iters} "
        f"(coarsest {settings.coarsest_iters})",
        flush=True,
    )
    models_per_hour(args.models, settings, args.max_size, args.device, args.budget, args.short_iters, args.samples)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
