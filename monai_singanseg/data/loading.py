"""Loading a case from disk through MONAI readers, with every check a user's data can fail.

A case is a MONAI dict ``{"image": path | [path per modality] | DICOM folder, "label": path}``.
``load_case`` returns channel-first MetaTensors: the image in source units (float32, with the file's
dtype kept in ``meta["source_dtype"]``) and the label as class indices. Every error names the file
and the problem, and is raised before anything is written.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapLabelValue, MapTransform

from monai_singanseg.data.case_cache import active_case_cache
from monai_singanseg.transforms.intensity.array import SOURCE_DTYPE_KEY
from monai_singanseg.transforms.labels.array import (
    BINARY_LABEL_VALUES,
    BRATS_LABEL_VALUES,
    BinarizeMask,
    LabelToIndex,
    LabelValueError,
)
from monai_singanseg.transforms.slices.array import axial_axis

__all__ = ["CaseError", "load_image", "load_case", "LoadCased", "case_name", "MIN_IN_PLANE_SIZE"]

#: the smallest in-plane side (voxels) of an image or volume: the generators learn 2D axial slices, and a
#: slice with a side below this holds too few pixels to train on (a 1 x 1 x 10000 "volume" is one pixel a slice).
MIN_IN_PLANE_SIZE = 8

# MONAI's LoadImage builds every reader, and its optional GPU DICOM decoder reports its absence on each
# load (a log line and a warning); on CPU machines that is noise, not news.
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")

_AFFINE_TOLERANCE = 1e-3


class CaseError(ValueError):
    """A case's files are missing, unreadable or inconsistent; the message names the file."""


def _is_dicom_folder(path: Path) -> bool:
    return path.is_dir()


def _gdcm_names(folder: Path) -> Any:
    import itk

    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(False)
    names.SetDirectory(str(folder))
    return names


def _dicom_series_uids(folder: Path) -> list[str]:
    return list(_gdcm_names(folder).GetSeriesUIDs())


def _looks_like_dicom(path: Path) -> bool:
    """A DICOM Part-10 file: the ``DICM`` magic after the 128-byte preamble (what a truncated file still has)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _slice_positions(files: Sequence[Path]) -> list[float] | None:
    """Each file's position along the slice normal (mm), or None when the files do not all carry the geometry tags."""
    import pydicom

    positions = []
    normal = None
    for f in files:
        try:
            ds = pydicom.dcmread(
                str(f), stop_before_pixels=True, specific_tags=["ImagePositionPatient", "ImageOrientationPatient"]
            )
            ipp = [float(v) for v in ds.ImagePositionPatient]
            iop = [float(v) for v in ds.ImageOrientationPatient]
        except Exception:  # no geometry tags (e.g. an enhanced multi-frame file): nothing to compare
            return None
        if normal is None:
            normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
        positions.append(float(np.dot(normal, np.asarray(ipp))))
    return positions


