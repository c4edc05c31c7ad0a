"""SinGAN-Seg at the evaluation's CPU budget with and without ``pad_as_background``: defects and sample quality.

Trains one SinGAN-Seg model per (case, slice) as ``evaluate`` does at its CPU headline budget (64 px, 40 iterations
per scale, FLAIR + T1c, label 3 counted as 1), once with zero padding (the default) and once with the input shifted
so that the padding reads as background, the same seed; then measures 50 samples of each from start scale 0 with the
learnt layout (``singanseg_quality.quality``): tumour pixels on the frame, near-empty samples, tumour kept, brain
area ratio, SWD, diversity and memorisation. The default slices are the ten small-data slices of the evaluation
(the first two BRATS-2013 cases, five each; pat0001's slice 66 is the k = 1 slice of five of the six folds).

    python benchmarks/singanseg_padding.py --out /tmp/padding            # both paddings, about 20 min on 2 cores
    python benchmarks/singanseg_padding.py --out /tmp/padding --padding background --slices brats_2013_pat0001_1:66

Models are cached in ``OUT/<padding>/`` (as the evaluation caches them); a second run measures without training.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from common import add_threads, brats2013_items
from singanseg_quality import quality, real_slice

from monai_singanseg.evaluation.generator_cache import cached_case_dataset
from monai_singanseg.evaluation.settings import ExperimentSettings
from monai_singanseg.evaluation.synthetic_sets import singanseg_dataset_settings
from monai_singanseg.inferers import SinGANSegSampler

#: the evaluation's small-data slices of its first two BRATS-2013 cases (``evaluate``'s ``spread`` order, k = 5).
DEFAULT_SLICES = (
    *(f"brats_2013_pat0001_1:{z}" for z in (38, 53, 66, 79, 94)),
    *(f"brats_2013_pat0002_1:{z}" for z in (73, 88, 103, 112, 121)),
)
PADDINGS = {"zeros": False, "background": True}
FIGURES = ("frame_tumour", "near_empty", "tumour_kept", "brain_ratio_mean", "swd", "diversity", "ncc_mean", "ncc_max")
LABEL_MAP = {3: 1}


def train(item: dict, z: int, pad_as_background: bool, out: Path) -> Path:
    """The model file of ``item``'s slice ``z`` at the evaluation's budget, from the cache or trained now."""
    settings = ExperimentSettings(
        size=64, singan_iters=40, samples_per_model=10, label_map=LABEL_MAP, channel_names=("flair", "t1ce")
    )
    dataset = singanseg_dataset_settings(settings, None)
    dataset = dataclasses.replace(
        dataset, training=dataclasses.replace(dataset.training, pad_as_background=pad_as_background)
    )
    folder, manifest, _ = cached_case_dataset({**item, "slices": [z]}, dataset, out, "cpu")
    return folder / manifest["entries"][0]["model"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="model cache folder")
    parser.add_argument("--padding", choices=[*PADDINGS, "both"], default="both")
    parser.add_argument("--slices", nargs="+", default=list(DEFAULT_SLICES), metavar="CASE:SLICE")
    parser.add_argument("--num", type=int, default=50, help="samples per model")
    add_threads(parser, 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = {it["name"]: it for it in brats2013_items()}
    paddings = list(PADDINGS) if args.padding == "both" else [args.padding]
    means: dict[str, dict[str, list[float]]] = {p: {k: [] for k in FIGURES} for p in paddings}
    print("model, padding: " + ", ".join(FIGURES))
    for spec in args.slices:
        name, _, z = spec.partition(":")
        if name not in items or not z.isdigit():
            raise SystemExit(f"--slices: CASE:SLICE with CASE one of {sorted(items)}, got {spec!r}")
        for padding in paddings:
            sampler = SinGANSegSampler(train(items[name], int(z), PADDINGS[padding], args.out / padding))
            real_img, real_lab = real_slice(sampler, LABEL_MAP)
            fig, _, _ = quality(sampler, real_img, real_lab, args.num, 0, 0, None)
            for k in FIGURES:
                means[padding][k].append(fig[k])
            print(f"{spec}, {padding}: " + ", ".join(f"{fig[k]:.3f}" for k in FIGURES), flush=True)
    for padding in paddings:
        values = means[padding]
        print(f"mean of {len(args.slices)}, {padding}: " + ", ".join(f"{sum(v) / len(v):.3f}" for v in values.values()))


if __name__ == "__main__":
    main()
