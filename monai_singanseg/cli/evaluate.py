"""Sub-command ``evaluate``: the downstream-utility experiment (does synthetic data train segmentation models?).

Trains SinGAN-Seg and pix2pix on all cases but one, trains 2D segmentation networks on real, synthetic
and mixed training sets, tests them on the held-out case, repeats with every case held out, and writes a
report folder (``report.json``, ``report.md``, plots, sample grids, the generator models).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from monai_singanseg.cli.options import SEED, THREADS, float_in, int_in
from monai_singanseg.cli.pix2pix import training_items
from monai_singanseg.cli.synthesize import parse_label_map
from monai_singanseg.device import resolve_device
from monai_singanseg.evaluation.experiment import ExperimentSettings, run_experiment, training_set_names
from monai_singanseg.evaluation.report import headline_text
from monai_singanseg.evaluation.segmentation import SEGMENTATION_NETWORKS
from monai_singanseg.transforms.style import STYLE_METHODS


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="downstream utility: segmentation Dice of real vs synthetic vs mixed training sets, with a report",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder of BraTS-named cases (at least 2)")
    src.add_argument("--datalist", help="decathlon datalist JSON (its 'training' list, at least 2 cases)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--quick", action="store_true", help="CPU budget of minutes: 64 px, 1 seed, short training")
    p.add_argument("--size", type=int_in(32, 1024), default=None, help="slice side (default 128; 64 with --quick)")
    p.add_argument(
        "--seeds", type=SEED, nargs="+", default=None, help="segmentation seeds (default 0 1 2; 0 with --quick)"
    )
    p.add_argument(
        "--k",
        type=int_in(1, 10**4),
        nargs="+",
        default=None,
        help="real slices of the small-data regime (default 1 2 5 10; 1 2 with --quick)",
    )
    p.add_argument(
        "--network",
        choices=SEGMENTATION_NETWORKS,
        default=None,
        help="segmentation network (default unetpp; basicunet with --quick)",
    )
    p.add_argument(
        "--features", type=int_in(1, 1024), default=None, help="segmentation network width (default 16; 8 with --quick)"
    )
    p.add_argument(
        "--steps",
        type=int_in(1, 10**7),
        default=None,
        help="segmentation training steps (default 300; 80 with --quick)",
    )
    p.add_argument("--batch-size", type=int_in(1, 4096), default=None, help="segmentation batch size (default 8)")
    p.add_argument(
        "--singan-slices", type=int_in(1, 10**4), default=None, help="SinGAN-Seg models per training case (default 5)"
    )
    p.add_argument(
        "--singan-iters",
        type=int_in(1, 10**6),
        default=None,
        help="SinGAN-Seg iterations per scale (default: the schedule's)",
    )
    p.add_argument(
        "--samples-per-model", type=int_in(1, 10**6), default=None, help="SinGAN-Seg samples per model (default 10)"
    )
    p.add_argument(
        "--start-scale", type=int_in(0, 64), default=None, help="SinGAN-Seg sampling start scale (default 0)"
    )
    p.add_argument(
        "--style",
        nargs="+",
        default=None,
        metavar="METHOD",
        choices=STYLE_METHODS,
        help="add SinGAN-Seg + style-transfer training sets for these methods "
        f"({', '.join(STYLE_METHODS)}; default none)",
    )
    p.add_argument(
        "--style-steps", type=int_in(0, 10000), default=None, help="style-transfer optimisation steps (default 100)"
    )
    p.add_argument("--style-weights", default=None, help="VGG-19 weights file for the vgg19 style methods")
    p.add_argument("--pix2pix-epochs", type=int_in(1, 10**5), default=None, help="pix2pix epochs (default 60)")
    p.add_argument(
        "--pix2pix-volumes",
        type=int_in(1, 10**4),
        default=None,
        help="deformed label volumes rendered per training case (default 4)",
    )
    p.add_argument(
        "--pix2pix-samples", type=int_in(1, 10**6), default=None, help="pix2pix slices kept per fold (default 100)"
    )
    p.add_argument(
        "--label-map",
        nargs="+",
        default=[],
        metavar="FROM:TO",
        help="replace label values on load, e.g. 3:1 (BRATS-2013)",
    )
    p.add_argument("--channel-names", nargs="+", default=None, help="names of the image channels (e.g. flair t1ce)")
    p.add_argument(
        "--patience",
        type=int_in(0, 10**4),
        default=None,
        help="validations without a better validation Dice before segmentation training stops (default 4; 0: never)",
    )
    p.add_argument(
        "--val-every", type=int_in(1, 10**6), default=None, help="segmentation steps between validations (default 50)"
    )
    p.add_argument(
        "--threshold", type=float_in(0.0, 1.0), default=None, help="memorisation flag threshold (default 0.95)"
    )
    p.add_argument(
        "--sets",
        nargs="+",
        default=None,
        help=f"only these training sets, e.g. {' '.join(training_set_names((5,))[:3])}",
    )
    p.add_argument("--folds", type=int_in(1, 10**4), default=None, help="run only the first N folds")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for torch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report and models")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_evaluate)


def settings_from_args(args: argparse.Namespace) -> ExperimentSettings:
    """The experiment settings: the defaults (or the ``--quick`` budget) with the given options applied."""
    base = ExperimentSettings.quick() if args.quick else ExperimentSettings()
    seg_over = {
        "network": args.network,
        "features": args.features,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "patience": args.patience,
        "val_every": args.val_every,
    }
    seg = dataclasses.replace(base.segmentation, **{k: v for k, v in seg_over.items() if v is not None})
    over = {
        "size": args.size,
        "seeds": args.seeds,
        "k_values": args.k,
        "singan_slices": args.singan_slices,
        "singan_iters": args.singan_iters,
        "samples_per_model": args.samples_per_model,
        "singan_start_scale": args.start_scale,
        "pix2pix_epochs": args.pix2pix_epochs,
        "pix2pix_volumes": args.pix2pix_volumes,
        "pix2pix_samples": args.pix2pix_samples,
        "memorisation_threshold": args.threshold,
        "training_sets": args.sets,
        "max_folds": args.folds,
        "style_methods": args.style,
        "style_steps": args.style_steps,
        "style_weights": args.style_weights,
        "label_map": parse_label_map(args.label_map) or None,
        "channel_names": args.channel_names,
    }
    return dataclasses.replace(base, segmentation=seg, **{k: v for k, v in over.items() if v is not None})


def run_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: validate everything and check every output is free before any training."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    items = training_items(args)  # --data folder or --datalist JSON, exactly as train-pix2pix
    report = run_experiment(
        items, args.out, settings, device=args.device, overwrite=args.overwrite, progress=not args.quiet
    )
    print("\n".join(headline_text(report["headline"])))
    return 0
