"""Case discovery: turn folders of files into MONAI datalists (decathlon JSON format).

Three layouts are understood:

- BraTS folders: ``<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` (also BraTS-2023's ``t2f/t1n/t1c/t2w`` and
  ``-`` as separator), one case per folder or many cases side by side;
- DICOM: a case folder holding one sub-folder per modality (``flair/``, ``t1/`` ...), each a single
  DICOM series, and optionally a label volume (``seg.nii.gz`` or ``<case>_seg.nii.gz``); or a single
  series folder (one modality, no label);
- 2D image + mask folders: ``images/X.jpg`` + ``masks/X.jpg|png`` (Kvasir-SEG).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_singanseg.data.loading import CaseError

__all__ = [
    "BRATS_MODALITY_ALIASES",
    "brats_datalist",
    "dicom_datalist",
    "image_mask_datalist",
    "find_cases",
]

#: canonical modality -> the names it goes by (BraTS <= 2021, then BraTS 2023).
BRATS_MODALITY_ALIASES: dict[str, tuple[str, ...]] = {
    "flair": ("flair", "t2f"),
    "t1": ("t1", "t1n"),
    "t1ce": ("t1ce", "t1c", "t1gd"),
    "t2": ("t2", "t2w"),
}
_LABEL_NAMES = ("seg",)
_NIFTI = re.compile(r"^(?P<case>.+?)[_-](?P<tag>[A-Za-z0-9]+)\.nii(\.gz)?$")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _tag_to_modality(tag: str) -> str | None:
    tag = tag.lower()
    if tag in _LABEL_NAMES:
        return "seg"
    for canonical, aliases in BRATS_MODALITY_ALIASES.items():
        if tag in aliases:
            return canonical
    return None


def _is_brats_image(filename: str) -> bool:
    """A BraTS-named modality image (not a label): what tells a BraTS folder from a DICOM case with a NIfTI label."""
    m = _NIFTI.match(filename)
    return bool(m) and _tag_to_modality(m.group("tag")) not in (None, "seg")


def brats_datalist(
    root: str | os.PathLike, modalities: Sequence[str] = ("flair", "t1", "t1ce", "t2"), require_label: bool = True
) -> list[dict[str, Any]]:
    """Find BraTS-named cases below ``root``.

    Args:
        root: a case folder or a folder of case folders (searched recursively).
        modalities: the modalities each case must have, in channel order.
        require_label: every case must have a ``_seg`` file.

    Returns:
        Datalist entries ``{"image": [paths in modality order], "label": path, "name": case}`` sorted by name.

    Raises:
        CaseError: no case found, or a case lacks a modality or its label (naming the case and what is missing).
    """
    base = Path(root)
    if not base.is_dir():
        raise CaseError(f"{base}: not a folder")
    cases: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in sorted(base.rglob("*.nii*")):
        m = _NIFTI.match(path.name)
        if not m:
            continue
        modality = _tag_to_modality(m.group("tag"))
        if modality is None:
            continue
        files = cases.setdefault((path.parent, m.group("case")), {})
        if modality in files:
            raise CaseError(f"{path}: case '{m.group('case')}' has two files for '{modality}' ({files[modality].name})")
        files[modality] = path
    if not cases:
        raise CaseError(f"{base}: no BraTS-named NIfTI files (<case>_flair.nii.gz, ...) found")
    entries = []
    for (folder, name), files in sorted(cases.items(), key=lambda kv: kv[0][1]):
        missing = [m for m in modalities if m not in files]
        if missing:
            raise CaseError(f"{folder / name}: case '{name}' is missing modality {missing} (found {sorted(files)})")
        if require_label and "seg" not in files:
            raise CaseError(f"{folder / name}: case '{name}' has no label file '{name}_seg.nii.gz'")
        entry: dict[str, Any] = {"image": [str(files[m]) for m in modalities], "name": name}
        if "seg" in files:
            entry["label"] = str(files["seg"])
        entries.append(entry)
    return entries


def _has_files(folder: Path) -> bool:
    return any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir())


def dicom_datalist(
    root: str | os.PathLike, modalities: Sequence[str] | None = ("flair", "t1", "t1ce", "t2")
) -> list[dict[str, Any]]:
    """Find DICOM cases below ``root``.

    Args:
        root: a case folder (holding one sub-folder per modality, each one DICOM series), a folder of
            such case folders, or a single series folder.
        modalities: sub-folder names in channel order (aliases such as ``t2f`` are accepted); None means
            every sub-folder, sorted by name.

    Returns:
        Datalist entries; ``"image"`` is a list of series folders, ``"label"`` a NIfTI label if present.
    """
    base = Path(root)
    if not base.is_dir():
        raise CaseError(f"{base}: not a folder")
    subdirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not subdirs:  # a single series folder
        return [{"image": [str(base)], "name": base.name}]
    case_dirs = [base] if all(_has_files(d) for d in subdirs) else subdirs
    entries = []
    for case in case_dirs:
        series = {d.name.lower(): d for d in sorted(case.iterdir()) if d.is_dir()}
        if modalities is None:
            image = [str(d) for d in series.values()]
        else:
            image = []
            for modality in modalities:
                aliases = BRATS_MODALITY_ALIASES.get(modality, (modality,))
                found = next((series[a] for a in aliases if a in series), None)
                if found is None:
                    raise CaseError(f"{case}: DICOM case is missing the '{modality}' series folder (found {sorted(series)})")
                image.append(str(found))
        entry: dict[str, Any] = {"image": image, "name": case.name}
        labels = sorted(case.glob("*seg.nii*"))
        if labels:
            entry["label"] = str(labels[0])
        entries.append(entry)
    return entries


def image_mask_datalist(root: str | os.PathLike, images: str = "images", masks: str = "masks") -> list[dict[str, Any]]:
    """Pair ``images/X.jpg`` with ``masks/X.(jpg|png)`` (Kvasir-SEG layout).

    Raises:
        CaseError: missing folders, no images, or an image without its mask.
    """
    base = Path(root)
    image_dir, mask_dir = base / images, base / masks
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise CaseError(f"{folder}: folder not found (expected {images}/ and {masks}/ side by side)")
    masks_by_stem = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES}
    entries = []
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES):
        mask = masks_by_stem.get(image.stem)
        if mask is None:
            raise CaseError(f"{image}: no mask named '{image.stem}.*' in {mask_dir}")
        entries.append({"image": str(image), "label": str(mask), "name": image.stem})
    if not entries:
        raise CaseError(f"{image_dir}: no images found")
    return entries


def find_cases(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Guess the layout of ``root`` (image+mask folders, BraTS NIfTI, or DICOM) and list its cases."""
    base = Path(root)
    if not base.is_dir():
        raise CaseError(f"{base}: not a folder")
    if (base / "images").is_dir() and (base / "masks").is_dir():
        return image_mask_datalist(base)
    if any(_is_brats_image(p.name) for p in base.rglob("*.nii*")):
        return brats_datalist(base)
    return dicom_datalist(base)
