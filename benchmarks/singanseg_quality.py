"""SinGAN-Seg sample quality of a trained model file: tumour kept, brain shape, fidelity, diversity, memorisation.

For ``--num`` samples at each start scale (default 0 and 1), against the model's own training slice (reloaded
from the source files recorded in the model file):

- tumour kept: fraction of samples whose tumour area (any tumour class) lies within 0.25x..4x the real slice's;
- brain area: non-background area (any image channel above the background level, or tumour) of a sample
  divided by the real slice's, mean and sd;
- SWD (image channels) vs the real slice, diversity (mean pairwise 1 - SSIM), memorisation (max NCC with the
  real slice, mean and max over the samples).

Usage::

    python benchmarks/singanseg_quality.py MODEL [--num 50] [--start-scales 0 1] [--seed 0] [--threads 1]
        [--sheet DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from monai_singanseg.synthesis import singanseg_training_input
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.evaluation import diversity, memorisation_scores, sliced_wasserstein_distance

#: an image pixel is foreground when any channel exceeds this level ([-1, 1] range, background = -1).
FOREGROUND_LEVEL = -0.9


def real_slice(sampler: SinGANSegSampler) -> tuple[torch.Tensor, torch.Tensor]:
    """The training slice as (image channels (1, Ci, H, W) in [-1, 1], class-index label (1, 1, H, W))."""
    cfg = sampler.config
    files = cfg.source_files
    image = files[:-1] if len(files) > 2 else files[0]
    index = cfg.source_slice_index
    gan, _ = singanseg_training_input(image, files[-1], "auto" if index is None else index, max(cfg.source_size),
                                    label_values=cfg.label_values)
    images, labels = sampler.split(gan[None])
    return images, labels


def brain_area(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Non-background pixels per item ``(N,)``."""
    fg = (images > FOREGROUND_LEVEL).any(dim=1) | (labels[:, 0] > 0)
    return fg.flatten(1).sum(1).float()


def quality(sampler: SinGANSegSampler, real_img: torch.Tensor, real_lab: torch.Tensor, num: int, start_scale: int,
            seed: int) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """The figures for ``num`` samples from ``start_scale``; also returns the samples (images, labels)."""
    images, labels = sampler.split(sampler.sample(num, start_scale=start_scale, seed=seed, batch_size=25))
    tumour_real = float((real_lab > 0).sum())
    tumour = (labels > 0).flatten(1).sum(1).float()
    kept = ((tumour >= 0.25 * tumour_real) & (tumour <= 4.0 * tumour_real)).float().mean()
    brain = brain_area(images, labels) / brain_area(real_img, real_lab)
    ncc = memorisation_scores(images, real_img).scores
    figures = {
        "tumour_kept": float(kept),
        "tumour_ratio_median": float((tumour / tumour_real).median()),
        "brain_ratio_mean": float(brain.mean()),
        "brain_ratio_sd": float(brain.std()),
        "swd": sliced_wasserstein_distance(real_img, images),
        "diversity": diversity(images),
        "ncc_mean": float(ncc.mean()),
        "ncc_max": float(ncc.max()),
    }
    return figures, images, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--start-scales", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sheet", type=Path, default=None, help="write DIR/samples_s<k>.png contact sheets")
    parser.add_argument("--overwrite", action="store_true", help="replace existing contact sheets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sampler = SinGANSegSampler(args.model, device="cpu")
    real_img, real_lab = real_slice(sampler)
    cfg = sampler.config
    print(f"{args.model}: scales {[s[0] for s in cfg.scale_sizes]}, training {cfg.training}, "
          f"{cfg.train_seconds:.0f} s; real tumour area {int((real_lab > 0).sum())} px, "
          f"brain area {int(brain_area(real_img, real_lab)[0])} px")
    for k in args.start_scales:
        fig, images, labels = quality(sampler, real_img, real_lab, args.num, k, args.seed)
        print(f"start scale {k}: tumour kept {fig['tumour_kept']:.2f} (median area ratio {fig['tumour_ratio_median']:.2f}), "
              f"brain area ratio {fig['brain_ratio_mean']:.2f} +- {fig['brain_ratio_sd']:.2f}, SWD {fig['swd']:.4f}, "
              f"diversity {fig['diversity']:.3f}, NCC mean {fig['ncc_mean']:.3f} max {fig['ncc_max']:.3f}")
        if args.sheet is not None:
            from monai_singanseg.visualize import contact_sheet

            args.sheet.mkdir(parents=True, exist_ok=True)
            contact_sheet(args.sheet / f"samples_s{k}.png", list(images[:8]), list(labels[:8]),
                          channel_names=list(cfg.image_channels), overwrite=args.overwrite)


if __name__ == "__main__":
    main()
