"""Writing cases: NIfTI volumes in BraTS naming, 2D image+mask PNGs, decathlon datalists; all atomic."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.utils import convert_to_numpy
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from monai_singanseg.io.atomic import atomic_path, atomic_paths, check_outputs_free
from monai_singanseg.io.names import check_name, inside
from monai_singanseg.io.provenance import SYNTHETIC_INTENT, nifti_descrip, png_text

__all__ = [
    "BRATS_MODALITIES",
    "write_nifti",
    "brats_case_paths",
    "write_brats_case",
    "image_mask_png_paths",
    "write_image_mask_png",
    "write_datalist",
]

BRATS_MODALITIES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")


def _spatial(array: Any) -> np.ndarray:
    """Drop a leading channel of 1; a 2D array becomes a one-slice volume ``(H, W, 1)``."""
    arr = convert_to_numpy(array)
    if arr.ndim in (3, 4) and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"expected a 2D or 3D array (optionally with one channel), got shape {arr.shape}")
    return arr


def write_nifti(
    path: str | os.PathLike,
    array: Any,
    affine: Any,
    dtype: str | np.dtype = "float32",
    overwrite: bool = False,
    multichannel: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write one NIfTI volume with the given 4x4 affine (sform and qform, mm), atomically.

    Args:
        path: destination (``.nii`` or ``.nii.gz``).
        array: ``(*spatial)`` or ``(1, *spatial)``; a 2D array is written as an ``(H, W, 1)`` volume, the
            affine's third column then being the slice direction.
        affine: the 4x4 voxel-to-world (RAS, as MONAI and NIfTI use) matrix.
        dtype: output dtype (e.g. ``"int16"`` as BraTS images, ``"uint8"`` as labels).
        overwrite: replace an existing file.
        multichannel: ``array`` is ``(C, X, Y, Z)`` and is written as one 4D ``(X, Y, Z, C)`` NIfTI (channels
            last, as MONAI's NIfTI reader expects; MONAI Label's multi-modal images).
        provenance: a synthetic volume's provenance record
            (:func:`~monai_singanseg.io.provenance.provenance_record`), kept in the header.
    """
    dest = Path(path)
    check_outputs_free([dest], overwrite)
    nii = _nifti_image(array, affine, dtype, multichannel, provenance)
    with atomic_path(dest) as tmp:
        nib.save(nii, str(tmp))
    return dest


