"""nnU-Net v2's raw dataset format: ``DatasetNNN_Name/`` with ``imagesTr/<case>_<XXXX>.nii.gz`` (one file per
channel), ``labelsTr/<case>.nii.gz`` (consecutive label values), ``imagesTs/``, ``dataset.json`` and a
``splits_final.json`` whose validation folds hold real cases only.

BraTS labels follow nnU-Net's own BraTS conversion (``Dataset137_BraTS21``): edema 2 -> 1, necrosis / non-enhancing
core 1 -> 2, enhancing 4 -> 3, trained as the regions whole tumour (1, 2, 3), tumour core (2, 3) and enhancing (3)
with ``regions_class_order`` (1, 2, 3); nnU-Net's ``convert_labels_back_to_BraTS`` maps its predictions back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_singanseg.farm.datalists import source_folds
from monai_singanseg.farm.export.files import FileJob, nifti_job
from monai_singanseg.farm.export.sources import NIFTI_ENDINGS, ExportCase

__all__ = [
    "BRATS_TO_NNUNET",
    "nnunet_labels",
    "nnunet_folder",
    "nnunet_case_jobs",
    "nnunet_dataset_json",
    "nnunet_splits",
    "MAX_FOLDS",
]

#: BraTS label value -> nnU-Net's (``Dataset137_BraTS21``).
BRATS_TO_NNUNET = {0: 0, 2: 1, 1: 2, 4: 3}
_BRATS_REGIONS = {
    "background": 0,
    "whole_tumor": [1, 2, 3],
    "tumor_core": [2, 3],
    "enhancing_tumor": [3],
}
_BRATS_CLASSES = {"background": 0, "edema": 1, "necrosis_non_enhancing": 2, "enhancing_tumor": 3}
#: nnU-Net trains five folds.
MAX_FOLDS = 5


def nnunet_labels(
    values: Sequence[int], names: Mapping[int, str], classes: bool = False
) -> tuple[dict[int, int], dict[str, Any], list[int] | None]:
    """``(label map, dataset.json's labels, regions_class_order)`` for label values ``values``.

    BraTS values (0, 1, 2, 4) become nnU-Net's BraTS regions (or, with ``classes``, its BraTS classes); other values
    become 0 .. n-1 in their order, named by ``names`` (else ``label_<value>``; 0 is ``background``).
    """
    values = sorted(int(v) for v in values)
    if values == sorted(BRATS_TO_NNUNET):
        return (
            dict(BRATS_TO_NNUNET),
            dict(_BRATS_CLASSES if classes else _BRATS_REGIONS),
            None if classes else [1, 2, 3],
        )
    lut = {v: i for i, v in enumerate(values)}
    labels = {}
    for v, i in lut.items():
        default = "background" if v == 0 else f"label_{v}"
        labels[str(names.get(v, default))] = i
    if len(labels) != len(lut):
        labels = {("background" if v == 0 else f"label_{v}"): i for v, i in lut.items()}
    return lut, labels, None


def nnunet_folder(out: Path, dataset_id: int, name: str) -> Path:
    """``out/DatasetNNN_Name``."""
    return out / f"Dataset{dataset_id:03d}_{name}"


def nnunet_case_jobs(
    root: Path, case: ExportCase, lut: Mapping[int, int], test: bool, link: bool, provenance: Mapping[str, Any] | None
) -> list[FileJob]:
    """The files of one case: ``imagesTr/<case>_<XXXX>.nii.gz`` per channel and ``labelsTr/<case>.nii.gz`` (test
    cases: ``imagesTs/`` and, with a label, ``labelsTs/``).

    Raises:
        ValueError: a file that is not NIfTI, or one file holding several channels.
    """
    for p in case.images + ([case.label] if case.label else []):
        if not p.name.lower().endswith(NIFTI_ENDINGS):
            raise ValueError(f"case {case.name!r}: {p} is not NIfTI; nnU-Net exports take NIfTI cases")
    images, labels = ("imagesTs", "labelsTs") if test else ("imagesTr", "labelsTr")
    full_lut = {v: case.label_map.get(v, v) for v in range(256)}  # the case's own map first (real cases)
    full_lut = {v: lut[w] for v, w in full_lut.items() if w in lut}
    jobs = [
        nifti_job(src, root / images / f"{case.name}_{i:04d}.nii.gz", provenance=provenance, link=link)
        for i, src in enumerate(case.images)
    ]
    if case.label is not None:
        jobs.append(nifti_job(case.label, root / labels / f"{case.name}.nii.gz", full_lut, provenance, link))
    return jobs


def nnunet_dataset_json(
    name: str,
    description: str,
    channels: Sequence[str],
    labels: Mapping[str, Any],
    regions_class_order: list[int] | None,
    num_training: int,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """nnU-Net v2's ``dataset.json``, with the export's provenance under ``monai_singanseg`` (nnU-Net ignores it)."""
    data: dict[str, Any] = {
        "name": name,
        "description": description,
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": dict(labels),
        "numTraining": int(num_training),
        "file_ending": ".nii.gz",
    }
    if regions_class_order is not None:
        data["regions_class_order"] = list(regions_class_order)
    data["monai_singanseg"] = dict(provenance)
    return data


def nnunet_splits(cases: Sequence[ExportCase], seed: int = 0) -> list[dict[str, list[str]]]:
    """``splits_final.json``: up to five folds whose validation cases are real cases (spread over the folds by source
    case) and whose training cases are every other case, synthetic ones always. Without real cases the folds hold out
    synthetic source cases instead (all samples of one source case on one side). Empty with fewer than one real case
    and two synthetic source cases."""
    real = [c for c in cases if not c.synthetic]
    held = real or list(cases)
    sources = [c.source for c in held]
    num_folds = min(MAX_FOLDS, len(set(sources)))
    if not real and num_folds < 2:
        return []
    folds = source_folds(sources, num_folds, seed)
    splits = []
    for k in range(num_folds):
        val = {c.name for c in held if folds[c.source] == k}
        splits.append(
            {"train": [c.name for c in cases if c.name not in val], "val": [c.name for c in held if c.name in val]}
        )
    return splits
