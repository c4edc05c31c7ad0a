"""Sub-command ``synthesize``: a real dataset in, a synthetic dataset out: one SinGAN-Seg model per tumour slice (or,
with ``--volume``, one 3D model per volume, sampling whole volumes), or (``--generator pix2pix``) one pix2pix model for
the dataset rendering ``--per-case`` deformed label volumes per case.

Run it as one process, under ``torchrun --nproc_per_node N -m monai_singanseg synthesize ...`` (ranks share the
work; multi-node through torchrun's rendezvous), or as a Slurm array task with ``--shard I/N``. Rerunning the same
command resumes: finished models are kept, a killed model continues from its last finished scale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from monai_singanseg.cli.options import add_run_options, int_in, parse_label_map
from monai_singanseg.cli.singanseg import TRAINING_OPTIONS
from monai_singanseg.data import find_cases, load_datalist
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.farm import DatasetSettings, RankContext, synthesize_dataset
from monai_singanseg.options import add_options, from_args, given
from monai_singanseg.synthesis import (
    SinGANSegSynthesisSettings,
    is_2d_image_input,
)

__all__ = ["add_parsers", "run_synthesize", "real_cases"]


def real_cases(data: str) -> list[dict]:
    """The cases of ``--data``: a decathlon datalist JSON file, or a folder (BraTS NIfTI, DICOM, images/ + masks/)."""
    path = Path(data)
    return load_datalist(path) if path.is_file() else find_cases(path)


#: the dataset settings on the command line, before and after the SinGAN-Seg ones (declared in DatasetSettings).
DATASET_OPTIONS = ("generator", "volume", "box")
SAMPLING_OPTIONS = ("start_scale", "min_component", "tumour_shift", "style", "style_steps", "style_weights")
#: pix2pix training on the command line (declared in Pix2PixSettings); its seed is the dataset's --seed.
PIX2PIX_OPTIONS = ("epochs", "size", "architecture", "seed")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``synthesize``."""
    p = subparsers.add_parser(
        "synthesize",
        help="a synthetic dataset from a real one: one SinGAN-Seg model per tumour slice (torchrun-ready)",
        description=__doc__,
    )
    p.add_argument(
        "--data", required=True, help="real dataset: datalist JSON, or a folder of BraTS/DICOM cases or images/+masks/"
    )
    p.add_argument("--out", required=True, help="the synthetic dataset's folder")
    add_options(p, DatasetSettings, DATASET_OPTIONS)
    p.add_argument(
        "--slices-per-case",
        default=None,
        metavar="N|all",
        help="models per volume on slices spread over the tumour, or 'all' (default 1; not with --volume)",
    )
    add_options(p, DatasetSettings, ("samples_per_model", "label_values"), defaults={"label_values": None})
    add_run_options(p, "--label-map")
    add_options(p, DatasetSettings, ("channel_names", "channel_order", "val_fraction", "max_size"))
    add_options(p, SinGANSegSettings, TRAINING_OPTIONS)
    add_options(p, SinGANSegSynthesisSettings, SAMPLING_OPTIONS)
    p2p = p.add_argument_group("pix2pix (--generator pix2pix)")
    p2p.add_argument("--model", default=None, help="a trained pix2pix model file (default: train one on --data)")
    add_options(p2p, DatasetSettings, ("per_case",))
    add_options(p2p, Pix2PixSettings, PIX2PIX_OPTIONS[:-1])
    add_options(p, DatasetSettings, ("seed", "claim_timeout"))
    p.add_argument(
        "--shard", default=None, metavar="I/N", help="do task I of N (a Slurm array: I = $SLURM_ARRAY_TASK_ID)"
    )
    add_run_options(p, "--device", device="cpu, cuda, cuda:N (default: this rank's GPU, else CPU)")
    p.add_argument(
        "--models-per-batch",
        type=int_in(1, 4096),
        default=None,
        metavar="M",
        help="models each process trains together on its device (same slice shape; default 1 on CPU, 16 on GPU)",
    )
    add_run_options(p, "--overwrite", "--quiet")
    p.set_defaults(func=run_synthesize)


def run_synthesize(args: argparse.Namespace) -> int:
    """``synthesize``: exits 1 if any case failed (all others are written), naming them."""
    if args.device is not None:
        resolve_device(args.device)
    if args.volume and args.slices_per_case is not None:
        raise ValueError("--slices-per-case picks the slices of slice models; --volume trains one model per whole case")
    if str(args.slices_per_case) == "all":
        slices = None
    else:
        slices = int_in(1, 10**5)(args.slices_per_case or "1")
    if args.model is not None and args.generator != "pix2pix":
        raise ValueError("--model is a pix2pix model file: pass --generator pix2pix with it")
    if args.volume and args.generator != "singanseg":
        raise ValueError("--volume trains one 3D SinGAN-Seg model per case: it does not go with --generator pix2pix")
    items = real_cases(args.data)
    rgb = is_2d_image_input(items[0]["image"]) if items else False
    if args.volume and rgb:
        raise ValueError(f"--volume needs volumes (NIfTI or DICOM series); {args.data} holds 2D pictures")
    training = SinGANSegSettings.for_volume if args.volume else SinGANSegSettings
    settings = from_args(
        DatasetSettings,
        args,
        (
            *DATASET_OPTIONS,
            "samples_per_model",
            "channel_names",
            "channel_order",
            "val_fraction",
            "max_size",
            "per_case",
            "seed",
            "claim_timeout",
        ),
        slices_per_case=slices,
        label_values=tuple(args.label_values or ((0, 1) if rgb else (0, 1, 2, 4))),
        label_map=parse_label_map(args.label_map),
        training=training(**given(SinGANSegSettings, args, TRAINING_OPTIONS)),
        options=from_args(SinGANSegSynthesisSettings, args, SAMPLING_OPTIONS),
        pix2pix=from_args(Pix2PixSettings, args, PIX2PIX_OPTIONS),
    )
    ctx = RankContext.from_environment(args.shard, args.device)
    if ctx.world_size > 1 and not torch.cuda.is_available():
        torch.set_num_threads(1)  # several ranks on one CPU: more threads than cores is much slower
    try:
        manifest = synthesize_dataset(
            items,
            args.out,
            settings,
            ctx,
            device=args.device,
            overwrite=args.overwrite,
            progress=not args.quiet,
            models_per_batch=args.models_per_batch,
            model=args.model,
        )
    finally:
        ctx.close()
    if ctx.rank == 0 or ctx.shard:
        summary = {k: manifest[k] for k in ("done", "failed", "pending", "samples")}
        print(json.dumps(summary), file=sys.stdout)
    if manifest["failed"]:
        print(
            f"error: {len(manifest['failed'])} work entr(y/ies) failed: {', '.join(manifest['failed'])} "
            f"(errors in {Path(args.out) / 'manifest.json'})",
            file=sys.stderr,
        )
        return 1
    return 0
