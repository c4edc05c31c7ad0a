"""The cases an export reads: a synthetic dataset folder written by ``synthesize`` (or a synthesis run's folder), or a
datalist of real cases; each case with its channels, label, whether it is synthetic and the real case it comes from.
Everything is checked here, before anything is written."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from monai_singanseg.data import CaseError, case_name, load_datalist
from monai_singanseg.data.discovery import modality_of_file
from monai_singanseg.farm.datalists import check_channel_order
from monai_singanseg.io.names import check_name, safe_name

__all__ = [
    "ExportCase",
    "CaseSet",
    "read_cases",
    "in_channel_order",
    "check_labels",
    "check_distinct",
    "file_ending",
    "NIFTI_ENDINGS",
]

NIFTI_ENDINGS = (".nii.gz", ".nii")
_PNG = ".png"
#: the files that make a folder a synthetic dataset (``synthesize``) or a synthesis run (``sample``, ``render``).
_RUN_RECORDS = ("synthesize.json", "synthesis.json")


@dataclass
class ExportCase:
    """One case to export.

    Args:
        name: its name in the export (one safe path component, distinct across the export).
        images: one file per channel (or one multi-channel file), in the export's channel order.
        label: its label file (None: a test case without one).
        synthetic: made by a generator (its files say so), not a patient's scan.
        source: the real case it comes from (a real case: its own name).
        generator: what made it (synthetic cases).
        label_map: label values replaced on export (real cases: ``--label-map``).
    """

    name: str
    images: list[Path]
    label: Path | None
    synthetic: bool
    source: str
    generator: str | None = None
    label_map: dict[int, int] = field(default_factory=dict)


@dataclass
class CaseSet:
    """The cases of one input (SRC, ``--real`` or ``--test``) and what they share."""

    path: Path
    cases: list[ExportCase]
    channels: list[str]
    label_values: tuple[int, ...] | None
    label_names: dict[int, str]
    description: str


def file_ending(path: Path) -> str:
    """A file's ending in lower case: ``.nii.gz``, ``.nii``, ``.png``, else its last suffix."""
    name = path.name.lower()
    return next((e for e in (*NIFTI_ENDINGS, _PNG) if name.endswith(e)), path.suffix.lower())


def _channels_of_files(images: Sequence[Path], what: str) -> list[str]:
    """Channel names from the files of one case: BraTS modality tags, else ``ch<i>`` (a 4D NIfTI: one per volume)."""
    if len(images) == 1:
        ending = file_ending(images[0])
        if ending == _PNG:
            return ["red", "green", "blue"]
        if ending in NIFTI_ENDINGS:
            shape = nib.load(str(images[0])).shape
            if len(shape) == 4:
                return [f"ch{i}" for i in range(shape[3])]
    tags = [modality_of_file(p) for p in images]
    if all(tags) and len(set(tags)) == len(tags):
        return [str(t) for t in tags]
    return [f"ch{i}" for i in range(len(images))]


def _declared_channels(data: Mapping[str, Any]) -> list[str] | None:
    """The channel names a datalist declares: ``channel_order``, or the decathlon ``modality`` map."""
    if isinstance(data.get("channel_order"), list):
        return [str(c) for c in data["channel_order"]]
    modality = data.get("modality")
    if isinstance(modality, dict) and modality and all(str(k).isdigit() for k in modality):
        return [str(modality[k]) for k in sorted(modality, key=int)]
    return None


def _label_values(data: Mapping[str, Any]) -> tuple[tuple[int, ...] | None, dict[int, str]]:
    """The label values a datalist declares (its ``labels`` keys) and their names (where they are not the value)."""
    labels = data.get("labels")
    if not isinstance(labels, dict) or not all(str(k).lstrip("-").isdigit() for k in labels):
        return None, {}
    values = tuple(sorted(int(k) for k in labels))
    names = {int(k): str(v) for k, v in labels.items() if str(v) != str(k)}
    return values, names


def _entries(datalist: Path, what: str, require_label: bool) -> list[dict[str, Any]]:
    """The entries of the datalist's ``training`` and (when not empty) ``validation`` lists (a datalist of test cases:
    its ``test`` list when it has no ``training`` one)."""
    raw = json.loads(datalist.read_text(encoding="utf-8"))
    keys = ["training"] + (["validation"] if raw.get("validation") else [])
    if not raw.get("training") and raw.get("test"):
        keys = ["test"]
    try:
        return [e for key in keys for e in load_datalist(datalist, key, require_label=require_label)]
    except CaseError as exc:
        raise CaseError(f"{what}: {exc}") from None


