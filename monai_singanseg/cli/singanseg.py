"""Sub-commands ``train-singanseg`` (one model per tumour slice) and ``generate`` (synthetic cases from it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.cli.options import SEED, THREADS, add_tumour_shift, float_in, int_in
from monai_singanseg.device import resolve_device
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.synthesis.prepare import SLICE_MAX_SIZE, TUMOUR_BOX_MARGIN, VOLUME_BOXES, VOLUME_MAX_SIZE
from monai_singanseg.transforms.style import STYLE_METHODS

__all__ = ["add_parsers", "run_train", "run_generate"]


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
    p.add_argument(
        "--volume",
        action="store_true",
        help="a 3D model of the whole brain (isotropic voxels, --max-size on the long side; "
        f"default {VOLUME_MAX_SIZE}, 16 base features, 150 iterations: about half an hour on 2 CPU cores) "
        "instead of one slice",
    )
    p.add_argument(
        "--box",
        choices=VOLUME_BOXES,
        default="brain",
        help=f"with --volume: the working box, the whole brain (default) or the tumour with {TUMOUR_BOX_MARGIN} "
        "voxels around it (finer voxels on the tumour, less anatomy)",
    )
    p.add_argument(
        "--max-size",
        type=int_in(8, 4096),
        default=None,
        help=f"long side of the finest scale (default {SLICE_MAX_SIZE}; {VOLUME_MAX_SIZE} with --volume)",
    )
    p.add_argument(
        "--min-size",
        type=int_in(4, 4096),
        default=None,
        help="short side of the coarsest scale (default: 16 fast, 25 singan)",
    )
    p.add_argument(
        "--iters",
        type=int_in(1, 10**6),
        default=None,
        help="iterations per scale (default: 200 fast, 2000 singan; 150 with --volume)",
    )
    p.add_argument(
        "--coarsest-iters",
        type=int_in(1, 10**6),
        default=None,
        help="iterations of the coarsest scale (default: 3x --iters fast, --iters singan)",
    )
    p.add_argument(
        "--label-area-weight",
        type=float_in(0.0, 1e6),
        default=1.0,
        help="weight of the loss keeping each random sample's tumour area per class (0: off; default 1)",
    )
    p.add_argument("--schedule", choices=("fast", "singan"), default="fast", help="training schedule (default fast)")
    p.add_argument("--stages", type=int_in(1, 32), default=4, help="number of stages of the fast schedule (default 4)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last finished scale")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for torch")
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="write TensorBoard logs to DIR")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_train)

    g = subparsers.add_parser(
        "generate",
        help="draw synthetic (image, label) cases from a SinGAN-Seg model",
        description="Write N synthetic cases (BraTS-named NIfTI or PNG image+mask), a datalist and a preview.",
    )
    g.add_argument("--model", required=True, help="SinGAN-Seg model file")
    g.add_argument("--num", type=int_in(1, 10**6), default=10, help="number of samples (default 10)")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--start-scale", type=int_in(0, 64), default=0, help="scale where random noise starts (default 0)")
    g.add_argument(
        "--size", type=int_in(8, 4096), nargs="+", default=None, help="other output size (H W, or H W D for a 3D model)"
    )
    g.add_argument(
        "--paste",
        action="store_true",
        help="3D models: write each sample into the whole source volume's grid (shape, spacing, orientation, "
        "origin) instead of the model's working grid",
    )
    g.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    g.add_argument(
        "--threshold",
        type=float_in(0.0, 1.0, high_open=True),
        default=0.5,
        help="label background threshold (default 0.5)",
    )
    g.add_argument(
        "--min-component",
        type=int_in(0, 10**7),
        default=10,
        help="remove tumour components smaller than this many pixels (default 10; 0: keep all)",
    )
    g.add_argument("--sheet", type=int_in(0, 64), default=8, help="samples shown in preview.png (0: none; default 8)")
    g.add_argument(
        "--style",
        default="none",
        choices=("none", *STYLE_METHODS),
        help="SinGAN-Seg's style-transfer step onto every sample, with the model's training slice as the "
        "style image (default: none)",
    )
    g.add_argument(
        "--style-steps",
        type=int_in(0, 10000),
        default=100,
        help="optimisation steps of the network style methods (default 100)",
    )
    g.add_argument(
        "--style-weights", default=None, metavar="FILE", help="VGG-19 weights file for --style vgg19 / histogram+vgg19"
    )
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    add_tumour_shift(g)
    g.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    g.add_argument(
        "--resume",
        action="store_true",
        help="complete an interrupted run into the same --out (same model, options and seed)",
    )
    g.set_defaults(func=run_generate)


def run_train(args: argparse.Namespace) -> int:
    """``train-singanseg``: prepare the slice, train, write the model file."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    from monai_singanseg.engines.common import require_tensorboard
    from monai_singanseg.engines.singan import SinGANSegSettings, SinGANSegTrainer
    from monai_singanseg.synthesis import singanseg_training_input

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if not args.resume:
        check_outputs_free([out], args.overwrite)
    if args.tensorboard:
        try:
            require_tensorboard()  # fail before loading data
        except ImportError as exc:
            raise RuntimeError(f"--tensorboard: {exc}") from None
    settings = (SinGANSegSettings.for_volume if args.volume else SinGANSegSettings)(
        schedule=args.schedule,
        min_size=args.min_size,
        num_stages=args.stages,
        iters=args.iters,
        coarsest_iters=args.coarsest_iters,
        label_area_weight=args.label_area_weight,
        seed=args.seed,
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
    from monai_singanseg.synthesis import SinGANSegSynthesisOptions, singanseg_synthesis, synthesise

    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    options = SinGANSegSynthesisOptions(
        start_scale=args.start_scale,
        size=args.size,
        threshold=args.threshold,
        min_component=args.min_component,
        style=args.style,
        style_steps=args.style_steps,
        style_weights=args.style_weights,
        tumour_shift=args.tumour_shift,
        paste=args.paste,
    )
    pipeline = singanseg_synthesis(args.model, args.out, options, overwrite=args.overwrite, device=args.device)
    result = synthesise(
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