def _check_dicom_series(folder: Path, uid: str) -> None:
    """Refuse a series that GDCM would read with a slice silently missing.

    GDCM/ITK skip a DICOM file they cannot parse (truncated, corrupt) with only a warning, and the series'
    slice spacing then silently changes. Two checks: every DICOM file of the folder is one of the series'
    files, and the series' slices are evenly spaced along the slice normal (a missing slice leaves a gap).
    """
    series = [Path(f) for f in _gdcm_names(folder).GetFileNames(uid)]
    read = {f.resolve() for f in series}
    dicom_files = sorted(
        f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and _looks_like_dicom(f)
    )
    skipped = [f for f in dicom_files if f.resolve() not in read]
    if skipped:
        more = ""
        if len(skipped) > 1:
            names = ", ".join(f.name for f in skipped[1:4]) + ("..." if len(skipped) > 4 else "")
            more = f" (and {len(skipped) - 1} more: {names})"
        raise CaseError(
            f"{folder}: DICOM file {skipped[0].name}{more} cannot be read as part of the series "
            f"({len(series)} of {len(dicom_files)} DICOM files readable; truncated or corrupt file?). "
            "The series would silently lose that slice: replace the file, or remove it if it does not belong here"
        )
    if len(series) < 3:
        return
    positions = _slice_positions(series)
    if positions is None:
        return
    order = np.argsort(positions)
    pos = np.asarray(positions)[order]
    gaps = np.diff(pos)
    step = float(np.median(gaps))
    tolerance = max(0.01 * abs(step), 1e-3)
    bad = np.nonzero(np.abs(gaps - step) > tolerance)[0]
    if abs(step) <= 1e-6 or len(bad):
        i = int(bad[0]) if len(bad) else 0
        a, b = series[int(order[i])].name, series[int(order[i + 1])].name
        raise CaseError(
            f"{folder}: DICOM slices are not evenly spaced: {a} and {b} are {gaps[i]:.4g} mm apart, the other slices "
            f"{step:.4g} mm (a slice file is missing, or the folder mixes acquisitions); give one complete series per "
            "folder"
        )


def _check_in_plane_size(path: Path, img: MetaTensor, what: str) -> None:
    """Refuse images whose (axial) in-plane side is below :data:`MIN_IN_PLANE_SIZE`."""
    spatial = tuple(int(s) for s in img.shape[1:])
    if len(spatial) == 3:
        axis = axial_axis(img.affine)
        in_plane = tuple(s for a, s in enumerate(spatial) if a != axis)
    else:
        in_plane = spatial
    if in_plane and min(in_plane) < MIN_IN_PLANE_SIZE:
        plane = " x ".join(map(str, in_plane))
        raise CaseError(
            f"{path}: {what} of shape {spatial} is too small: its in-plane (axial slice) size is {plane} voxels, "
            f"at least {MIN_IN_PLANE_SIZE} x {MIN_IN_PLANE_SIZE} is needed"
        )


def _source_dtype(path: Path, arr: MetaTensor) -> str:
    """The dtype stored on disk (MONAI's loaders convert to float)."""
    if path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img = nib.load(str(path))
        slope, inter = img.header.get_slope_inter()
        if slope not in (None, 1.0) or inter not in (None, 0.0):
            return "float32"
        return str(img.get_data_dtype())
    if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"):
        return "uint8"
    values = arr.as_tensor()
    if torch.equal(values, torch.round(values)) and values.min() >= -32768 and values.max() <= 32767:
        return "int16"
    return "float32"


def load_image(path: str | os.PathLike, spatial_ndim: int | None = 3, what: str = "image") -> MetaTensor:
    """Load one image file or DICOM series folder as a channel-first float32 MetaTensor.

    Args:
        path: NIfTI/NRRD/... file, 2D image (PNG/JPEG), or a folder holding ONE DICOM series.
        spatial_ndim: the number of spatial dimensions expected (3 for volumes, 2 for 2D images);
            None accepts either.
        what: how to name the file in errors (``"image"``, ``"label"``).

    Raises:
        CaseError: missing, unreadable or truncated file; a DICOM folder with zero or several series;
            a 2D file where a volume is expected or vice versa; NaN or infinite values.
    """
    p = Path(path)
    if not p.exists():
        raise CaseError(f"{p}: {what} file not found")
    reader = None
    if _is_dicom_folder(p):
        uids = _dicom_series_uids(p)
        if not uids:
            raise CaseError(f"{p}: folder holds no DICOM series")
        if len(uids) > 1:
            raise CaseError(
                f"{p}: folder holds {len(uids)} DICOM series ({', '.join(uids[:3])}...); give one series per folder"
            )
        _check_dicom_series(p, uids[0])
        reader = "ITKReader"  # GDCM sorts the files by geometry (image position along the slice normal)
    try:
        img = LoadImage(image_only=True, ensure_channel_first=True, reader=reader, dtype=np.float32)(str(p))
    except Exception as exc:  # MONAI wraps reader errors in several types; all mean "cannot read"
        raise CaseError(f"{p}: cannot read {what} (unreadable, truncated or unsupported file): {exc}") from exc
    if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") and img.ndim == 3:
        ndim = 2
    else:
        # a trailing singleton spatial dim (one-slice volume) still counts as a volume
        ndim = img.ndim - 1
    if spatial_ndim is not None and ndim != spatial_ndim:
        kind = {2: "a 2D image", 3: "a 3D volume"}
        raise CaseError(
            f"{p}: {what} is {kind.get(ndim, f'{ndim}D')} but {kind.get(spatial_ndim, spatial_ndim)} is expected"
        )
    _check_in_plane_size(p, img, what)
    if not torch.isfinite(img.as_tensor()).all():
        raise CaseError(f"{p}: {what} holds NaN or infinite values")
    if what == "image" and not bool(img.as_tensor().any()):
        raise CaseError(f"{p}: the image is all zero (nothing to learn from or render with; a damaged or empty file?)")
    img.meta[SOURCE_DTYPE_KEY] = _source_dtype(p, img)
    return img


