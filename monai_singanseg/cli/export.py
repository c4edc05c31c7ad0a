"""Sub-command ``export``: a synthetic dataset (and real cases beside it) for the trainers users run: nnU-Net v2's raw
format (``DatasetNNN_Name/`` with ``dataset.json`` and a ``splits_final.json`` that validates on real cases only) or a
MONAI datalist with ``training`` and ``validation`` (model-zoo bundles, Auto3DSeg). Rerunning the same command
completes an interrupted export."""

from __future__ import annotations

import argparse
import json

from monai_singanseg.cli.options import add_run_options, parse_label_map
from monai_singanseg.farm.export import ExportSettings, export_dataset
from monai_singanseg.options import add_options, from_args

__all__ = ["add_parsers", "run_export"]

OPTIONS = ("format", "dataset_id", "name", "channel_order", "val_fraction", "classes", "link", "seed")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export``."""
    p = subparsers.add_parser(
        "export",
        help="a synthetic dataset for nnU-Net v2, MONAI bundles or Auto3DSeg (docs/interop.md)",
        description=__doc__,
    )
    p.add_argument("src", metavar="SRC", help="a synthetic dataset folder written by `synthesize`, or a datalist")
    p.add_argument(
        "--out", required=True, help="nnunet: the folder holding DatasetNNN_Name/ (nnUNet_raw); monai: a folder"
    )
    p.add_argument("--real", default=None, metavar="DATALIST", help="real cases beside the synthetic ones (validation)")
    p.add_argument("--test", default=None, metavar="DATALIST", help="real test cases (nnunet: imagesTs/)")
    add_options(p, ExportSettings, OPTIONS)
    p.add_argument(
        "--nnunet-preprocessed",
        default=None,
        metavar="DIR",
        help="nnunet: nnUNet_preprocessed, where DatasetNNN_Name/splits_final.json also goes, for a dataset "
        "planned already (default: $nnUNet_preprocessed; it always goes beside dataset.json, and planning copies it)",
    )
    add_run_options(
        p, "--label-map", label_map="replace label values of the exported cases, e.g. 3:1 (BRATS-2013 real cases)"
    )
    add_run_options(p, "--overwrite", "--quiet")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """``export``: prints a summary (monai: and Auto3DSeg's task input)."""
    settings = from_args(ExportSettings, args, OPTIONS, label_map=parse_label_map(args.label_map))
    result = export_dataset(
        args.src,
        args.out,
        settings,
        real=args.real,
        test=args.test,
        nnunet_preprocessed=args.nnunet_preprocessed,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    summary = {k: v for k, v in result.items() if k not in ("auto3dseg", "label_map")}
    print(json.dumps(summary))
    if "auto3dseg" in result:
        print("Auto3DSeg task input (AutoRunner(input=...)):")
        print(json.dumps(result["auto3dseg"], indent=2))
    return 0
