"""The embedded demo data (credits and licences in ``demo/README.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monai_singanseg.data.discovery import brats_datalist, image_mask_datalist

__all__ = ["demo_root", "demo_case", "demo_kvasir"]


def demo_root() -> Path:
    """Folder of the embedded demo data."""
    return Path(__file__).resolve().parent / "demo"


def demo_case() -> dict[str, Any]:
    """Datalist entry of the embedded BraTS-space case (TCGA-FG-6692, 149 x 175 x 20 voxels, labels 0/1/2/4).

    Returns:
        ``{"image": [flair, t1, t1ce, t2 paths], "label": seg path, "name": "TCGA-FG-6692"}``.
    """
    return brats_datalist(demo_root() / "brats")[0]


def demo_kvasir() -> list[dict[str, Any]]:
    """Datalist entries of the five embedded Kvasir-SEG polyp image/mask pairs."""
    return image_mask_datalist(demo_root() / "kvasir")
