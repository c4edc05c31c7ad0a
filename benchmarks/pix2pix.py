"""pix2pix benchmark: CPU training speed and convergence, render throughput, render quality and artefacts.

``--dataset tcga`` (default): trains on the tumour-bearing axial slices of one real BraTS-space case
(TCGA-FG-6692, four sequences) at 128x128 on CPU, then renders the OTHER case's (TCGA-DU-7294) real label
volume with its own brain mask and compares the render with its real images. ``--dataset brats2013``:
trains on five of the six expert-labelled BRATS-2013 cases (FLAIR + T1c) and renders the sixth
(``--test-case``, default brats_2013_pat0001_1).

Convergence: the training L1 (epoch mean, [-1, 1] units) has plateaued when the best L1 of the last
``--patience`` epochs is less than ``--min-improvement`` (relative) below the best L1 before them;
training stops there (or at ``--max-epochs`` / ``--max-minutes``), and "time to converge" is the
training time up to that epoch.

Quality, per modality, inside the brain: both volumes are brought to [0, 1] units. ``--units zscore`` (default):
each volume is z-scored over its own brain, as segmentation pipelines normalise MR (nnU-Net, MONAI's
``NormalizeIntensity(nonzero=True, channel_wise=True)``), and 3 sd below to 5 sd above the mean map to [0, 1]:
MR intensities have no absolute scale, and the render is in the training case's units while the real volume
comes from another scanner. ``--units model``: the render by the model's training range and the real case by its
own brain min/max (the protocol of the figures before the fidelity work; it counts the two patients' intensity
scales as a rendering error); SSIM is the mean of MONAI's SSIM map
(``compute_ssim_and_cs``, 7x7 Gaussian window) over window centres inside the brain, PSNR is MONAI's
``PSNRMetric`` (max 1) over brain voxels, and SWD is the multi-scale sliced Wasserstein distance of
``monai_singanseg.metrics.swd`` between real and rendered slices (cropped to the brain box).

Artefacts: the checkerboard ratio is the share of spectral power on the stride-2 (Nyquist) frequency lines of
the generator's working-size output (``monai_singanseg.metrics.periodic_power``) divided by the same share of
the real working-size slices (target <= 1.2); the slice-agreement ratio is the mean SSIM of consecutive axial
slices inside the brain over the tumour slab, rendered volume divided by real volume (target >= 0.9).

Run: ``python benchmarks/pix2pix.py`` (``--threads 2`` default). The architecture before the fidelity work:
``--upsample transposed --context-slices 0 --critic-scales 1 --feature-matching-weight 0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import add_threads, brats2013_items, tcga_items
from monai.data import MetaTensor
from monai.metrics import PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs

from monai_singanseg.data import load_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings, train_pix2pix
from monai_singanseg.inferers import Pix2PixRender
from monai_singanseg.io import load_model_file
from monai_singanseg.metrics import FINE_DETAIL_CUTOFF, fine_detail_ratio, neighbour_slice_ssim, periodic_power
from monai_singanseg.metrics.swd import sliced_wasserstein_distance
from monai_singanseg.networks.spade import GENERATOR_ARCHITECTURES
from monai_singanseg.synthesis import pix2pix_case_slices, pix2pix_training_slices
from monai_singanseg.transforms.condition import TissueClasses
from monai_singanseg.transforms.intensity import foreground_mask
from monai_singanseg.transforms.labels import IndexToLabel
from monai_singanseg.transforms.slices import AxialSliceGrid, axial_axis, rank_tumour_slices

#: z-scores mapped to [0, 1] in the default ("zscore") intensity units: 3 sd below to 5 sd above the brain mean
#: (brain MR intensities are skewed to the bright side: enhancing tumour, oedema on FLAIR / T2).
ZSCORE_WINDOW = (-3.0, 5.0)
#: dataset -> (modalities, label values, label map, default train cases (None: all but the test case), test case)
DATASETS = {
    "tcga": (("flair", "t1", "t1ce", "t2"), (0, 1, 2, 4), None, ["TCGA-FG-6692"], "TCGA-DU-7294"),
    "brats2013": (("flair", "t1ce"), (0, 1, 2, 4), {3: 1}, None, "brats_2013_pat0001_1"),
}


def dataset_items(name: str) -> list[dict]:
    """The dataset's cases as datalist items (BRATS-2013 keeps its own file names)."""
    return tcga_items() if name == "tcga" else brats2013_items()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model_settings(config, modalities: tuple[str, ...]) -> Pix2PixSettings:
    """The training settings a model config records; a tissue modality the dataset lacks becomes its last sequence."""
    settings = Pix2PixSettings.from_dict(config.settings)
    if settings.tissue_classes and settings.tissue_modality not in modalities:
        print(f"note: the dataset has no {settings.tissue_modality}; tissue classes from {modalities[-1]} stand in")
        settings = dataclasses.replace(settings, tissue_modality=modalities[-1])
    return settings


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


