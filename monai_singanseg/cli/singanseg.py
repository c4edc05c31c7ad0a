"""Sub-commands ``train-singanseg`` (one model per tumour slice) and ``generate`` (synthetic cases from it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.cli.options import add_run_options, check_resumable_output, int_in
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.farm.settings import DatasetSettings
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.options import add_options, from_args, given
from monai_singanseg.synthesis.singanseg.synthesize import SinGANSegSynthesisSettings

__all__ = ["add_parsers", "run_train", "run_generate"]


#: what a model learns from on the command line (declared in :class:`DatasetSettings`, as ``synthesize`` reads them).
PREPARE_OPTIONS = ("volume", "box", "max_size")
#: the training settings on the command line (declared in :class:`SinGANSegSettings`).
TRAINING_OPTIONS = (
    "min_size",
    "iters",
    "coarsest_iters",
    "label_area_weight",
    "schedule",
    "num_stages",
    "pad_as_background",
)
#: the sampling settings on the command line (declared in :class:`SinGANSegSynthesisSettings`).
SAMPLING_OPTIONS = (
    "start_scale",
    "size",
    "paste",
    "threshold",
    "min_component",
    "style",
    "style_steps",
    "style_weights",
    "tumour_shift",
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-singanseg`` and ``generate``."""
    p = subparsers.add_parser(
        "train-singanseg",
        help="train a SinGAN-Seg model on one tumour slice, or on a whole volume with --volume (image + label)",
        description="Train a multi-scale SinGAN-Seg model on one slice (or, with --volume, on the whole brain of a "
        "volume): image channels + one-hot label channels.",
    )
    p.add_argument(
        "--image",
        nargs="+",
        required=True,
        help="one image file, the 4 BraTS modality files in flair t1 t1ce t2 order, or a 2D RGB picture",
    )
    p.add_argument("--label", required=True, help="label file (BraTS 0/1/2/4) or a 2D mask picture")
    p.add_argument("--slice", default="auto", help="axial slice index, or 'auto' for the slice with most tumour")
    p.add_argument("--out", required=True, help="model file to write (rewritten after every scale)")
    add_options(p, DatasetSettings, PREPARE_OPTIONS)
    add_options(p, SinGANSegSettings, (*TRAINING_OPTIONS, "seed"))
    add_run_options(p, "--resume", "--device", "--threads")
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="write TensorBoard logs to DIR")
    add_run_options(p, "--overwrite", "--quiet")
    p.set_defaults(func=run_train)

    g = subparsers.add_parser(
        "generate",
        help="draw synthetic (image, label) cases from a SinGAN-Seg model",
        description="Write N synthetic cases (BraTS-named NIfTI or PNG image+mask), a datalist and a preview.",
    )
    g.add_argument("--model", required=True, help="SinGAN-Seg model file")
    g.add_argument("--num", type=int_in(1, 10**6), default=10, help="number of samples (default 10)")
    g.add_argument("--out", required=True, help="output folder")
    add_options(g, SinGANSegSynthesisSettings, SAMPLING_OPTIONS)
    g.add_argument("--sheet", type=int_in(0, 64), default=8, help="samples shown in preview.png (0: none; default 8)")
    add_run_options(g, "--seed", "--device", "--overwrite", "--resume")
    g.set_defaults(func=run_generate)


def run_train(args: argparse.Namespace) -> int:
    """``train-singanseg``: prepare the slice, train, write the model file."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    from monai_singanseg.engines.common import require_tensorboard
    from monai_singanseg.engines.singanseg import SinGANSegTrainer
    from monai_singanseg.synthesis import singanseg_training_input

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    check_resumable_output(out, args.resume)
    if not args.resume:
        check_outputs_free([out], args.overwrite)
    if args.tensorboard:
        try:
            require_tensorboard()  # fail before loading data
        except ImportError as exc:
            raise RuntimeError(f"--tensorboard: {exc}") from None
    settings = (SinGANSegSettings.for_volume if args.volume else SinGANSegSettings)(
        **given(SinGANSegSettings, args, (*TRAINING_OPTIONS, "seed"))
    )
    slice_index: Any = None if str(args.slice) == "auto" else _int_arg(args.slice, "--slice")
    images = args.image if len(args.image) > 1 else args.image[0]
    gan, metadata = singanseg_training_input(
        images, args.label, slice_index, max_size=args.max_size, volume=args.volume, box=args.box
    )
    trainer = SinGANSegTrainer(settings, device=args.device, progress=not args.quiet, log_dir=args.tensorboard)
    trainer.fit(gan, out, metadata, resume=args.resume, overwrite=args.overwrite)
    where = (
        f"slice {metadata['source_slice_index']}"
        if metadata["source_slice_index"] is not None
        else ("volume" if args.volume else "image")
    )
    print(
        f"wrote {out} ({metadata['source_name']} {where}, {'x'.join(map(str, gan.shape[1:]))}, {gan.shape[0]} channels)"
    )
    return 0


def _int_arg(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be 'auto' or an integer, got {value!r}") from None


def run_generate(args: argparse.Namespace) -> int:
    """``generate``: the SinGAN-Seg synthesis pipeline over ``--num`` cases (every output checked free first)."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    from monai_singanseg.synthesis import singanseg_synthesis, synthesize

    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    options = from_args(SinGANSegSynthesisSettings, args, SAMPLING_OPTIONS)
    pipeline = singanseg_synthesis(args.model, args.out, options, overwrite=args.overwrite, device=args.device)
    result = synthesize(
        pipeline,
        pipeline.cases(args.num),
        args.out,
        seed=args.seed,
        overwrite=args.overwrite,
        preview=args.sheet,
        resume=args.resume,
    )
    kept = f" ({result['resumed']} kept from the interrupted run)" if result["resumed"] else ""
    print(f"wrote {args.num} samples to {args.out}{kept}", file=sys.stdout)
    return 0
