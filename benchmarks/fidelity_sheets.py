"""Before/after contact sheets of the generator fidelity work, for ``docs/images/``.

- ``pix2pix``: for models trained by ``benchmarks/pix2pix.py --model PATH`` (one per architecture), the test
  case's real slices and each model's render of its real label, cropped to the brain, one row each, at the
  same slices (spread over the tumour). The tumour outline of the real label is drawn on every row.
- ``singanseg``: samples of one SinGAN-Seg model from start scale 0 with the model's own layout and with new
  tumour layouts (same seeds), tumour overlaid.

Usage::

    python benchmarks/fidelity_sheets.py pix2pix --dataset brats2013 --models before.pt after.pt \
        --names "transposed, 2D" "resize, 2.5D, 2 critics" --out docs/images/pix2pix_before_after.png
    python benchmarks/fidelity_sheets.py singanseg --model bundles/singanseg/models/singanseg.pt \
        --out docs/images/singanseg_layouts.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from monai.data import MetaTensor
from pix2pix import DATASETS, _to_unit, dataset_items

from monai_singanseg.data import load_case
from monai_singanseg.inferers import Pix2PixRender, SinGANSegSampler
from monai_singanseg.transforms.condition import TissueClasses
from monai_singanseg.transforms.intensity import foreground_mask
from monai_singanseg.transforms.labels import IndexToLabel
from monai_singanseg.transforms.slices import axial_axis, rank_tumour_slices
from monai_singanseg.visualize import contact_sheet


def _unit(vol: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Each channel to [-1, 1] by its own brain min/max (background -1)."""
    low = [float(c[brain].min()) for c in vol]
    high = [float(c[brain].max()) for c in vol]
    return torch.where(brain, _to_unit(vol, low, high) * 2 - 1, torch.full_like(vol, -1.0))


def pix2pix_sheet(args: argparse.Namespace) -> None:
    modalities, label_values, label_map, _, test_default = DATASETS[args.dataset]
    items = {e["name"]: e for e in dataset_items(args.dataset)}
    case = load_case(
        items[args.test_case or test_default], label_values=label_values, spatial_ndim=3, label_map=label_map
    )
    index, real = case["label"], case["image"].as_tensor().float()
    label = MetaTensor(IndexToLabel(label_values)(index.as_tensor()), meta=dict(index.meta))
    brain_t = foreground_mask(real) | (index.as_tensor() > 0)
    brain = MetaTensor(brain_t.to(torch.uint8), meta=dict(index.meta))
    axis = axial_axis(index.affine)
    tumour = sorted(rank_tumour_slices(index, axis))
    picks = [tumour[round(i * (len(tumour) - 1) / (args.slices - 1))] for i in range(args.slices)]
    fg = brain_t[0]
    volumes = [_unit(real, fg)]
    for path in args.models:
        renderer = Pix2PixRender(path)
        tissue = None
        if renderer.tissue_classes:
            ch = renderer.config.tissue_channel
            tissue = TissueClasses(renderer.tissue_classes)(real[ch : ch + 1], brain_t, index.as_tensor() > 0)
        volumes.append(_unit(renderer(label, brain, tissue).as_tensor().float(), fg))
    nz = torch.nonzero(fg.any(axis))
    (a0, b0), (a1, b1) = nz.min(0).values.tolist(), nz.max(0).values.tolist()
    images, labels, names = [], [], []
    for z in picks:
        for name, vol in zip(["real", *args.names], volumes):
            plane = vol.movedim(1 + axis, 1)[:, z]
            lab = index.as_tensor().movedim(1 + axis, 1)[:, z]
            images.append(plane[:, a0 : a1 + 1, b0 : b1 + 1])
            labels.append(lab[:, a0 : a1 + 1, b0 : b1 + 1])
            names.append(f"{name} z{z}")
    contact_sheet(args.out, images, labels, channel_names=list(modalities), row_names=names, overwrite=args.overwrite)
    print(f"wrote {args.out}")


def singanseg_sheet(args: argparse.Namespace) -> None:
    sampler = SinGANSegSampler(args.model)
    images, labels, names = [], [], []
    for shift, title in ((None, "own layout"), (args.tumour_shift, f"shift {args.tumour_shift}")):
        im, lab = sampler.split(sampler.sample(args.num, seed=args.seed, tumour_shift=shift))
        images += list(im)
        labels += list(lab)
        names += [f"{title} #{i}" for i in range(args.num)]
    order = [i for pair in zip(range(args.num), range(args.num, 2 * args.num)) for i in pair]  # before/after rows
    contact_sheet(
        args.out,
        [images[i] for i in order],
        [labels[i] for i in order],
        channel_names=list(sampler.config.image_channels),
        rgb=sampler.config.rgb,
        row_names=[names[i] for i in order],
        overwrite=args.overwrite,
    )
    print(f"wrote {args.out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pix2pix")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="brats2013")
    p.add_argument("--test-case", default=None)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--slices", type=int, default=3)
    s = sub.add_parser("singanseg")
    s.add_argument("--model", required=True)
    s.add_argument("--num", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tumour-shift", type=float, default=0.15)
    for q in (p, s):
        q.add_argument("--out", type=Path, required=True)
        q.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "pix2pix":
        if len(args.names) != len(args.models):
            parser.error("give one --names entry per --models entry")
        pix2pix_sheet(args)
    else:
        singanseg_sheet(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
