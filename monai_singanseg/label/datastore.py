"""MONAI Label local datastores: one NIfTI file per image and its label in ``labels/final/``.

MONAI Label holds one file per image, named ``<image id>.nii.gz`` in the datastore folder, and the annotators'
labels as ``labels/final/<image id>.nii.gz`` on the same grid. A multi-modal BraTS image is one 4D NIfTI
``(X, Y, Z, 4)`` with the modalities in flair, t1, t1ce, t2 order (channels last, as MONAI's NIfTI reader and
3D Slicer expect); a single-modality image is a 3D volume. Labels hold the label values (BraTS 0/1/2/4).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from monai_singanseg.data import case_name, load_case
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.writers import write_nifti
from monai_singanseg.transforms.intensity.array import SOURCE_DTYPE_KEY
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES, IndexToLabel

__all__ = [
    "FINAL_LABEL_DIR",
    "SYNTHETIC_SOURCE_KEY",
    "datastore_case_paths",
    "write_datastore_case",
    "write_datastore",
]

#: where MONAI Label keeps the annotators' (final) labels, relative to the datastore folder.
FINAL_LABEL_DIR = Path("labels") / "final"
#: image-info key marking a datastore image as synthetic (its value: the source image id).
SYNTHETIC_SOURCE_KEY = "singanseg_source"


def datastore_case_paths(root: str | os.PathLike, image_id: str) -> dict[str, Path]:
    """``{"image": <root>/<id>.nii.gz, "label": <root>/labels/final/<id>.nii.gz}``."""
    folder = Path(root)
    return {"image": folder / f"{image_id}.nii.gz", "label": folder / FINAL_LABEL_DIR / f"{image_id}.nii.gz"}


def write_datastore_case(
    image_path: str | os.PathLike,
    label_path: str | os.PathLike | None,
    image: Any,
    label: Any | None,
    affine: Any,
    image_dtype: str,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write one datastore image (4D channels-last NIfTI if it has several channels) and its label.

    Args:
        image_path: the image file to write.
        label_path: the label file to write (ignored when ``label`` is None).
        image: ``(C, X, Y, Z)`` in source units.
        label: ``(1, X, Y, Z)`` label values, or None.
        affine: the 4x4 affine of both.
        image_dtype: dtype of the image file (the source's, e.g. ``"int16"``).
        overwrite: replace existing files (otherwise nothing is written if one exists).
        provenance: a synthetic case's provenance record, kept in both files' headers.
    """
    targets = [Path(image_path)] + ([Path(label_path)] if label is not None and label_path is not None else [])
    check_outputs_free(targets, overwrite)
    multichannel = int(image.shape[0]) > 1
    write_nifti(image_path, image, affine, image_dtype, overwrite, multichannel, provenance)
    if label is not None and label_path is not None:
        write_nifti(label_path, label, affine, "uint8", overwrite=overwrite, provenance=provenance)


def write_datastore(
    out: str | os.PathLike,
    items: Sequence[Mapping[str, Any]],
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    progress: bool = True,
) -> list[dict[str, str]]:
    """Write cases (BraTS folders, DICOM series, ...) as a MONAI Label datastore; never replaces a file.

    Every case is loaded and validated before the first file is written.

    Args:
        out: the datastore folder (created).
        items: datalist entries (``{"image": path | [flair, t1, t1ce, t2], "label": path, "name": ...}``).
        label_values: the values labels may hold.
        progress: show a progress bar.

    Returns:
        One ``{"id", "image", "label"}`` entry per case (``label`` absent for unlabelled cases).

    Raises:
        OutputExistsError: a file of the datastore already exists.
        CaseError: a case cannot be read or is inconsistent (naming the file).
        ValueError: two cases share a name, or no cases were given.
    """
    if not items:
        raise ValueError("no cases to write")
    names = [case_name(item) for item in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"several cases are named {repeated[0]!r}; datastore image ids must be unique")
    paths = [datastore_case_paths(out, name) for name in names]
    check_outputs_free([p["image"] for p in paths] + [p["label"] for p, i in zip(paths, items) if i.get("label")])
    for item in tqdm(items, desc="checking cases", disable=not progress):
        load_case(item, label_values)
    entries = []
    to_values = IndexToLabel(label_values)
    for item, name, p in tqdm(list(zip(items, names, paths)), desc="writing datastore", disable=not progress):
        case = load_case(item, label_values)
        image = case["image"]
        label = to_values(case["label"]) if "label" in case else None
        write_datastore_case(p["image"], p["label"], image, label, image.affine, str(image.meta[SOURCE_DTYPE_KEY]))
        entry = {"id": name, "image": str(p["image"])}
        if label is not None:
            entry["label"] = str(p["label"])
        entries.append(entry)
    return entries