def _check_same_grid(ref: MetaTensor, ref_path: Any, other: MetaTensor, other_path: Any) -> None:
    if tuple(ref.shape[1:]) != tuple(other.shape[1:]):
        raise CaseError(f"{other_path}: shape {tuple(other.shape[1:])} differs from {ref_path} {tuple(ref.shape[1:])}")
    if not torch.allclose(ref.affine, other.affine, atol=_AFFINE_TOLERANCE):
        raise CaseError(
            f"{other_path}: affine differs from {ref_path}; the files are not co-registered "
            f"(max difference {float((ref.affine - other.affine).abs().max()):.4g})"
        )


#: label file names that say nothing about their case (BRATS-2013's ``OTMultiClass``, ``seg``, ...): such a case is
#: named by its folder.
GENERIC_LABEL_NAMES = frozenset({"seg", "label", "labels", "mask", "otmulticlass", "segmentation"})


def case_name(item: Mapping[str, Any]) -> str:
    """A case's name: ``item["name"]``, else derived from its label (or first image) file: the file name without
    its extension and modality tag, or the folder's name when the file name is a generic one (``OTMultiClass``,
    ``seg``, ...)."""
    if item.get("name"):
        return str(item["name"])
    first = item.get("label") or item.get("image")
    if isinstance(first, (list, tuple)):
        first = first[0]
    path = Path(str(first))
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.lower() in GENERIC_LABEL_NAMES and path.parent.name:
        return path.parent.name
    for tag in ("_seg", "-seg", "_flair", "_t2f", "-t2f"):
        if name.endswith(tag):
            return name[: -len(tag)]
    return name


