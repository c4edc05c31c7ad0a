"""A MONAI decathlon datalist that MONAI bundles and Auto3DSeg read as it is: ``training``, ``validation`` (real
cases when given, else held-out source cases; Auto3DSeg then trains one fold that validates on it) and ``testing``;
the files under ``cases/<case>/`` in BraTS naming, label values as the source's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_singanseg.farm.export.files import FileJob, copy_job, nifti_job
from monai_singanseg.farm.export.sources import NIFTI_ENDINGS, ExportCase, file_ending

__all__ = ["monai_case_files", "monai_case_jobs", "monai_entry", "auto3dseg_config"]


def monai_case_files(root: Path, case: ExportCase, channels: Sequence[str]) -> tuple[list[Path], Path | None]:
    """``(images, label)`` of a case in the export: ``cases/<case>/<case>_<channel><ending>`` (one file per channel;
    one multi-channel file: ``<case>_image``) and ``<case>_seg<ending>``."""
    folder = root / "cases" / case.name
    tags = list(channels) if len(case.images) == len(channels) else ["image"]
    images = [folder / f"{case.name}_{tag}{file_ending(src)}" for tag, src in zip(tags, case.images)]
    label = folder / f"{case.name}_seg{file_ending(case.label)}" if case.label is not None else None
    return images, label


def monai_case_jobs(
    root: Path, case: ExportCase, channels: Sequence[str], link: bool, provenance: Mapping[str, Any] | None
) -> list[FileJob]:
    """The files of one case (a real case's label rewritten with its label map; PNG files copied or linked)."""
    images, label = monai_case_files(root, case, channels)
    pairs = list(zip(case.images, images)) + ([(case.label, label)] if case.label is not None else [])
    jobs = []
    for src, dest in pairs:
        if file_ending(src) in NIFTI_ENDINGS:
            lut = case.label_map if src == case.label and case.label_map else None
            jobs.append(nifti_job(src, dest, lut, provenance, link))
        else:
            jobs.append(copy_job(src, dest, link))
    return jobs


def monai_entry(root: Path, case: ExportCase, channels: Sequence[str]) -> dict[str, Any]:
    """The case's datalist entry (absolute paths; :func:`~monai_singanseg.io.writers.write_datalist` makes them
    relative), with its provenance fields ``synthetic``, ``source`` and ``generator``."""
    images, label = monai_case_files(root, case, channels)
    entry: dict[str, Any] = {"image": [str(p) for p in images] if len(images) > 1 else str(images[0])}
    if label is not None:
        entry["label"] = str(label)
    # the same keys in every entry (a DataLoader collates a batch key by key): a real case's generator is "none"
    entry.update(name=case.name, synthetic=case.synthetic, source=case.source, generator=case.generator or "none")
    return entry


def auto3dseg_config(name: str, datalist: Path, dataroot: Path, modality: str = "MRI") -> dict[str, Any]:
    """Auto3DSeg's task input (``AutoRunner(input=...)``) for the export."""
    return {
        "name": name,
        "task": "segmentation",
        "modality": modality,
        "datalist": str(datalist.resolve()),
        "dataroot": str(dataroot.resolve()),
    }
