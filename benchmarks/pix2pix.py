"""pix2pix benchmark: CPU training speed and convergence, render throughput, render quality.

Trains on the tumour-bearing axial slices of one real BraTS-space case (TCGA-FG-6692 by default) at
128x128 on CPU, then renders the OTHER case's (TCGA-DU-7294) real label volume with its own brain mask
and compares the render with its real images on the tumour-bearing slices.

Convergence: the training L1 (epoch mean, [-1, 1] units) has plateaued when the best L1 of the last
``--patience`` epochs is less than ``--min-improvement`` (relative) below the best L1 before them;
training stops there (or at ``--max-epochs`` / ``--max-minutes``), and "time to converge" is the
training time up to that epoch.

Quality, per modality, inside the brain: both volumes are scaled to [0, 1] (the render by the model's
training range, the real case by its own brain min/max); SSIM is the mean of MONAI's SSIM map
(``compute_ssim_and_cs``, 7x7 Gaussian window) over window centres inside the brain, PSNR is MONAI's
``PSNRMetric`` (max 1) over brain voxels, and SWD is the multi-scale sliced Wasserstein distance of
``monai_singanseg.metrics.swd`` between real and rendered slices (cropped to the brain box).

Run: ``python benchmarks/pix2pix.py`` (``--threads 2`` default).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from monai.data import MetaTensor
from monai.metrics import PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs

from monai_singanseg.data import brats_datalist, load_image
from monai_singanseg.engines.pix2pix import Pix2PixSettings, train_pix2pix
from monai_singanseg.synthesis import pix2pix_training_slices
from monai_singanseg.metrics.swd import sliced_wasserstein_distance
from monai_singanseg.transforms.intensity import foreground_mask
from monai_singanseg.transforms.labels import LabelToIndex
from monai_singanseg.transforms.slices import axial_axis, rank_tumour_slices
from monai_singanseg.inferers import Pix2PixRender
from monai_singanseg.transforms.slices import AxialSliceGrid

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats_tcga"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _plateau(history: list[dict], patience: int, min_improvement: float) -> bool:
    if len(history) <= patience:
        return False
    before = min(h["l1"] for h in history[:-patience])
    recent = min(h["l1"] for h in history[-patience:])
    return recent > before * (1.0 - min_improvement)


def _to_unit(vol: torch.Tensor, low: list[float], high: list[float]) -> torch.Tensor:
    lo = torch.tensor(low).view(-1, 1, 1, 1)
    hi = torch.tensor(high).view(-1, 1, 1, 1)
    return ((vol.float() - lo) / (hi - lo)).clamp(0.0, 1.0)


def _quality(rendered: torch.Tensor, real: torch.Tensor, brain: torch.Tensor, label: torch.Tensor, modalities, axis: int, stats) -> dict:
    """Per-modality SSIM/PSNR inside the brain on the tumour slices, and SWD over the slices."""
    fg = brain[0].bool()
    real_low = [float(real[c][fg].min()) for c in range(real.shape[0])]
    real_high = [float(real[c][fg].max()) for c in range(real.shape[0])]
    fake01 = _to_unit(rendered, stats.low, stats.high) * fg
    real01 = _to_unit(real, real_low, real_high) * fg
    idx = sorted(rank_tumour_slices(label, axis))
    fake_s = fake01.movedim(1 + axis, 0)[idx]  # (N, C, A, B)
    real_s = real01.movedim(1 + axis, 0)[idx]
    mask_s = fg.movedim(axis, 0)[idx][:, None].float()
    out = {}
    psnr = PSNRMetric(max_val=1.0)
    for c, name in enumerate(modalities):
        ssim_map, _ = compute_ssim_and_cs(
            fake_s[:, c : c + 1], real_s[:, c : c + 1], spatial_dims=2, kernel_size=(7, 7), kernel_sigma=(1.5, 1.5), data_range=1.0
        )
        centre = mask_s[..., 3:-3, 3:-3] > 0  # valid-convolution map: window centres
        ssim = float(ssim_map[centre].mean())
        inside = mask_s[:, 0] > 0
        p = float(psnr(fake_s[:, c][inside][None, None], real_s[:, c][inside][None, None]).mean())
        out[name] = (ssim, p)
    swd = sliced_wasserstein_distance(real_s * 2 - 1, fake_s * 2 - 1, seed=0)
    return {"per_modality": out, "swd": swd, "num_slices": len(idx)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-case", default="TCGA-FG-6692")
    parser.add_argument("--test-case", default="TCGA-DU-7294")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generator-channels", type=int, default=Pix2PixSettings.generator_channels)
    parser.add_argument("--critic-channels", type=int, default=Pix2PixSettings.critic_channels)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--min-improvement", type=float, default=0.02)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="where to keep the trained model (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    items = {e["name"]: e for e in brats_datalist(DATA)}
    train_item, test_item = items[args.train_case], items[args.test_case]
    tmp = tempfile.TemporaryDirectory()
    model_path = Path(args.model) if args.model else Path(tmp.name) / "p2p.pt"
    settings = Pix2PixSettings(
        size=args.size,
        epochs=args.max_epochs,
        batch_size=args.batch_size,
        generator_channels=args.generator_channels,
        critic_channels=args.critic_channels,
        seed=0,
        checkpoint_every=10**6,
    )
    t_start = time.perf_counter()
    state = {"converged_epoch": None}

    def on_epoch(record: dict) -> bool:
        history.append(record)
        print(f"epoch {record['epoch']}: L1 {record['l1']:.4f}  D {record['loss_d']:.3f}  {record['seconds']:.1f} s", flush=True)
        if _plateau(history, args.patience, args.min_improvement):
            state["converged_epoch"] = record["epoch"]
            return True
        return (time.perf_counter() - t_start) / 60.0 > args.max_minutes

    history: list[dict] = []
    data = pix2pix_training_slices([train_item], settings, progress=False)
    result = train_pix2pix(
        data, model_path, settings, device=args.device, overwrite=True, progress=sys.stderr.isatty(), on_epoch=on_epoch
    )
    wall = time.perf_counter() - t_start
    epoch_seconds = [h["seconds"] for h in history]
    train_seconds = sum(epoch_seconds)

    # render throughput and quality on the OTHER case's real label volume, with its own brain mask
    label = load_image(test_item["label"], 3, "label")
    real = torch.cat([load_image(p).as_tensor() for p in test_item["image"]])
    brain = MetaTensor(foreground_mask(real).to(torch.uint8), meta=dict(label.meta))
    renderer = Pix2PixRender(model_path, device=args.device, batch_size=16)
    renderer(label, brain)  # warm-up
    t0 = time.perf_counter()
    rendered = renderer(label, brain)
    render_seconds = time.perf_counter() - t0
    axis = axial_axis(label.affine)
    num_brain_slices = len(AxialSliceGrid(brain, label.affine, args.size).brain_slices)
    index = LabelToIndex(renderer.label_values)(label.as_tensor())
    quality = _quality(rendered.as_tensor(), real, brain.as_tensor(), index, renderer.modalities, axis, renderer.stats)

    print(f"pix2pix benchmark (torch {torch.__version__}, {args.threads} threads, device {args.device})")
    print(f"train: {args.train_case}, {result['num_slices']} tumour slices at {args.size}x{args.size}, "
          f"ngf {args.generator_channels}, ndf {args.critic_channels}, batch {args.batch_size}")
    ordered = sorted(epoch_seconds)
    print(f"time per epoch: mean {train_seconds / len(history):.1f} s, median {ordered[len(ordered) // 2]:.1f} s, "
          f"fastest {ordered[0]:.1f} s, slowest {ordered[-1]:.1f} s")
    conv = state["converged_epoch"]
    if conv:
        print(f"converged (L1 plateau: best L1 of last {args.patience} epochs < {args.min_improvement:.0%} below the earlier best) "
              f"at epoch {conv}: {train_seconds / 60:.1f} min training ({wall / 60:.1f} min wall incl. loading/saving)")
    else:
        print(f"NOT converged within {len(history)} epochs / {args.max_minutes} min (training {train_seconds / 60:.1f} min)")
    l1s = " ".join(f"{h['l1']:.3f}" for h in history)
    print(f"L1 per epoch: {l1s}")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")
    print(f"render: {num_brain_slices} brain slices of {args.test_case} in {render_seconds:.2f} s = "
          f"{num_brain_slices / render_seconds:.1f} slices/s (whole volume incl. crop/resize/paste)")
    print(f"quality on {args.test_case}'s {quality['num_slices']} tumour slices (inside the brain, [0,1] units):")
    for name, (ssim, psnr) in quality["per_modality"].items():
        print(f"  {name:5s} SSIM {ssim:.3f}  PSNR {psnr:.2f} dB")
    print(f"  SWD (real vs rendered slices, 4 modalities): {quality['swd']:.4f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
