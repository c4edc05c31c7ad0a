"""Style transfer benchmark: speed, and how close SinGAN-Seg samples get to the real slice's look, per method.

``--num`` samples (start scale 0) of a SinGAN-Seg model file are styled with the model's real training
slice as the style image (reloaded from the source files recorded in the model file, the same slice and
crop as training; see ``singanseg_quality.real_slice``), by each method: ``none``, ``histogram``,
``random``, ``histogram+random`` (Gatys methods at each of ``--steps``) and ``vgg19`` /
``histogram+vgg19`` when ``--vgg19-weights`` is given. For each method it prints:

- seconds per sample (4 MR channels, 128x128, on ``--threads`` CPU threads);
- hist: per-channel 1D Wasserstein distance between the sample's and the real slice's foreground
  intensities (mean over channels and samples; [-1, 1] units);
- gram: random-feature Gram (style) distance to the real slice, measured with a random network of another
  architecture and seed than the one the ``random`` methods optimise (mean over samples);
- swd: multi-scale sliced Wasserstein distance of the styled set against the real slice (image channels);
- change: mean absolute change of the foreground pixels (how far the content moved).

Usage::

    python benchmarks/style_transfer.py [--model bundles/singanseg/models/singanseg.pt] [--num 16] [--steps 50 100 200]
        [--lr 0.03] [--methods none histogram random histogram+random] [--vgg19-weights PATH] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import add_threads
from scipy.stats import wasserstein_distance
from singanseg_quality import real_slice

from monai_singanseg.evaluation import sliced_wasserstein_distance
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.networks import RandomFeatures
from monai_singanseg.transforms import StyleTransfer, style_distance, tanh_foreground

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "bundles" / "singanseg" / "models" / "singanseg.pt"


def histogram_distance(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over channels of the 1D Wasserstein distance between the foreground intensities of two images."""
    fg, ref_fg = tanh_foreground(image)[0], tanh_foreground(reference)[0]
    return (
        sum(wasserstein_distance(image[c][fg].numpy(), reference[c][ref_fg].numpy()) for c in range(image.shape[0]))
        / image.shape[0]
    )


def figures(
    styled: torch.Tensor, samples: torch.Tensor, real: torch.Tensor, judge: torch.nn.Module
) -> dict[str, float]:
    """The quality figures of a styled set ``(N, C, H, W)`` against the real slice ``(C, H, W)``."""
    fg = tanh_foreground(samples.transpose(0, 1))[0]
    return {
        "hist": sum(histogram_distance(s, real) for s in styled) / len(styled),
        "gram": sum(style_distance(s, real, judge) for s in styled) / len(styled),
        "swd": sliced_wasserstein_distance(real[None], styled),
        "change": float((styled - samples).abs().transpose(0, 1)[:, fg].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--methods", nargs="+", default=["none", "histogram", "random", "histogram+random"])
    parser.add_argument("--vgg19-weights", type=Path, default=None, help="adds vgg19 and histogram+vgg19")
    parser.add_argument("--seed", type=int, default=0)
    add_threads(parser, 1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = list(args.methods) + (["vgg19", "histogram+vgg19"] if args.vgg19_weights else [])
    sampler = SinGANSegSampler(args.model, device="cpu")
    real = real_slice(sampler)[0][0]
    samples = sampler.split(sampler.sample(args.num, start_scale=0, seed=args.seed))[0]
    judge = RandomFeatures(channels=(64,), kernel_size=5, num_scales=4, seed=1234)
    cfg = sampler.config
    print(
        f"{args.model}: {args.num} samples (start scale 0) of {cfg.source_name} slice {cfg.source_slice_index}, "
        f"{tuple(samples.shape[1:])}; style = the real training slice; {args.threads} thread(s), lr {args.lr}"
    )
    print(f"{'method':<30} {'s/sample':>9} {'hist':>7} {'gram':>8} {'swd':>7} {'change':>7}")
    for method in methods:
        gatys = method not in ("none", "histogram")
        for steps in args.steps if gatys else [0]:
            if method == "none":
                start = time.perf_counter()
                styled = samples
            else:
                transfer = StyleTransfer(
                    real, method=method, steps=steps, lr=args.lr, weights_path=args.vgg19_weights, device=args.device
                )
                start = time.perf_counter()
                styled = torch.stack([torch.as_tensor(transfer(s)) for s in samples])
            seconds = (time.perf_counter() - start) / len(samples)
            f = figures(styled, samples, real, judge)
            name = f"{method} ({steps} steps)" if gatys else method
            print(
                f"{name:<30} {seconds:9.2f} {f['hist']:7.4f} {f['gram']:8.5f} {f['swd']:7.4f} {f['change']:7.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
