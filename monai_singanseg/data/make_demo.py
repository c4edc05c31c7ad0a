"""Rebuild the embedded demo data from the full cases: ``python -m monai_singanseg.data.make_demo SHARED_DATA``.

The BraTS-space case TCGA-FG-6692 is cut to the brain's bounding box in-plane and a slab of 20 axial
slices around its largest tumour cross-section (nibabel's slicer updates the affine, so every voxel
keeps its world position); the five Kvasir-SEG pairs are copied as they are.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nibabel as nib

CASE = "TCGA-FG-6692"
#: voxel box in the 240 x 240 x 155 BraTS grid: brain bounding box in-plane, 20 slices around slice 87
BOX = (slice(44, 193), slice(43, 218), slice(78, 98))
MODALITIES = ("flair", "t1", "t1ce", "t2", "seg")


def make_demo(shared_data: Path, out: Path) -> None:
    """Write the cropped case to ``out/brats`` and the Kvasir pairs to ``out/kvasir``."""
    src = shared_data / "brats_tcga" / CASE
    (out / "brats").mkdir(parents=True, exist_ok=True)
    for modality in MODALITIES:
        img = nib.load(str(src / f"{CASE}_{modality}.nii.gz"))
        nib.save(img.slicer[BOX], str(out / "brats" / f"{CASE}_{modality}.nii.gz"))
    for sub in ("images", "masks"):
        shutil.copytree(shared_data / "kvasir_seg" / sub, out / "kvasir" / sub, dirs_exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "demo")
    args = parser.parse_args()
    make_demo(args.shared_data, args.out)


if __name__ == "__main__":
    main()