def load_case(
    item: Mapping[str, Any],
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    spatial_ndim: int = 3,
    label_map: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """Load and validate a case (inside :func:`~monai_singanseg.data.case_cache.cached_cases`, read once and copied).

    Args:
        item: ``{"image": path | [paths] | DICOM folder, "label": path (optional)}``.
        label_values: the values the label may hold (BraTS ``(0, 1, 2, 4)``; ``(0, 1)`` for binary masks), after
            ``label_map``.
        spatial_ndim: 3 for volumes, 2 for 2D images (a 2D label is binarised at 127 when
            ``label_values == (0, 1)`` and it holds other values, as JPEG masks do).
        label_map: label values to replace on load, e.g. ``{3: 1}`` for BRATS-2013 labels in the BraTS convention
            (MONAI's ``MapLabelValue``).

    Returns:
        ``{"image": MetaTensor (C, *spatial), "label": MetaTensor (1, *spatial) class indices or absent,
        "label_values": tuple, "name": str}``.
    """
    cache = active_case_cache()
    if cache is None or "image" not in item:
        return _read_case(item, label_values, spatial_ndim, label_map)
    key = cache.key(item, label_values, spatial_ndim, label_map)
    case = cache.get(key)
    if case is None:
        case = _read_case(item, label_values, spatial_ndim, label_map)
        cache.put(key, case)
    return case


def _read_case(
    item: Mapping[str, Any], label_values: Sequence[int], spatial_ndim: int, label_map: Mapping[int, int] | None
) -> dict[str, Any]:
    """:func:`load_case` from the files."""
    if "image" not in item:
        raise CaseError(f"case {dict(item)} has no 'image' entry")
    paths = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    images = [load_image(p, spatial_ndim, "image") for p in paths]
    if len(paths) > 1:
        for p, img in zip(paths, images):
            if img.shape[0] > 1:  # a 4D (multi-channel) file would silently become extra channels of the case
                spatial = tuple(int(s) for s in img.shape[1:])
                raise CaseError(
                    f"{p}: a {len(spatial) + 1}D file of shape {spatial + (int(img.shape[0]),)} ({int(img.shape[0])} "
                    "channels) "
                    f"is given as one of the case's {len(paths)} modality files; each modality file must hold one "
                    f"{'2D image' if len(spatial) == 2 else '3D volume'} (a 4D multi-modal file must be the case's "
                    "only image)"
                )
    for p, img in zip(paths[1:], images[1:]):
        _check_same_grid(images[0], paths[0], img, p)
    image = (
        images[0]
        if len(images) == 1
        else MetaTensor(torch.cat([i.as_tensor() for i in images]), meta=dict(images[0].meta))
    )
    if len(images) > 1:
        dtypes = {i.meta[SOURCE_DTYPE_KEY] for i in images}
        image.meta[SOURCE_DTYPE_KEY] = dtypes.pop() if len(dtypes) == 1 else "float32"
        image.meta["filename_or_obj"] = [str(p) for p in paths]
    out: dict[str, Any] = {"image": image, "label_values": tuple(int(v) for v in label_values), "name": case_name(item)}
    if item.get("label"):
        label = load_image(item["label"], spatial_ndim, "label")
        _check_same_grid(images[0], paths[0], label, item["label"])
        if label.shape[0] > 1:  # RGB mask image
            label = BinarizeMask(127)(label)
        elif spatial_ndim == 2 and tuple(label_values) == BINARY_LABEL_VALUES and label.max() > 1:
            label = BinarizeMask(127)(label)  # a 0/255 mask picture; a volume's values are checked, never thresholded
        if label_map:
            label = MapLabelValue(list(label_map), list(label_map.values()), dtype=label.dtype)(label)
        try:
            out["label"] = LabelToIndex(label_values)(label)
        except LabelValueError as exc:
            raise CaseError(f"{item['label']}: {exc}") from exc
    return out


class LoadCased(MapTransform):
    """Dictionary transform form of :func:`load_case` for MONAI pipelines.

    Args:
        keys: the image and label keys (``("image", "label")``).
        label_values: values the label may hold.
        spatial_ndim: 3 for volumes, 2 for 2D images.
        allow_missing_keys: a case without label is allowed.
        label_map: label values replaced on load (see :func:`load_case`).
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        label_values: Sequence[int] = BRATS_LABEL_VALUES,
        spatial_ndim: int = 3,
        allow_missing_keys: bool = True,
        label_map: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) not in (1, 2):
            raise ValueError("keys must be (image_key,) or (image_key, label_key)")
        self.label_values = tuple(label_values)
        self.spatial_ndim = spatial_ndim
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image_key = self.keys[0]
        label_key = self.keys[1] if len(self.keys) > 1 else None
        item = {"image": d[image_key], "label": d.get(label_key) if label_key else None, "name": d.get("name")}
        case = load_case(item, self.label_values, self.spatial_ndim, self.label_map)
        d[image_key] = case["image"]
        if label_key and "label" in case:
            d[label_key] = case["label"]
        d["label_values"] = case["label_values"]
        d["name"] = case["name"]
        return d
