"""3D SinGAN-Seg on one real BraTS volume: training time and peak memory, sampling speed and sample quality.

Trains a whole-brain model (``train-singanseg --volume``) of one case at ``--max-size`` on its long side, draws
``--num`` volumes and prints, against the training volume (all in the model's working grid):

- train seconds, peak memory (RSS of this process; on CUDA also the peak allocated GPU memory), volumes/s;
- tumour kept: share of samples whose tumour volume (any class) lies within 0.25x..4x the real one's;
- tumour components: mean number of 3D connected tumour components (26-connected; the real volume's beside it);
- class nesting: share of the tumour core's (BraTS labels 1 and 4) outer 1-voxel ring that is background, i.e. core
  not wrapped in oedema (real beside it), over the samples that have a core;
- SWD of the image channels on the slices of each orientation (sagittal, coronal, axial planes with brain);
- memorisation: NCC of each sample with the training volume (mean, max) and the samples flagged as copies (NCC > 0.95);

all computed by :mod:`monai_singanseg.metrics`; and, to tell a model that cannot hold the volume from noisy
sampling, its reconstruction (the fixed-noise path) against the training volume: mean squared error per channel at
the coarsest and the finest scale, voxels per class (real, reconstructed, in the same place), the noise amplitudes
and the NCC of samples from start scale 1 with the reconstruction. ``--model`` evaluates a trained model instead of
training one (its training time is the model file's).

It writes ``planes.png`` (three orthogonal planes through the tumour of the real volume, first row, and of the
first samples) and ``figures.json`` into ``--out``.

Usage::

    python benchmarks/singanseg_3d.py [--case DIR] [--max-size 48] [--iters N] [--stages 4] [--threads 2]
        [--num 20] [--device cpu] [--out OUT] [--model MODEL]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
from common import TCGA_CASE, add_threads

from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer, real_pyramid
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.metrics import (
    core_background_contact,
    flag_memorised,
    memorisation_scores,
    sliced_wasserstein_distance_3d,
    tumour_components,
    tumour_kept,
    tumour_size_ratio,
)
from monai_singanseg.synthesis import VOLUME_BOXES, VOLUME_MAX_SIZE, singanseg_training_input
from monai_singanseg.synthesis.runner import preview_plane
from monai_singanseg.visualize import contact_sheet


def reconstruction_figures(
    sampler: SinGANSegSampler, gan: torch.Tensor, real_labels: torch.Tensor, samples: torch.Tensor
) -> dict:
    """How well the model holds its training volume: the fixed-noise reconstruction against the real one."""
    sizes = sampler.config.scale_sizes
    reals = real_pyramid(gan[None], sizes, sampler.num_image_channels)
    mse = {}
    for name, k in (("coarsest", 0), ("finest", len(sizes) - 1)):
        error = (sampler.reconstruction(last_scale=k).cpu() - reals[k]) ** 2
        mse[name] = [round(float(v), 4) for v in error.flatten(2).mean(2)[0]]
    rec_images, rec_labels = sampler.split(sampler.reconstruction().cpu())
    overlap = {
        str(v): [
            int((real_labels == c).sum()),
            int((rec_labels == c).sum()),
            int(((real_labels == c) & (rec_labels == c)).sum()),
        ]
        for c, v in enumerate(sampler.label_values)
        if c > 0
    }
    above = sampler.sample(len(samples), start_scale=min(1, sampler.num_scales - 1), seed=1, batch_size=4).cpu()
    return {
        "reconstruction_mse_per_channel": mse,
        "reconstruction_voxels_real_rec_same_place": overlap,
        "noise_amplitudes": [round(a, 4) for a in sampler.config.noise_amplitudes],
        "ncc_start_scale_1_with_reconstruction": float(
            memorisation_scores(sampler.split(above)[0], rec_images).scores.mean()
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", type=Path, default=TCGA_CASE, help="BraTS-named case folder")
    p.add_argument("--max-size", type=int, default=VOLUME_MAX_SIZE)
    p.add_argument(
        "--box",
        choices=VOLUME_BOXES,
        default="tumour",
        help="the working box: tumour + margin (default) or whole brain",
    )
    p.add_argument("--iters", type=int, default=None, help="iterations per scale (default: train-singanseg --volume's)")
    p.add_argument("--stages", type=int, default=4)
    p.add_argument("--base-features", type=int, default=None, help="default: train-singanseg --volume's")
    add_threads(p, 2)
    p.add_argument("--num", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("bench_singanseg_3d"))
    p.add_argument("--model", type=Path, default=None, help="evaluate this trained 3D model of --case (no training)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.case.name
    images = [str(args.case / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]
    gan, meta = singanseg_training_input(
        images, str(args.case / f"{name}_seg.nii.gz"), max_size=args.max_size, volume=True, box=args.box
    )
    print(
        f"{name}: working grid {tuple(gan.shape[1:])}, {gan.shape[0]} channels, "
        f"voxel {abs(meta['source_affine'][0][0]):.2f} mm",
        flush=True,
    )
    settings = SinGANSegSettings.for_volume(num_stages=args.stages, iters=args.iters, base_features=args.base_features)
    model = args.model or args.out / "model3d.pt"
    if args.model is None:
        SinGANSegTrainer(settings, device=args.device, progress=True).fit(gan, model, meta, overwrite=True)
    sampler = SinGANSegSampler(model, device=args.device)
    settings = SinGANSegSettings.from_dict(sampler.config.training)
    sampler.sample(1, seed=123)  # warm-up
    start = time.perf_counter()
    x = sampler.sample(args.num, seed=0, batch_size=4)
    volumes_per_s = args.num / (time.perf_counter() - start)
    fake_images, fake_labels = sampler.split(x.cpu(), min_component=10)
    real_images, real_labels = sampler.split(gan[None])
    core = tuple(i for i, v in enumerate(sampler.label_values) if v in (1, 4))
    nearest = memorisation_scores(fake_images, real_images)
    contact = core_background_contact(fake_labels, core)
    figures = {
        "case": name,
        "working_grid": list(gan.shape[1:]),
        "settings": {
            "box": args.box,
            "max_size": args.max_size,
            "iters": settings.iters,
            "coarsest_iters": settings.coarsest_iters,
            "stages": args.stages,
            "base_features": settings.base_features,
            "threads": args.threads,
            "device": args.device,
        },
        "train_seconds": round(sampler.config.train_seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_cuda_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
        "volumes_per_second": round(volumes_per_s, 3),
        "tumour_kept": float(tumour_kept(fake_labels, real_labels).float().mean()),
        "tumour_volume_ratio_median": float(tumour_size_ratio(fake_labels, real_labels).median()),
        "tumour_components_mean": float(tumour_components(fake_labels).float().mean()),
        "tumour_components_real": int(tumour_components(real_labels)[0]),
        "core_background_contact_mean": float(contact.nanmean()),
        "core_background_contact_real": float(core_background_contact(real_labels, core)[0]),
        "samples_with_core": int((~contact.isnan()).sum()),
        "swd_per_orientation": [round(d, 4) for d in sliced_wasserstein_distance_3d(real_images, fake_images)],
        "ncc_mean": float(nearest.scores.mean()),
        "ncc_max": float(nearest.scores.max()),
        "memorised": int(flag_memorised(nearest).sum()),
        **reconstruction_figures(sampler, gan, real_labels, fake_images),
    }
    rows = [preview_plane(real_images[0], real_labels[0], orthogonal=True)]
    rows += [preview_plane(fake_images[i], fake_labels[i], orthogonal=True) for i in range(min(5, args.num))]
    contact_sheet(
        args.out / "planes.png",
        [r[0] for r in rows],
        [r[1] for r in rows],
        channel_names=list(sampler.config.image_channels),
        row_names=["real"] + [f"sample {i}" for i in range(len(rows) - 1)],
    )
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
