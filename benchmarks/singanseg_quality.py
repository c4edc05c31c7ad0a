"""SinGAN-Seg sample quality of a trained model file: tumour kept, brain shape, fidelity, diversity, memorisation.

For ``--num`` samples at each start scale (default 0 and 1), against the model's own training slice (reloaded
from the source files recorded in the model file):

- tumour kept: fraction of samples whose tumour area (any tumour class) lies within 0.25x..4x the real slice's;
- brain area: non-background area (any image channel above the background level, or tumour) of a sample
  divided by the real slice's, mean and sd;
- SWD (image channels) vs the real slice, diversity (mean pairwise 1 - SSIM), memorisation (max NCC with the
  real slice, mean and max over the samples, and the share above 0.95);
- layout variety: mean IoU of a sample's tumour mask (any class) with the real slice's, and the spread
  (standard deviation, pixels) of the tumour's centre over the samples, per axis;
- defects: tumour pixels on the frame (the outermost rows and columns) per sample, against the real slice's, and the
  share of near-empty samples (brain area below a quarter of the real slice's).

Each start scale is measured with the model's own layout (``--tumour-shift off``) and/or with new tumour layouts
(``--tumour-shift 0.15``: :class:`~monai_singanseg.transforms.gan.RandTumourDisplacement`); both by default.

Usage::

    python benchmarks/singanseg_quality.py MODEL [--num 50] [--start-scales 0 1] [--seed 0] [--threads 1]
        [--tumour-shift off 0.15] [--sheet DIR] [--label-map 3:1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import add_threads

from monai_singanseg.cli.options import add_run_options, parse_label_map
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.metrics import (
    diversity,
    memorisation_scores,
    sliced_wasserstein_distance,
    tumour_kept,
    tumour_size_ratio,
)
from monai_singanseg.synthesis import singanseg_training_input

#: an image pixel is foreground when any channel exceeds this level ([-1, 1] range, background = -1).
FOREGROUND_LEVEL = -0.9


def real_slice(sampler: SinGANSegSampler, label_map: dict[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training slice as (image channels (1, Ci, H, W) in [-1, 1], class-index label (1, 1, H, W)); ``label_map``
    as the model was trained with (e.g. ``{3: 1}`` for BRATS-2013's label 3)."""
    cfg = sampler.config
    files = cfg.source_files
    image = files[:-1] if len(files) > 2 else files[0]
    index = cfg.source_slice_index
    gan, _ = singanseg_training_input(
        image,
        files[-1],
        "auto" if index is None else index,
        max(cfg.source_size),
        label_values=cfg.label_values,
        label_map=label_map,
    )
    images, labels = sampler.split(gan[None])
    return images, labels


