"""Sub-command ``evaluate``: the downstream-utility experiment (does synthetic data train segmentation models?).

Trains SinGAN-Seg and pix2pix on all cases but one, trains 2D segmentation networks on real, synthetic
and mixed training sets, tests them on the held-out case, repeats with every case held out, and writes a
report folder (``report.json``, ``report.md``, plots, sample grids, the generator models). With
``--test-datalist``, everything trains once on all cases and is tested on the user's own test cases.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from monai_singanseg.cli.options import add_run_options, parse_label_map
from monai_singanseg.cli.pix2pix import training_items
from monai_singanseg.data.discovery import load_datalist
from monai_singanseg.device import resolve_device
from monai_singanseg.evaluation.experiment import ExperimentSettings, run_experiment
from monai_singanseg.evaluation.report import headline_text
from monai_singanseg.evaluation.segmentation import SegmentationSettings
from monai_singanseg.options import add_options, replace_given

#: the experiment's options on the command line, in ``--help`` order (declared in :class:`ExperimentSettings`).
EXPERIMENT_OPTIONS = (
    "size",
    "seeds",
    "k_values",
    "singan_slices",
    "singan_iters",
    "samples_per_model",
    "singan_start_scale",
    "tumour_shift",
    "style_methods",
    "style_steps",
    "style_weights",
    "pix2pix_epochs",
    "pix2pix_volumes",
    "pix2pix_samples",
    "channel_names",
    "memorisation_threshold",
    "training_sets",
    "max_folds",
)
#: the segmentation runs' options on the command line (declared in :class:`SegmentationSettings`).
SEGMENTATION_OPTIONS = (
    "network",
    "features",
    "steps",
    "batch_size",
    "patience",
    "val_every",
    "augment",
    "regions",
    "keep_largest",
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="downstream utility: segmentation Dice of real vs synthetic vs mixed training sets, with a report",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder of BraTS-named cases (at least 2)")
    src.add_argument("--datalist", help="decathlon datalist JSON (its 'training' list, at least 2 cases)")
    p.add_argument(
        "--test-datalist",
        default=None,
        metavar="FILE",
        help="test on these labelled cases instead of leaving one case out: a decathlon datalist whose 'testing' list "
        "(else its 'training' list) names them; generators and networks train once on every case of --data/--datalist "
        "(intervals resample test cases and seeds). A test case that is also a training case is refused",
    )
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument(
        "--model-cache",
        default=None,
        metavar="DIR",
        help="SinGAN-Seg models trained once per case and reused by every fold (give fold processes the same folder; "
        "default: OUT/models/singanseg_cache)",
    )
    quick = ExperimentSettings.quick()
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a CPU budget of minutes whose defaults replace the ones below: {quick.size} px, seeds "
        f"{' '.join(map(str, quick.seeds))}, k {' '.join(map(str, quick.k_values))}, {quick.singan_slices} SinGAN-Seg "
        f"model per case of {quick.singan_iters} iterations per scale, {quick.pix2pix_epochs} pix2pix epochs, a "
        f"{quick.segmentation.network} of width {quick.segmentation.features} for at most "
        f"{quick.segmentation.steps} steps",
    )
    add_options(p, ExperimentSettings, EXPERIMENT_OPTIONS, unset=True)
    add_options(p.add_argument_group("segmentation"), SegmentationSettings, SEGMENTATION_OPTIONS, unset=True)
    add_run_options(p, "--label-map", "--device", "--threads", "--overwrite", "--quiet")
    p.set_defaults(func=run_evaluate)


def settings_from_args(args: argparse.Namespace) -> ExperimentSettings:
    """The experiment settings: the defaults (or the ``--quick`` budget) with the given options replaced."""
    base = ExperimentSettings.quick() if args.quick else ExperimentSettings()
    segmentation = replace_given(base.segmentation, args, SEGMENTATION_OPTIONS)
    label_map = parse_label_map(args.label_map)
    return replace_given(
        base, args, EXPERIMENT_OPTIONS, segmentation=segmentation, **({"label_map": label_map} if label_map else {})
    )


def test_datalist_items(path: str) -> list[dict[str, Any]]:
    """The labelled cases of a test datalist: its ``testing`` list when it has one, else its ``training`` list."""
    return load_datalist(path, key=("testing", "training"))


def run_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: validate everything and check every output is free before any training."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    items = training_items(args)  # --data folder or --datalist JSON, exactly as train-pix2pix
    test_items = None if args.test_datalist is None else test_datalist_items(args.test_datalist)
    report = run_experiment(
        items,
        args.out,
        settings,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
        model_cache=args.model_cache,
        test_items=test_items,
        test_source=str(args.test_datalist) if args.test_datalist else "test set",
    )
    print("\n".join(headline_text(report["headline"])))
    return 0
