"""Sub-commands of the pix2pix generator: ``train-pix2pix`` and ``render``.

``render`` needs a brain mask for the label (the label alone does not say where the brain is): it takes
``--brain-mask FILE`` (any volume on the label's grid, non-zero = brain, e.g. the case's T1), and
otherwise the non-zero voxels of the label's own case images, found beside the label by BraTS naming
(``<case>_seg.nii.gz`` -> ``<case>_{flair,t1,t1ce,t2}.nii.gz``). Models trained with tissue classes
also need the tissue modality (``--tissue-image FILE``, else the label's own case's file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor

from monai_singanseg.cli.options import add_run_options, check_resumable_output, int_in
from monai_singanseg.data import CaseError, brats_datalist, case_name, load_datalist, load_image
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix import Pix2PixSettings, perceptual_loss, resume_settings, train_pix2pix
from monai_singanseg.inferers.pix2pix import Pix2PixRender
from monai_singanseg.io.names import check_name, safe_name
from monai_singanseg.options import add_options, flag_of, from_args, option_fields
from monai_singanseg.synthesis import pix2pix_synthesis, pix2pix_training_slices, synthesize
from monai_singanseg.transforms.condition.array import ConditionError, check_same_grid
from monai_singanseg.transforms.intensity.array import foreground_mask
from monai_singanseg.transforms.labels.array import BRATS_LABEL_VALUES, LabelToIndex

#: pix2pix training settings on the command line (declared in :class:`Pix2PixSettings`).
TRAINING_OPTIONS = (
    "size",
    "architecture",
    "epochs",
    "batch_size",
    "seed",
    "lr",
    "generator_channels",
    "critic_channels",
    "upsample",
    "context_slices",
    "critic_scales",
    "feature_matching_weight",
    "gan_loss",
    "l1_weight",
    "style_channels",
    "kl_weight",
    "noise",
    "vgg_weights",
    "perceptual_weight",
    "all_brain_slices",
    "tissue_classes",
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-pix2pix`` and ``render``."""
    train = subparsers.add_parser("train-pix2pix", help="train pix2pix (label map -> multi-modal MRI) on paired slices")
    src = train.add_mutually_exclusive_group(required=True)
    src.add_argument("--datalist", help="decathlon datalist JSON (its 'training' list)")
    src.add_argument("--data", help="folder of BraTS-named cases (<case>_{flair,t1,t1ce,t2,seg}.nii.gz)")
    train.add_argument("--out", required=True, help="model file to write (e.g. p2p.pt)")
    add_options(train, Pix2PixSettings, TRAINING_OPTIONS)
    train.add_argument(
        "--label-values",
        type=int_in(0, 255),
        nargs="+",
        default=list(BRATS_LABEL_VALUES),
        help="label values of the cases, background first (default: 0 1 2 4)",
    )
    add_run_options(train, "--device")
    train.add_argument("--tensorboard", default=None, metavar="DIR", help="TensorBoard log folder")
    add_run_options(train, "--resume", "--overwrite", "--quiet")
    train.set_defaults(func=run_train)

    render = subparsers.add_parser(
        "render", help="render synthetic multi-modal volumes for a label map with a pix2pix model"
    )
    render.add_argument("--model", required=True, help="pix2pix model file")
    render.add_argument(
        "--label", required=True, help="label volume (e.g. <case>_seg.nii.gz) holding the model's label values"
    )
    render.add_argument(
        "--brain-mask",
        default=None,
        help="volume on the label's grid, non-zero = brain (default: the label's own case images)",
    )
    render.add_argument(
        "--tissue-image", default=None, help="tissue modality volume (models trained with --tissue-classes)"
    )
    render.add_argument(
        "--deform",
        type=int_in(0, 10000),
        default=0,
        help="render N elastically/affinely deformed label maps instead of the label itself",
    )
    render.add_argument(
        "--num",
        type=int_in(1, 10000),
        default=1,
        help="render the label N times, each with a new appearance code (SPADE models with --style-channels)",
    )
    render.add_argument("--name", default=None, help="output case name stem (default: the label's case name + '_p2p')")
    render.add_argument("--out", required=True, help="output folder")
    add_run_options(render, "--seed", "--device", "--overwrite", "--resume")
    render.set_defaults(func=run_render)


