"""``demo``: the data path and both shipped bundles on the embedded case.

1. load the demo case, pick its largest tumour slices, write them (with their world position) and a preview;
2. run the SinGAN-Seg bundle's inference: synthetic labelled slices from the shipped model;
3. run the pix2pix bundle's inference: synthetic volumes rendered for deformed versions of the demo label.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from monai.bundle import create_workflow
from tqdm import tqdm

from monai_singanseg.bundle import bundle_root
from monai_singanseg.cli.options import int_in
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
    p.add_argument(
        "--num-slices", type=int_in(1, 1000), default=4, help="tumour slices to select (default: %(default)s)"
    )
    p.add_argument("--size", type=int_in(8, 4096), default=128, help="working size in pixels (default: %(default)s)")
    p.add_argument(
        "--singanseg-samples", type=int_in(0, 10**5), default=8, help="SinGAN-Seg samples (default: %(default)s)"
    )
    p.add_argument(
        "--pix2pix-samples", type=int_in(0, 10**4), default=2, help="pix2pix deformed volumes (default: %(default)s)"
    )
    p.add_argument("--data-only", action="store_true", help="only the data path (no generators)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    if args.num_slices < 1:
        raise ValueError("--num-slices must be >= 1")
    out: Path = args.out
    preview, datalist = out / "tumour_slices_preview.png", out / "tumour_slices.json"
    bundles = {} if args.data_only else {name: bundle_root(name) for name in ("singanseg", "pix2pix")}
    check_outputs_free([preview, datalist] + [out / name / "datalist.json" for name in bundles], args.overwrite)
    item = demo_case()
    case = load_case(item)
    print(
        f"loaded {case['name']}: image {tuple(case['image'].shape)} ({case['image'].meta['source_dtype']}), "
        f"labels {list(case['label_values'])}"
    )
    slices = ExtractTumourSlicesd(num_slices=args.num_slices)(case)
    crop = SquareForegroundCropd(spatial_size=args.size)
    scale = IntensityToTanhRange()
    to_values = IndexToLabel(case["label_values"])
    images, labels, names, entries = [], [], [], []
    for s in tqdm(slices, desc="slices", unit="slice"):
        name = f"{case['name']}_slice{s['slice_index']:03d}"
        # the slice at full resolution, written where it lies in the volume
        entries.append(
            write_brats_case(
                out / "slices",
                name,
                s["image"],
                to_values(s["label"]),
                s["image"].affine,
                BRATS_MODALITIES,
                case["image"].meta["source_dtype"],
                args.overwrite,
            )
        )
        c = crop(s)
        images.append(scale(c["image"]))
        labels.append(c["label"].round().long())
        names.append(f"slice {s['slice_index']}")
    write_datalist(datalist, entries, overwrite=args.overwrite)
    contact_sheet(preview, images, labels, channel_names=list(BRATS_MODALITIES), row_names=names)
    summary: dict = {
        "case": case["name"],
        "slices": [s["slice_index"] for s in slices],
        "preview": str(preview),
        "datalist": str(datalist),
    }
    samples = {"singanseg": args.singanseg_samples, "pix2pix": args.pix2pix_samples}
    for name, root in bundles.items():
        print(f"running the {name} bundle's inference ...")
        workflow = create_workflow(
            config_file=str(Path(root) / "configs" / "inference.json"),
            logging_file=False,
            bundle_root=root,
            output_dir=str(out / name),
            num_samples=samples[name],
            overwrite=args.overwrite,
        )
        (result,) = workflow.run()  # a ConfigWorkflow returns the list of its run expressions' values
        workflow.finalize()
        summary[name] = {"cases": len(result["cases"]), "datalist": result["datalist"], "preview": result["preview"]}
    print(json.dumps(summary, indent=2))
    return 0
