"""``demo``: the data path on the embedded case: load, pick tumour slices, crop to the brain, preview."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from monai_singanseg.data import demo_case, load_case
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.writers import BRATS_MODALITIES, write_brats_case, write_datalist
from monai_singanseg.transforms import (
    ExtractTumourSlicesd,
    IndexToLabel,
    IntensityToTanhRange,
    SquareForegroundCropd,
)
from monai_singanseg.visualize import contact_sheet


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the data path on the embedded demo case and write a preview PNG",
        description="Load the embedded BraTS-space demo case, select its largest tumour slices, crop them to the "
        "brain at the working size, and write the slices as NIfTI (with their world position) plus a PNG preview.",
    )
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: %(default)s)")
    p.add_argument("--num-slices", type=int, default=4, help="tumour slices to select (default: %(default)s)")
    p.add_argument("--size", type=int, default=128, help="working size in pixels (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    if args.num_slices < 1:
        raise ValueError("--num-slices must be >= 1")
    out: Path = args.out
    preview, datalist = out / "tumour_slices_preview.png", out / "tumour_slices.json"
    check_outputs_free([preview, datalist], args.overwrite)
    item = demo_case()
    case = load_case(item)
    print(f"loaded {case['name']}: image {tuple(case['image'].shape)} ({case['image'].meta['source_dtype']}), "
          f"labels {list(case['label_values'])}")
    slices = ExtractTumourSlicesd(num_slices=args.num_slices)(case)
    crop = SquareForegroundCropd(spatial_size=args.size)
    scale = IntensityToTanhRange()
    to_values = IndexToLabel(case["label_values"])
    images, labels, names, entries = [], [], [], []
    for s in tqdm(slices, desc="slices", unit="slice"):
        name = f"{case['name']}_slice{s['slice_index']:03d}"
        # the slice at full resolution, written where it lies in the volume
        entries.append(
            write_brats_case(out / "slices", name, s["image"], to_values(s["label"]), s["image"].affine,
                             BRATS_MODALITIES, case["image"].meta["source_dtype"], args.overwrite)
        )
        c = crop(s)
        images.append(scale(c["image"]))
        labels.append(c["label"].round().long())
        names.append(f"slice {s['slice_index']}")
    write_datalist(datalist, entries, overwrite=args.overwrite)
    contact_sheet(preview, images, labels, channel_names=list(BRATS_MODALITIES), row_names=names)
    summary = {"case": case["name"], "slices": [s["slice_index"] for s in slices], "preview": str(preview),
               "datalist": str(datalist)}
    print(json.dumps(summary, indent=2))
    return 0