def training_items(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The cases of ``--datalist FILE`` (its training list) or ``--data DIR`` (BraTS-named cases)."""
    if args.datalist:
        return load_datalist(args.datalist, key="training")
    return brats_datalist(args.data)


def check_same_run(out: Path, saved: Pix2PixSettings, args: argparse.Namespace) -> None:
    """``--resume`` continues a run with the settings it was trained with: refuse options given with other values
    (an option left at its default is not "given"; ``--epochs`` may extend the run).

    Raises:
        ValueError: naming each such option, the value asked for and the run's.
    """
    declared = {f.name: f for f in option_fields(Pix2PixSettings)}
    conflicts = [
        f"{flag_of(declared[name])} {getattr(args, name)} (the run: {getattr(saved, name)})"
        for name in TRAINING_OPTIONS
        if name != "epochs"
        and getattr(args, name) is not None
        and getattr(args, name) != declared[name].default
        and getattr(args, name) != getattr(saved, name)
    ]
    if conflicts:
        raise ValueError(
            f"--resume continues {out} with the settings it was trained with, but the command asks for others: "
            f"{'; '.join(conflicts)}. Drop those options to resume, or start afresh with --overwrite"
        )


def run_train(args: argparse.Namespace) -> int:
    """``train-pix2pix``."""
    resolve_device(args.device)  # an unusable --device is refused before any work
    out = Path(args.out)
    check_resumable_output(out, args.resume)
    if args.resume:  # the run's own settings (--epochs may extend it)
        settings = resume_settings(out)
        check_same_run(out, settings, args)
        settings.epochs = max(settings.epochs, args.epochs)
    else:
        settings = from_args(Pix2PixSettings, args, TRAINING_OPTIONS)
    # a VGG-19 file that is missing or not VGG-19 is refused before the slices are prepared
    perceptual = perceptual_loss(settings.vgg_weights) if settings.perceptual_weight else None
    data = pix2pix_training_slices(
        training_items(args), settings, label_values=args.label_values, progress=not args.quiet
    )
    result = train_pix2pix(
        data,
        out,
        settings,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
        tensorboard=args.tensorboard,
        progress=not args.quiet,
        perceptual=perceptual,
    )
    last = result["history"][-1] if result["history"] else {}
    print(
        f"wrote {out} ({result['epochs_done']} epochs on {result['num_slices']} slices, final L1 "
        f"{last.get('l1', float('nan')):.4f})"
    )
    return 0


def _own_case_images(label_path: Path) -> list[str]:
    """The image files of the label's own BraTS-named case, or [] if there are none beside it."""
    name = case_name({"label": str(label_path)})
    try:
        entries = brats_datalist(label_path.parent, require_label=False)
    except CaseError:
        return []
    for entry in entries:
        if entry["name"] == name:
            return list(entry["image"])
    return []


def _load_on_grid(path: str, label: MetaTensor, what: str) -> MetaTensor:
    vol = load_image(path, 3, what)
    check_same_grid(label, vol, f"{path}: {what}")
    return vol


def run_render(args: argparse.Namespace) -> int:
    """``render``: validate everything and check every output is free before writing anything."""
    label_path = Path(args.label)
    if args.deform < 0:
        raise ValueError("--deform must be >= 0")
    renderer = Pix2PixRender(args.model, device=resolve_device(args.device))
    if args.num > 1 and not renderer.varies:
        raise ValueError(
            f"--num {args.num}: {args.model} renders without an appearance code or noise "
            f"({renderer.config.architecture}), so every render of one label map would be the same; use --deform N "
            "for N different label maps, or a SPADE model trained with --style-channels or --noise"
        )
    if args.num > 1 and args.deform:
        raise ValueError(
            "--num and --deform go one at a time: --deform N already renders N label maps, each with its own "
            "appearance code"
        )
    label = load_image(label_path, 3, "label")
    if label.shape[0] != 1:
        raise ConditionError(
            f"{label_path}: a label map must be one 3D volume, this file holds {label.shape[0]} channels"
        )
    index = LabelToIndex(renderer.label_values)(label)  # raises for values outside the model's set
    own_images = _own_case_images(label_path)
    if args.brain_mask:
        brain = (_load_on_grid(args.brain_mask, label, "brain mask") != 0).to(torch.uint8)
        brain_source = args.brain_mask
    elif own_images:
        brain = foreground_mask(torch.cat([_load_on_grid(p, label, "image").as_tensor() for p in own_images])).to(
            torch.uint8
        )
        brain_source = f"non-zero voxels of {', '.join(Path(p).name for p in own_images)}"
    else:
        raise ConditionError(
            f"{label_path}: no brain mask: pass --brain-mask (e.g. the case's T1), none found beside the label"
        )
    if not brain.any():
        raise ConditionError(f"brain mask from {brain_source} is empty")
    tissue_image = None
    if renderer.tissue_classes:
        modality = renderer.config.condition.tissue_modality
        source = args.tissue_image or next(
            (p for p in own_images if Path(p).name.endswith(f"_{modality}.nii.gz")), None
        )
        if source is None:
            raise ConditionError(f"this model uses tissue classes from {modality}: pass --tissue-image")
        tissue_image = _load_on_grid(source, label, "tissue image")
    elif args.tissue_image:
        raise ConditionError("--tissue-image given but the model was trained without tissue classes")

    stem = check_name(args.name, "--name") if args.name else safe_name(f"{case_name({'label': str(label_path)})}_p2p")
    if args.deform:
        names = [f"{stem}_def{i:03d}" for i in range(args.deform)]
    else:
        names = [stem] if args.num == 1 else [f"{stem}_{i:03d}" for i in range(args.num)]
    out_dir = Path(args.out)
    pipeline = pix2pix_synthesis(renderer, out_dir, deform=args.deform > 0, overwrite=args.overwrite)
    pipeline.extra["brain_mask"] = brain_source
    pipeline.signature.update(label=str(label_path.resolve()), brain_mask=brain_source)
    case = {
        "label": index,
        "brain_mask": MetaTensor(brain, meta=dict(label.meta)),
        "tissue_image": tissue_image,
        "source": case_name({"label": str(label_path)}),
    }
    synthesize(
        pipeline,
        [{**case, "name": name} for name in names],
        out_dir,
        seed=args.seed,
        overwrite=args.overwrite,
        resume=args.resume,
    )
    print(f"wrote {len(names)} synthetic case(s) to {out_dir} (brain mask: {brain_source})")
    return 0