def read_cases(
    path: str | os.PathLike,
    what: str = "SRC",
    label_map: Mapping[int, int] | None = None,
    require_label: bool = True,
    channel_order: Sequence[str] | None = None,
) -> CaseSet:
    """Read the cases of a synthetic dataset folder or a datalist file.

    Args:
        path: a folder written by ``synthesize`` (``datalist.json`` beside ``synthesize.json``) or by a synthesis run
            (``synthesis.json``), or a MONAI decathlon datalist JSON file.
        what: the input's name in messages (``SRC``, ``--real``, ``--test``).
        label_map: label values replaced in these cases on export (e.g. ``{3: 1}``).
        require_label: every case must have a label (not so for test cases).
        channel_order: the channels in this order, by name (default: the input's own order).

    Raises:
        CaseError: not a synthetic dataset folder or datalist, a missing file, an entry without channels of the
            others, or names that clash; each message names the input.
        ValueError: ``channel_order`` names channels the cases lack.
    """
    src = Path(path)
    if src.is_dir():
        if not (src / "datalist.json").is_file() or not any((src / r).is_file() for r in _RUN_RECORDS):
            raise CaseError(
                f"{what} {src} is not a synthetic dataset folder (one written by `synthesize` holds datalist.json and "
                "synthesize.json) or a datalist JSON file"
            )
        datalist, folder_synthetic = src / "datalist.json", True
    elif src.is_file():
        datalist, folder_synthetic = src, False
    else:
        raise CaseError(f"{what} {src} does not exist (expected a synthetic dataset folder or a datalist JSON file)")
    try:
        data = json.loads(datalist.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaseError(f"{what} {datalist} is not a JSON datalist ({exc})") from None
    if not isinstance(data, dict):
        raise CaseError(f"{what} {datalist} is not a decathlon datalist (a JSON object with a 'training' list)")
    cases = []
    for entry in _entries(datalist, what, require_label):
        images = [Path(p) for p in (entry["image"] if isinstance(entry["image"], (list, tuple)) else [entry["image"]])]
        for p in images + ([Path(entry["label"])] if entry.get("label") else []):
            if file_ending(p) not in (*NIFTI_ENDINGS, _PNG):
                raise CaseError(
                    f"{what}: case {case_name(entry)!r}: {p} is not a NIfTI (.nii, .nii.gz) or PNG file; export "
                    "takes cases as NIfTI files (PNG for 2D pictures)"
                )
        synthetic = bool(entry.get("synthetic", folder_synthetic))
        name = safe_name(case_name(entry))
        cases.append(
            ExportCase(
                name=name,
                images=images,
                label=Path(entry["label"]) if entry.get("label") else None,
                synthetic=synthetic,
                source=str(entry.get("source") or name),
                generator=str(entry["generator"]) if entry.get("generator") else None,
                label_map=dict(label_map or {}),
            )
        )
    channels = _declared_channels(data) or _channels_of_files(cases[0].images, what)
    for case in cases:
        if len(case.images) > 1 and len(case.images) != len(channels):
            raise CaseError(
                f"{what}: case {case.name!r} has {len(case.images)} image files, the others {len(channels)} "
                f"channels ({channels})"
            )
    values, names = _label_values(data)
    description = str(data.get("description") or ("synthetic dataset" if folder_synthetic else "real cases"))
    case_set = CaseSet(src, cases, channels, values, names, description)
    return case_set if channel_order is None else in_channel_order(case_set, channel_order, what)


def in_channel_order(case_set: CaseSet, order: Sequence[str], what: str) -> CaseSet:
    """``case_set`` with each case's image files in the channel order ``order`` (by name).

    Raises:
        ValueError: ``order`` names channels the cases lack (or not each once), or the cases hold their channels in
            one file, whose inner order an export cannot change.
    """
    indices = check_channel_order(order, case_set.channels, "--channel-order")
    if indices == list(range(len(indices))):
        return case_set
    if len(case_set.cases[0].images) == 1 and len(case_set.channels) > 1:
        raise ValueError(
            f"--channel-order: {what} holds its {len(case_set.channels)} channels in one file per case; the order of "
            "channels inside a file cannot be changed by an export"
        )
    cases = [replace(c, images=[c.images[i] for i in indices]) for c in case_set.cases]
    return replace(case_set, cases=cases, channels=[case_set.channels[i] for i in indices])


def check_labels(cases: Sequence[ExportCase], allowed: Sequence[int], what: str) -> set[int]:
    """Read every label and refuse values outside ``allowed`` (after each case's label map); returns the values seen.

    Raises:
        CaseError: naming the label file, its unknown values and the allowed ones.
    """
    seen: set[int] = set()
    for case in cases:
        if case.label is None:
            continue
        values = _label_file_values(case.label)
        mapped = {case.label_map.get(v, v) for v in values}
        unknown = sorted(mapped - set(allowed))
        if unknown:
            hint = " (BRATS-2013 labels: pass --label-map 3:1)" if 3 in unknown and 4 in allowed else ""
            raise CaseError(
                f"{what}: label {case.label} of case {case.name!r} holds values {unknown} outside the dataset's label "
                f"values {sorted(allowed)}{hint}"
            )
        seen |= mapped
    return seen


def _label_file_values(path: Path) -> frozenset[int]:
    """The values a label file holds, read once per file version in a process (an export checks labels against two
    sets of values)."""
    stat = path.stat()
    return _file_values(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _file_values(path: str, mtime_ns: int, size: int) -> frozenset[int]:
    if file_ending(Path(path)) == _PNG:
        from PIL import Image

        with Image.open(path) as img:
            return frozenset(int(v) for v in np.unique((np.asarray(img) > 127).astype(np.uint8)))
    arr = np.asanyarray(nib.load(path).dataobj)
    return frozenset(int(v) for v in np.unique(np.round(arr)))


def check_distinct(case_sets: Sequence[tuple[str, Sequence[ExportCase]]]) -> None:
    """Refuse two cases with one name, and a case given twice (the same image files) across the inputs, e.g. a test
    case that is also a training case.

    Raises:
        CaseError: naming both inputs and the case.
    """
    names: dict[str, str] = {}
    files: dict[tuple[str, ...], tuple[str, str]] = {}
    for what, cases in case_sets:
        for case in cases:
            check_name(case.name, f"{what}: case name")
            key = tuple(sorted(str(p.resolve()) for p in case.images))
            if key in files:
                other_what, other = files[key]
                raise CaseError(
                    f"{what}: case {case.name!r} is {other_what}'s case {other!r} (the same image files); a case is "
                    "exported once, and a test case must not be a training case"
                )
            if case.name in names:
                raise CaseError(
                    f"{what}: case name {case.name!r} is also a case of {names[case.name]}; give the cases distinct "
                    "'name's in their datalists"
                )
            names[case.name] = what
            files[key] = (what, case.name)
