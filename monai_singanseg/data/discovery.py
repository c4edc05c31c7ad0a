"""Case discovery: turn folders of files into MONAI datalists (decathlon JSON format).

Three layouts are understood:

- BraTS folders: ``<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` (also BraTS-2023's ``t2f/t1n/t1c/t2w`` and
  ``-`` as separator), one case per folder or many cases side by side;
- DICOM: a case folder holding one sub-folder per modality (``flair/``, ``t1/`` ...), each a single
  DICOM series, and optionally a label volume (``seg.nii.gz`` or ``<case>_seg.nii.gz``); or a single
  series folder (one modality, no label);
- 2D image + mask folders: ``images/X.jpg`` + ``masks/X.jpg|png`` (Kvasir-SEG).

A datalist JSON file (decathlon format) is read with :func:`load_datalist`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_singanseg.data.loading import CaseError

__all__ = [
    "check_distinct_cases",
    "BRATS_MODALITY_ALIASES",
    "brats_datalist",
    "dicom_datalist",
    "image_mask_datalist",
    "find_cases",
    "load_datalist",
    "modality_of_file",
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


def modality_of_file(path: str | os.PathLike) -> str | None:
    """The BraTS modality a NIfTI file's name says (``case_t1ce.nii.gz`` -> ``"t1ce"``, BraTS-2023 names too), or
    None (a label, or a name without a modality tag)."""
    m = _NIFTI.match(Path(path).name)
    modality = _tag_to_modality(m.group("tag")) if m else None
    return None if modality == "seg" else modality


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
                    raise CaseError(
                        f"{case}: DICOM case is missing the '{modality}' series folder (found {sorted(series)})"
                    )
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
    linked = sorted(p.name for p in base.iterdir() if p.is_symlink() and p.is_dir())
    if linked:
        raise CaseError(
            f"{base}: {', '.join(linked[:3])}{' ...' if len(linked) > 3 else ''} link(s) to folders elsewhere, "
            "which are not searched; pass the folder the links point to, or a datalist JSON of the cases"
        )
    return dicom_datalist(base)


def _entry_name(key: str, index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"entry {key}[{index}]" + (f" ({name!r})" if name else "")


def _is_path_value(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) and v.strip() for v in value)


def load_datalist(
    path: str | os.PathLike,
    key: str | Sequence[str] = "training",
    base_dir: str | os.PathLike | None = None,
    require_label: bool = True,
    check_files: bool = True,
) -> list[dict[str, Any]]:
    """Read a decathlon-format datalist JSON with ``monai.data.load_decathlon_datalist``, with errors naming the file.

    Args:
        path: the JSON file: ``{"training": [{"image": path | [paths], "label": path, "name": ...}, ...], ...}``.
        key: the list to read (``"training"``, ``"validation"``, ``"test"``; a ``"test"`` list may hold plain paths),
            or several in order of preference: the first that the file has is read.
        base_dir: folder that relative paths are relative to (default: the datalist's folder).
        require_label: every entry must have a ``"label"``.
        check_files: every image and label file (or DICOM folder) must exist.

    Returns:
        The entries with absolute paths (MONAI's resolution); an entry's ``"name"`` is kept as written.

    Raises:
        CaseError: the file is missing or is not a JSON object, has no ``key`` list, or an entry is not an object,
            lacks ``image`` (or ``label``) or names a file that does not exist; the message names the datalist file
            and the entry.
    """
    from monai.data import load_decathlon_datalist

    p = Path(path)
    keys = (key,) if isinstance(key, str) else tuple(key)
    key = keys[0]
    if not p.exists():
        raise CaseError(f"{p}: datalist file not found")
    if not p.is_file():
        raise CaseError(f"{p}: datalist is a folder, not a JSON file")
    example = f'{{"{key}": [{{"image": "case_flair.nii.gz", "label": "case_seg.nii.gz"}}]}}'
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CaseError(f"{p}: datalist is not a UTF-8 JSON text file ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise CaseError(
            f"{p}: datalist is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); expected a "
            f"decathlon datalist such as {example}"
        ) from exc
    if not isinstance(data, dict):
        raise CaseError(
            f"{p}: datalist must be a JSON object with a '{key}' list, not a JSON {type(data).__name__}; e.g. {example}"
        )
    key = next((k for k in keys if k in data), key)
    if key not in data:
        wanted = " or ".join(f"'{k}'" for k in keys)
        raise CaseError(f"{p}: datalist has no {wanted} list (its keys: {sorted(data)}); e.g. {example}")
    items = data[key]
    if not isinstance(items, list) or not items:
        found = "an empty list" if isinstance(items, list) else f"a JSON {type(items).__name__}"
        raise CaseError(f"{p}: datalist's '{key}' must be a non-empty list of entries, found {found}")
    names: list[Any] = []
    for i, entry in enumerate(items):
        if key == "test" and isinstance(entry, str):  # the decathlon "test" list may hold plain image paths
            entry = {"image": entry}
        where = _entry_name(key, i, entry)
        if not isinstance(entry, dict):
            raise CaseError(
                f"{p}: {where} must be an object with 'image' and 'label', found a JSON {type(entry).__name__} "
                f"({json.dumps(entry)[:60]})"
            )
        if not _is_path_value(entry.get("image")):
            raise CaseError(
                f"{p}: {where} has no 'image' (a file path, a DICOM folder or a list of them); its keys: "
                f"{sorted(entry)}"
            )
        if entry.get("label") is not None and not isinstance(entry["label"], str):
            raise CaseError(f"{p}: {where}: 'label' must be one file path, found {json.dumps(entry['label'])[:60]}")
        if require_label and not (isinstance(entry.get("label"), str) and entry["label"].strip()):
            raise CaseError(f"{p}: {where} has no 'label' (a label file path); its keys: {sorted(entry)}")
        names.append(entry.get("name"))
    try:
        entries = load_decathlon_datalist(p, is_segmentation=True, data_list_key=key, base_dir=base_dir)
    except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:  # checked above; kept for MONAI's own checks
        raise CaseError(f"{p}: cannot read the datalist's '{key}' list: {exc}") from exc
    for i, (entry, name) in enumerate(zip(entries, names)):
        if name is not None:
            entry["name"] = name  # MONAI turns any value that names an existing path into that path
        if not check_files:
            continue
        images = entry["image"] if isinstance(entry["image"], (list, tuple)) else [entry["image"]]
        for what, files in (("image", images), ("label", [entry["label"]] if entry.get("label") else [])):
            for f in files:
                if not Path(f).exists():
                    raise CaseError(f"{p}: {_entry_name(key, i, entry)}: {what} file {f} not found")
    check_distinct_cases(entries, str(p))
    return entries


def check_distinct_cases(items: Sequence[Mapping[str, Any]], source: str = "datalist") -> None:
    """Refuse a list that names one case twice (the same image and label files, or the same ``name``): a model
    would see it twice, and a dataset would hold it twice.

    Raises:
        CaseError: naming ``source`` and both entries.
    """
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        image = item.get("image")
        files = tuple(str(Path(f).resolve()) for f in (image if isinstance(image, (list, tuple)) else [image]))
        keys = [("files", files, str(Path(item["label"]).resolve()) if item.get("label") else None)]
        if item.get("name"):
            keys.append(("name", str(item["name"])))
        for k in keys:
            if k in seen:
                what = f"the name {k[1]!r}" if k[0] == "name" else "the same image and label files"
                raise CaseError(
                    f"{source}: entries {seen[k]} and {i} name one case twice ({what}); list each case once"
                )
            seen[k] = i