def _nifti_image(
    array: Any, affine: Any, dtype: str | np.dtype, multichannel: bool, provenance: Mapping[str, Any] | None = None
) -> nib.Nifti1Image:
    """The NIfTI image :func:`write_nifti` writes (affine as sform and qform, mm; integers rounded and clipped; a
    synthetic volume's provenance in ``intent_name`` and ``descrip``)."""
    if multichannel:
        arr = np.moveaxis(convert_to_numpy(array), 0, -1)
        if arr.ndim != 4:
            raise ValueError(f"multichannel=True expects a (C, X, Y, Z) array, got shape {np.shape(array)}")
    else:
        arr = _spatial(array)
    aff = convert_to_numpy(affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got {aff.shape}")
    np_dtype = np.dtype(dtype)
    if np.issubdtype(np_dtype, np.integer):
        info = np.iinfo(np_dtype)
        arr = np.clip(np.round(arr), info.min, info.max)
    # nibabel directly: MONAI's NibabelWriter squeezes or adds dimensions to one-slice volumes
    nii = nib.Nifti1Image(arr.astype(np_dtype), aff)
    nii.header.set_xyzt_units("mm", "sec")
    nii.set_qform(aff, code=1)
    nii.set_sform(aff, code=1)
    if provenance is not None:
        nii.header["intent_name"] = SYNTHETIC_INTENT.encode("ascii")
        nii.header["descrip"] = nifti_descrip(provenance).encode("ascii")
    return nii


def brats_case_paths(
    out_dir: str | os.PathLike, name: str, modalities: Sequence[str] = BRATS_MODALITIES
) -> dict[str, Any]:
    """The files :func:`write_brats_case` writes: ``<name>_<modality>.nii.gz`` and ``<name>_seg.nii.gz``.

    Raises:
        NameError_: the case name or a modality name is not one safe path component, or a file would land
            outside ``out_dir``.
    """
    folder = Path(out_dir)
    check_name(name, "case name")
    for m in modalities:
        check_name(m, "modality name")
    images = [inside(folder, folder / f"{name}_{m}.nii.gz", "case file") for m in modalities]
    return {"image": images, "label": inside(folder, folder / f"{name}_seg.nii.gz", "case file")}


def write_brats_case(
    out_dir: str | os.PathLike,
    name: str,
    image: Any,
    label: Any | None,
    affine: Any,
    modalities: Sequence[str] = BRATS_MODALITIES,
    image_dtype: str | None = None,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a case in BraTS naming, one NIfTI per modality plus the label.

    Args:
        out_dir: destination folder (created).
        name: case name.
        image: ``(C, *spatial)`` in source units, one channel per modality.
        label: ``(1, *spatial)`` label VALUES (e.g. BraTS 0/1/2/4), or None.
        affine: 4x4 affine of the image grid (a 2D slice's own position in its volume).
        modalities: one name per channel.
        image_dtype: dtype to write (default: the image's own, or ``meta["source_dtype"]``).
        overwrite: replace existing files; otherwise nothing is written if any exists.
        provenance: a synthetic case's provenance record, kept in every file's header.

    Returns:
        Its datalist entry ``{"image": [...], "label": ..., "name": name}`` with absolute paths.
    """
    img = convert_to_numpy(image)
    if img.shape[0] != len(modalities):
        raise ValueError(f"image has {img.shape[0]} channels but {len(modalities)} modality names were given")
    paths = brats_case_paths(out_dir, name, modalities)
    targets = list(paths["image"]) + ([paths["label"]] if label is not None else [])
    check_outputs_free(targets, overwrite)
    if image_dtype is None:
        meta = getattr(image, "meta", {})
        image_dtype = str(meta.get("source_dtype", img.dtype))
    volumes = [_nifti_image(channel, affine, image_dtype, False, provenance) for channel in img]
    if label is not None:
        volumes.append(_nifti_image(label, affine, "uint8", False, provenance))
    with atomic_paths(targets) as temps:  # all files of the case, or none
        for nii, tmp in zip(volumes, temps):
            nib.save(nii, str(tmp))
    entry: dict[str, Any] = {"image": [str(p) for p in paths["image"]], "name": name}
    if label is not None:
        entry["label"] = str(paths["label"])
    return entry


def _to_hwc_uint8(image: Any) -> np.ndarray:
    arr = convert_to_numpy(image, dtype=np.float64)
    if arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    # MONAI's PILReader reads images as (W, H); transpose back to PIL's (H, W) layout
    arr = np.swapaxes(arr, 0, 1)
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def image_mask_png_paths(out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """The files :func:`write_image_mask_png` writes: ``images/<name>.png`` and ``masks/<name>.png``.

    Raises:
        NameError_: the name is not one safe path component, or a file would land outside ``out_dir``.
    """
    folder = Path(out_dir)
    check_name(name, "case name")
    return inside(folder, folder / "images" / f"{name}.png", "case file"), inside(
        folder, folder / "masks" / f"{name}.png", "case file"
    )


def write_image_mask_png(
    out_dir: str | os.PathLike,
    name: str,
    image: Any,
    mask: Any,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a 2D RGB image and its binary mask as ``images/<name>.png`` and ``masks/<name>.png``.

    Args:
        out_dir: destination folder (``images/`` and ``masks/`` are created inside it).
        name: file stem.
        image: ``(3, W, H)`` in 0..255, in MONAI's ``PILReader`` layout (as loaded).
        mask: ``(1, W, H)`` of 0/1 (written as 0/255 so it is visible and thresholds at 127).
        overwrite: replace existing files.
        provenance: a synthetic case's provenance record, kept in both files' text chunks.
    """
    img_path, mask_path = image_mask_png_paths(out_dir, name)
    check_outputs_free([img_path, mask_path], overwrite)
    mask_arr = (convert_to_numpy(mask) > 0).astype(np.float64) * 255.0
    arrays = (_to_hwc_uint8(image), _to_hwc_uint8(mask_arr))
    info = None
    if provenance is not None:
        info = PngInfo()
        for key, text in png_text(provenance).items():
            info.add_text(key, text)
    with atomic_paths([img_path, mask_path]) as temps:  # both files, or neither
        for arr, tmp in zip(arrays, temps):
            Image.fromarray(arr).save(tmp, format="PNG", pnginfo=info)
    return {"image": str(img_path), "label": str(mask_path), "name": name}


def write_datalist(
    path: str | os.PathLike,
    entries: Sequence[dict[str, Any]],
    key: str = "training",
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
    lists: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> Path:
    """Write a decathlon-format datalist (readable by ``monai.data.load_decathlon_datalist``).

    Paths inside the datalist's folder are stored relative to it, so the folder can be moved.

    Args:
        path: the JSON file.
        entries: datalist entries (``image``: path or list of paths, ``label``: path, other keys kept).
        key: the list's key (``"training"``, ``"validation"``, ``"test"``).
        overwrite: replace an existing file.
        extra: other top-level fields (``"description"``, ``"labels"``, ...).
        lists: other lists of entries by key (e.g. ``{"validation": [...]}``), written as ``entries`` are.
    """
    dest = Path(path)
    check_outputs_free([dest], overwrite)
    base = os.path.abspath(dest.parent)

    def rel(p: Any) -> Any:
        if isinstance(p, (list, tuple)):
            return [rel(x) for x in p]
        q = os.path.abspath(str(p))  # no symlink resolution: keep the user's paths
        return os.path.relpath(q, base) if os.path.commonpath([q, base]) == base else q

    def relative(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: (rel(v) if k in ("image", "label") else v) for k, v in e.items()} for e in items]

    payload = dict(extra or {})
    payload[key] = relative(entries)
    for other, items in (lists or {}).items():
        payload[other] = relative(items)
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return dest
