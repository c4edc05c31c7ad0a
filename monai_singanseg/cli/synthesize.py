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

from monai_singanseg.cli.options import SEED, add_tumour_shift, float_in, int_in, power_of_two
from monai_singanseg.data import find_cases, load_datalist
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singan import SinGANSegSettings
from monai_singanseg.farm import DatasetSettings, RankContext, synthesize_dataset
from monai_singanseg.synthesis import (
    SLICE_MAX_SIZE,
    TUMOUR_BOX_MARGIN,
    VOLUME_BOXES,
    VOLUME_MAX_SIZE,
    SinGANSegSynthesisOptions,
    is_2d_image_input,
)
from monai_singanseg.transforms.style import STYLE_METHODS

__all__ = ["add_parsers", "run_synthesize", "parse_label_map", "real_cases"]

_PIX2PIX = Pix2PixSettings()


def parse_label_map(pairs: list[str]) -> dict[int, int]:
    """``["3:1", ...]`` -> ``{3: 1}``.

    Raises:
        ValueError: naming the bad pair and the form.
    """
    out = {}
    for pair in pairs:
        try:
            source, target = (int(v) for v in pair.split(":"))
        except ValueError:
            raise ValueError(f"--label-map {pair!r} must be FROM:TO label values, e.g. 3:1") from None
        out[source] = target
    return out


def real_cases(data: str) -> list[dict]:
    """The cases of ``--data``: a decathlon datalist JSON file, or a folder (BraTS NIfTI, DICOM, images/ + masks/)."""
    path = Path(data)
    return load_datalist(path) if path.is_file() else find_cases(path)


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
    p.add_argument(
        "--generator",
        choices=("singanseg", "pix2pix"),
        default="singanseg",
        help="singanseg: one model per tumour slice (default); pix2pix: one model for the dataset, "
        "rendering --per-case deformed label volumes of every case",
    )
    p.add_argument(
        "--volume",
        action="store_true",
        help="SinGAN-Seg: one 3D model per case, trained on its whole brain, whose samples are whole volumes "
        "(as train-singanseg --volume: long side 48, 16 base features, 150 iterations by default)",
    )
    p.add_argument(
        "--box",
        choices=VOLUME_BOXES,
        default="brain",
        help=f"with --volume: each model's working box, the whole brain (default) or the tumour with "
        f"{TUMOUR_BOX_MARGIN} voxels around it",
    )
    p.add_argument(
        "--slices-per-case",
        default=None,
        help="models per volume on slices spread over the tumour, or 'all' (default 1; not with --volume)",
    )
    p.add_argument(
        "--samples-per-model", type=int_in(1, 10**5), default=10, help="synthetic cases per model (default 10)"
    )
    p.add_argument(
        "--label-values",
        type=int_in(0, 255),
        nargs="+",
        default=None,
        help="label values after --label-map (default 0 1 2 4; 0 1 for 2D masks)",
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
        "--max-size",
        type=int_in(8, 4096),
        default=None,
        help=f"long side of the training slice (default {SLICE_MAX_SIZE}; with --volume: of the brain box, default "
        f"{VOLUME_MAX_SIZE})",
    )
    p.add_argument("--min-size", type=int_in(4, 4096), default=None, help="short side of the coarsest scale")
    p.add_argument("--iters", type=int_in(1, 10**6), default=None, help="iterations per scale")
    p.add_argument("--coarsest-iters", type=int_in(1, 10**6), default=None, help="iterations of the coarsest scale")
    p.add_argument("--stages", type=int_in(1, 32), default=4, help="stages of the fast schedule (default 4)")
    p.add_argument("--schedule", choices=("fast", "singan"), default="fast")
    p.add_argument("--label-area-weight", type=float_in(0.0, 1e6), default=1.0)
    p.add_argument("--start-scale", type=int_in(0, 64), default=0, help="sampling start scale (default 0)")
    p.add_argument("--min-component", type=int_in(0, 10**7), default=10)
    add_tumour_shift(p)
    p.add_argument(
        "--style", default="none", choices=("none", *STYLE_METHODS), help="style-transfer step (default none)"
    )
    p.add_argument("--style-steps", type=int_in(0, 10000), default=100)
    p.add_argument("--style-weights", default=None, metavar="FILE")
    p2p = p.add_argument_group("pix2pix (--generator pix2pix)")
    p2p.add_argument("--model", default=None, help="a trained pix2pix model file (default: train one on --data)")
    p2p.add_argument("--per-case", type=int_in(1, 10**4), default=10, help="renders per case (default 10)")
    p2p.add_argument(
        "--epochs", type=int_in(1, 10**5), default=_PIX2PIX.epochs, help="pix2pix training epochs (default %(default)s)"
    )
    p2p.add_argument(
        "--size", type=power_of_two(32, 512), default=_PIX2PIX.size, help="pix2pix working size (default %(default)s)"
    )
    p.add_argument("--seed", type=SEED, default=0, help="base seed (model i: seed + i)")
    p.add_argument(
        "--shard", default=None, metavar="I/N", help="do task I of N (a Slurm array: I = $SLURM_ARRAY_TASK_ID)"
    )
    p.add_argument(
        "--claim-timeout",
        type=float_in(1.0, 1e7),
        default=900.0,
        help="seconds without a heartbeat before another host's claim is taken over (default 900)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: this rank's GPU, else CPU)")
    p.add_argument(
        "--models-per-batch",
        type=int_in(1, 4096),
        default=None,
        metavar="M",
        help="models each process trains together on its device (same slice shape; default 1 on CPU, 16 on GPU)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace another run's synthetic dataset in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
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
    settings = DatasetSettings(
        slices_per_case=slices,
        samples_per_model=args.samples_per_model,
        volume=args.volume,
        box=args.box,
        max_size=args.max_size,
        label_values=tuple(args.label_values or ((0, 1) if rgb else (0, 1, 2, 4))),
        label_map=parse_label_map(args.label_map),
        channel_names=tuple(args.channel_names) if args.channel_names else None,
        training=training(
            schedule=args.schedule,
            min_size=args.min_size,
            num_stages=args.stages,
            iters=args.iters,
            coarsest_iters=args.coarsest_iters,
            label_area_weight=args.label_area_weight,
        ),
        options=SinGANSegSynthesisOptions(
            start_scale=args.start_scale,
            min_component=args.min_component,
            style=args.style,
            style_steps=args.style_steps,
            style_weights=args.style_weights,
            tumour_shift=args.tumour_shift,
        ),
        seed=args.seed,
        claim_timeout=args.claim_timeout,
        generator=args.generator,
        per_case=args.per_case,
        pix2pix=Pix2PixSettings(epochs=args.epochs, size=args.size, seed=args.seed),
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