def _standardised(vol: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Each channel z-scored over the brain (``fg``), then the window ``ZSCORE_WINDOW`` mapped to [0, 1]."""
    out = torch.empty_like(vol, dtype=torch.float32)
    low, high = ZSCORE_WINDOW
    for c in range(vol.shape[0]):
        inside = vol[c][fg].double()
        z = (vol[c].double() - inside.mean()) / inside.std()
        out[c] = ((z - low) / (high - low)).clamp(0.0, 1.0).float()
    return out


def _resampling_ceiling(
    real: torch.Tensor,
    brain: torch.Tensor,
    label: torch.Tensor,
    modalities,
    axis: int,
    affine: torch.Tensor,
    renderer: Pix2PixRender,
    units: str,
) -> dict:
    """:func:`_quality` of the real volume itself sent through the renderer's slice grid and back (extracted as the
    training slices are, pasted as a render is): the figures a perfect generator at the working size would reach."""
    grid = AxialSliceGrid(brain, affine, renderer.size, renderer.margin)
    slices = grid.extract(real, grid.brain_slices, mode="area")
    round_trip = grid.paste(slices, grid.brain_slices, real.clone().float(), mode="bicubic")
    return _quality(round_trip, real, brain, label, modalities, axis, renderer.stats, units)


def _quality(
    rendered: torch.Tensor,
    real: torch.Tensor,
    brain: torch.Tensor,
    label: torch.Tensor,
    modalities,
    axis: int,
    stats,
    units: str = "zscore",
) -> dict:
    """Per-modality SSIM/PSNR inside the brain on the tumour slices, and SWD over the slices.

    ``units="zscore"``: each volume (render and real) z-scored over its own brain, window ``ZSCORE_WINDOW`` to
    [0, 1]; ``"model"``: the render scaled by the model's training range, the real volume by its brain min / max.
    """
    fg = brain[0].bool()
    if units == "zscore":
        fake01 = _standardised(rendered, fg) * fg
        real01 = _standardised(real, fg) * fg
    else:
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
            fake_s[:, c : c + 1],
            real_s[:, c : c + 1],
            spatial_dims=2,
            kernel_size=(7, 7),
            kernel_sigma=(1.5, 1.5),
            data_range=1.0,
        )
        centre = mask_s[..., 3:-3, 3:-3] > 0  # valid-convolution map: window centres
        ssim = float(ssim_map[centre].mean())
        inside = mask_s[:, 0] > 0
        p = float(psnr(fake_s[:, c][inside][None, None], real_s[:, c][inside][None, None]).mean())
        out[name] = (ssim, p)
    detail = fine_detail_ratio(fake_s, real_s, mask_s[:, 0], mask_s[:, 0])
    swd = sliced_wasserstein_distance(real_s * 2 - 1, fake_s * 2 - 1, seed=0)
    # through-plane agreement over the tumour slab (first to last tumour slice), inside the brain
    slab = [slice(None)] * 3
    slab[axis] = slice(idx[0], idx[-1] + 1)
    fg_slab = fg[tuple(slab)]
    agree_fake = neighbour_slice_ssim(fake01[(slice(None), *slab)], fg_slab, axis)
    agree_real = neighbour_slice_ssim(real01[(slice(None), *slab)], fg_slab, axis)
    return {
        "per_modality": out,
        "fine_detail": dict(zip(modalities, detail.tolist())),
        "swd": swd,
        "num_slices": len(idx),
        "agreement": (agree_fake, agree_real),
        "sheet": (real_s, fake_s, idx),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="tcga")
    parser.add_argument(
        "--train-cases", nargs="+", default=None, help="default: the dataset's (brats2013: all but the test case)"
    )
    parser.add_argument("--test-case", default=None)
    parser.add_argument("--size", type=int, default=128)
    add_threads(parser, 2)
    parser.add_argument("--generator-channels", type=int, default=Pix2PixSettings.generator_channels)
    parser.add_argument("--critic-channels", type=int, default=Pix2PixSettings.critic_channels)
    parser.add_argument("--upsample", choices=("resize", "transposed"), default=Pix2PixSettings.upsample)
    parser.add_argument("--context-slices", type=int, default=Pix2PixSettings.context_slices)
    parser.add_argument("--critic-scales", type=int, default=Pix2PixSettings.critic_scales)
    parser.add_argument("--feature-matching-weight", type=float, default=Pix2PixSettings.feature_matching_weight)
    parser.add_argument(
        "--architecture", choices=GENERATOR_ARCHITECTURES, default="unet", help="the generator (default unet)"
    )
    parser.add_argument("--l1-weight", type=float, default=None, help="default: the architecture's")
    parser.add_argument("--noise", action="store_true", help="spade: per-pixel noise inputs (Pix2PixSettings.noise)")
    parser.add_argument("--tissue-classes", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument(
        "--patience", type=int, default=5, help="epochs of the L1 plateau rule (0: train all --max-epochs)"
    )
    parser.add_argument("--min-improvement", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="where to keep the trained model (default: a temporary folder)")
    parser.add_argument("--sheet", type=Path, default=None, help="write a PNG of real vs rendered tumour slices")
    parser.add_argument(
        "--units",
        choices=("zscore", "model"),
        default="zscore",
        help="intensity units of the quality figures: each volume z-scored over its own brain (default), or "
        "the render by the model's training range and the real volume by its brain min/max (the earlier "
        "protocol)",
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score the existing --model with its own settings (e.g. the shipped bundles/pix2pix/models/pix2pix.pt); "
        "a dataset with fewer sequences is scored on the sequences it has, and a tissue modality it lacks is "
        "stood in for by its last sequence",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    modalities, label_values, label_map, train_default, test_default = DATASETS[args.dataset]
    items = {e["name"]: e for e in dataset_items(args.dataset)}
    test_name = args.test_case or test_default
    train_names = args.train_cases or train_default or [n for n in items if n != test_name]
    if test_name in train_names:
        parser.error(f"the test case {test_name} is among the training cases")
    tmp = tempfile.TemporaryDirectory()
    model_path = Path(args.model) if args.model else Path(tmp.name) / "p2p.pt"
    settings = Pix2PixSettings(
        size=args.size,
        epochs=args.max_epochs,
        batch_size=args.batch_size,
        generator_channels=args.generator_channels,
        critic_channels=args.critic_channels,
        upsample=args.upsample,
        context_slices=args.context_slices,
        critic_scales=args.critic_scales,
        feature_matching_weight=args.feature_matching_weight,
        architecture=args.architecture,
        l1_weight=args.l1_weight,
        noise=args.noise,
        tissue_classes=args.tissue_classes,
        tissue_modality=modalities[-1] if args.dataset == "brats2013" else "t1",
        seed=args.seed,
        checkpoint_every=10**5,
    )
    if args.score_only:
        config = load_model_file(model_path).config
        settings = _model_settings(config, modalities)
    t_start = time.perf_counter()
    state = {"converged_epoch": None}

    def on_epoch(record: dict) -> bool:
        history.append(record)
        print(
            f"epoch {record['epoch']}: L1 {record['l1']:.4f}  FM {record['feature_matching']:.4f}  D "
            f"{record['loss_d']:.3f}  "
            f"{record['seconds']:.1f} s",
            flush=True,
        )
        if args.patience and _plateau(history, args.patience, args.min_improvement):
            state["converged_epoch"] = record["epoch"]
            return True
        return (time.perf_counter() - t_start) / 60.0 > args.max_minutes

    history: list[dict] = []
    trained_on = train_names
    if args.score_only:
        result, history, trained_on = {"num_slices": config.num_slices}, list(config.history), config.training_cases
    else:
        data = pix2pix_training_slices(
            [items[n] for n in train_names], settings, label_values, modalities, progress=False, label_map=label_map
        )
        result = train_pix2pix(
            data,
            model_path,
            settings,
            device=args.device,
            overwrite=True,
            progress=sys.stderr.isatty(),
            on_epoch=on_epoch,
        )
    wall = time.perf_counter() - t_start
    epoch_seconds = [h["seconds"] for h in history]
    train_seconds = sum(epoch_seconds)

    # render throughput and quality on the test case's real label volume, with its own brain mask
    case = load_case(items[test_name], label_values=label_values, spatial_ndim=3, label_map=label_map)
    index, real = case["label"], case["image"].as_tensor()  # load_case gives class indices
    label = MetaTensor(
        IndexToLabel(label_values)(index.as_tensor()), meta=dict(index.meta)
    )  # the renderer reads values
    brain = MetaTensor((foreground_mask(real) | (label.as_tensor() > 0)).to(torch.uint8), meta=dict(label.meta))
    renderer = Pix2PixRender(model_path, device=args.device, batch_size=16)
    missing = [m for m in modalities if m not in renderer.modalities]
    if missing:
        parser.error(f"the model renders {renderer.modalities}, not the dataset's {missing}")
    scored = [renderer.modalities.index(m) for m in modalities]  # the rendered channels the dataset has
    if args.units == "model" and len(scored) != len(renderer.modalities):
        parser.error("--units model needs a dataset with every sequence the model renders")
    tissue = None
    if renderer.tissue_classes:  # the model's tissue classes of the test case's own tissue modality
        channel = list(modalities).index(settings.tissue_modality)
        tissue = TissueClasses(renderer.tissue_classes)(
            real[channel : channel + 1], brain.as_tensor(), label.as_tensor() > 0
        )
    renderer(label, brain, tissue)  # warm-up
    t0 = time.perf_counter()
    rendered = renderer(label, brain, tissue)
    render_seconds = time.perf_counter() - t0
    axis = axial_axis(label.affine)
    num_brain_slices = len(AxialSliceGrid(brain, label.affine, settings.size).brain_slices)
    index = index.as_tensor()
    quality = _quality(
        rendered.as_tensor()[scored], real, brain.as_tensor(), index, modalities, axis, renderer.stats, args.units
    )
    # checkerboard: the generator's own working-size output against the real working-size slices
    cond, real_slices, _ = pix2pix_case_slices(case, settings, modalities)
    noise = {"noise": torch.Generator().manual_seed(0)} if renderer.config.noise else {}  # as a render draws it
    with torch.no_grad():
        fake_slices = torch.cat([renderer.generator(cond[i : i + 16], **noise) for i in range(0, len(cond), 16)])
    fake_slices = fake_slices[:, scored]
    checker = (periodic_power(fake_slices), periodic_power(real_slices))
    inside = real_slices[:, 0] > -1.0  # the brain on the working grid (-1 outside)
    detail_working = fine_detail_ratio(fake_slices, real_slices, inside, inside)
    ceiling = _resampling_ceiling(real, brain.as_tensor(), index, modalities, axis, label.affine, renderer, args.units)

    print(f"pix2pix benchmark (torch {torch.__version__}, {args.threads} threads, device {args.device})")
    print(
        f"train: {', '.join(trained_on)}: {result['num_slices']} slices at {settings.size}x{settings.size}, "
        f"ngf {settings.generator_channels}, ndf {settings.critic_channels}, batch {settings.batch_size}, upsample "
        f"{settings.upsample}, context slices {settings.context_slices}, critic scales {settings.critic_scales}, "
        f"feature matching {settings.feature_matching_weight:g}, generator {settings.architecture} "
        f"({settings.gan_loss} loss, appearance code {settings.style_channels}, noise {settings.noise}), "
        f"L1 weight {settings.l1_weight:g}, "
        f"tissue classes {settings.tissue_classes}, all brain slices {settings.all_brain_slices}, seed {settings.seed}"
    )
    ordered = sorted(epoch_seconds)
    print(
        f"time per epoch: mean {train_seconds / len(history):.1f} s, median {ordered[len(ordered) // 2]:.1f} s, "
        f"fastest {ordered[0]:.1f} s, slowest {ordered[-1]:.1f} s"
    )
    conv = state["converged_epoch"]
    if conv:
        print(
            f"converged (L1 plateau: best L1 of last {args.patience} epochs < {args.min_improvement:.0%} below the "
            "earlier best) "
            f"at epoch {conv}: {train_seconds / 60:.1f} min training ({wall / 60:.1f} min wall incl. loading/saving)"
        )
    else:
        print(f"trained {len(history)} epochs: {train_seconds / 60:.1f} min training ({wall / 60:.1f} min wall)")
    l1s = " ".join(f"{h['l1']:.3f}" for h in history)
    print(f"L1 per epoch: {l1s}")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")
    print(
        f"render: {num_brain_slices} brain slices of {test_name} in {render_seconds:.2f} s = "
        f"{num_brain_slices / render_seconds:.1f} slices/s (whole volume incl. crop/resize/paste)"
    )
    print(
        f"quality on {test_name}'s {quality['num_slices']} tumour slices (inside the brain, [0,1] units: {args.units}):"
    )
    for name, (ssim, psnr) in quality["per_modality"].items():
        print(
            f"  {name:5s} SSIM {ssim:.3f}  PSNR {psnr:.2f} dB  fine detail (power share above {FINE_DETAIL_CUTOFF} "
            f"cycles/px, rendered / real) {quality['fine_detail'][name]:.2f}"
        )
    print(f"  SWD (real vs rendered slices, {len(modalities)} modalities): {quality['swd']:.4f}")
    print(
        f"  resampling ceiling (the real volume through the {settings.size} px grid and back, as a render is "
        "pasted: what a perfect generator at this size would score): fine detail "
        + " / ".join(f"{ceiling['fine_detail'][m]:.2f}" for m in modalities)
        + ", SSIM "
        + " / ".join(f"{ceiling['per_modality'][m][0]:.3f}" for m in modalities)
        + f", SWD {ceiling['swd']:.4f}"
    )
    print(
        f"  fine detail on the {settings.size} px working grid (the generator's own output against the real slices "
        "there): " + " / ".join(f"{v:.2f}" for v in detail_working.tolist())
    )
    print(
        f"  checkerboard (stride-2 spectral power share): rendered {checker[0]:.5f}, real {checker[1]:.5f}, "
        f"ratio {checker[0] / checker[1]:.2f} (target <= 1.2)"
    )
    fake_agree, real_agree = quality["agreement"]
    print(
        f"  neighbouring-slice SSIM over the tumour slab: rendered {fake_agree:.3f}, real {real_agree:.3f}, "
        f"ratio {fake_agree / real_agree:.3f} (target >= 0.9)"
    )
    if args.sheet is not None:
        _sheet(args.sheet, quality["sheet"], modalities, test_name)
    tmp.cleanup()
    return 0


def _sheet(path: Path, sheet: tuple, modalities: tuple[str, ...], case: str) -> None:
    """Real and rendered versions of six tumour slices spread over the tumour, one row each."""
    from monai_singanseg.visualize import contact_sheet

    real_s, fake_s, idx = sheet
    picks = [round(i * (len(idx) - 1) / 5) for i in range(6)] if len(idx) >= 6 else list(range(len(idx)))
    images, names = [], []
    for p in picks:
        images += [real_s[p] * 2 - 1, fake_s[p] * 2 - 1]
        names += [f"real z{idx[p]}", f"render z{idx[p]}"]
    contact_sheet(path, images, channel_names=list(modalities), row_names=names)
    print(f"contact sheet of {case}: {path}")


if __name__ == "__main__":
    sys.exit(main())