def brain_area(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Non-background pixels per item ``(N,)``."""
    fg = (images > FOREGROUND_LEVEL).any(dim=1) | (labels[:, 0] > 0)
    return fg.flatten(1).sum(1).float()


def frame_pixels(masks: torch.Tensor) -> torch.Tensor:
    """Pixels of each ``(N, H, W)`` mask on the frame (its outermost rows and columns), ``(N,)``."""
    inner = torch.zeros_like(masks)
    inner[:, 1:-1, 1:-1] = masks[:, 1:-1, 1:-1]
    return (masks & ~inner).flatten(1).sum(1).float()


def centres(masks: torch.Tensor) -> torch.Tensor:
    """Centre (row, column) of each ``(N, H, W)`` mask, ``(M, 2)`` for the M non-empty ones."""
    rows, cols = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in masks.shape[1:]), indexing="ij")
    area = masks.flatten(1).sum(1)
    keep = area > 0
    m = masks[keep].float()
    return torch.stack([(m * rows).flatten(1).sum(1), (m * cols).flatten(1).sum(1)], dim=1) / area[keep, None]


def quality(
    sampler: SinGANSegSampler,
    real_img: torch.Tensor,
    real_lab: torch.Tensor,
    num: int,
    start_scale: int,
    seed: int,
    tumour_shift: float | None = None,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """The figures for ``num`` samples from ``start_scale``; also returns the samples (images, labels)."""
    x = sampler.sample(num, start_scale=start_scale, seed=seed, batch_size=25, tumour_shift=tumour_shift)
    images, labels = sampler.split(x)
    kept = tumour_kept(labels, real_lab).float().mean()
    brain = brain_area(images, labels) / brain_area(real_img, real_lab)
    ncc = memorisation_scores(images, real_img).scores
    masks, real_mask = labels[:, 0] > 0, real_lab[0, 0] > 0
    iou = (masks & real_mask).flatten(1).sum(1).float() / (masks | real_mask).flatten(1).sum(1).clamp_min(1).float()
    spread = centres(masks).std(0) if int(masks.flatten(1).any(1).sum()) > 1 else torch.zeros(2)
    figures = {
        "tumour_kept": float(kept),
        "tumour_ratio_median": float(tumour_size_ratio(labels, real_lab).median()),
        "brain_ratio_mean": float(brain.mean()),
        "brain_ratio_sd": float(brain.std()),
        "swd": sliced_wasserstein_distance(real_img, images),
        "diversity": diversity(images),
        "ncc_mean": float(ncc.mean()),
        "ncc_max": float(ncc.max()),
        "ncc_over_095": float((ncc > 0.95).float().mean()),
        "iou_mean": float(iou.mean()),
        "centre_sd_row": float(spread[0]),
        "centre_sd_col": float(spread[1]),
        "frame_tumour": float(frame_pixels(masks).mean()),
        "real_frame_tumour": float(frame_pixels(real_mask[None])[0]),
        "near_empty": float((brain < 0.25).float().mean()),
    }
    return figures, images, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--start-scales", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seed", type=int, default=0)
    add_threads(parser, 1)
    parser.add_argument(
        "--tumour-shift",
        nargs="+",
        default=["off", "0.15"],
        help="'off' (the model's own layout) and/or largest tumour shifts (fraction of the side)",
    )
    parser.add_argument("--sheet", type=Path, default=None, help="write DIR/samples_s<k>.png contact sheets")
    parser.add_argument("--overwrite", action="store_true", help="replace existing contact sheets")
    add_run_options(parser, "--label-map", label_map="label values replaced on load, as the model was trained with")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sampler = SinGANSegSampler(args.model, device="cpu")
    real_img, real_lab = real_slice(sampler, parse_label_map(args.label_map))
    cfg = sampler.config
    print(
        f"{args.model}: scales {[s[0] for s in cfg.scale_sizes]}, training {cfg.training}, "
        f"{cfg.train_seconds:.0f} s; real tumour area {int((real_lab > 0).sum())} px, "
        f"brain area {int(brain_area(real_img, real_lab)[0])} px"
    )
    for k in args.start_scales:
        for shift_text in args.tumour_shift:
            shift = None if shift_text == "off" else float(shift_text)
            fig, images, labels = quality(sampler, real_img, real_lab, args.num, k, args.seed, shift)
            print(f"start scale {k}, tumour shift {shift_text}: {report(fig)}")
            if args.sheet is not None:
                from monai_singanseg.visualize import contact_sheet

                args.sheet.mkdir(parents=True, exist_ok=True)
                contact_sheet(
                    args.sheet / f"samples_s{k}_shift_{shift_text}.png",
                    list(images[:8]),
                    list(labels[:8]),
                    channel_names=list(cfg.image_channels),
                    rgb=cfg.rgb,
                    overwrite=args.overwrite,
                )


def report(fig: dict[str, float]) -> str:
    """One line of the figures."""
    return (
        f"tumour kept {fig['tumour_kept']:.2f} (median area ratio {fig['tumour_ratio_median']:.2f}), "
        f"IoU with the real mask {fig['iou_mean']:.3f}, centre sd {fig['centre_sd_row']:.1f} / "
        f"{fig['centre_sd_col']:.1f} px, brain area ratio {fig['brain_ratio_mean']:.2f} +- "
        f"{fig['brain_ratio_sd']:.2f}, "
        f"SWD {fig['swd']:.4f}, diversity {fig['diversity']:.3f}, NCC mean {fig['ncc_mean']:.3f} max "
        f"{fig['ncc_max']:.3f}, NCC > 0.95 {fig['ncc_over_095']:.0%}; tumour px on the frame "
        f"{fig['frame_tumour']:.1f} per sample (real {fig['real_frame_tumour']:.0f}), "
        f"near-empty {fig['near_empty']:.0%}"
    )


if __name__ == "__main__":
    main()
