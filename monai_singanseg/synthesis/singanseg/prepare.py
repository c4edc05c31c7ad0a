"""SinGAN-Seg's prepare step: a MONAI ``Compose`` (:func:`singanseg_prepare`) loads a case, picks one tumour slice (or,
for a 3D model, keeps the whole volume), crops it to the brain at the working size, maps intensities to [-1, 1] and
builds the GAN tensor; :func:`singanseg_training_input` runs it and collects what the model file stores about its
source."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.transforms import Compose, Resized

from monai_singanseg.data import LoadCased
from monai_singanseg.io.names import safe_name
from monai_singanseg.synthesis.inputs import default_channel_names, is_2d_image_input
from monai_singanseg.synthesis.runner import run_pipeline
from monai_singanseg.transforms.gan import ToGANTensord
from monai_singanseg.transforms.intensity import INTENSITY_STATS_KEY, IntensityToTanhRanged
from monai_singanseg.transforms.labels import BINARY_LABEL_VALUES, BRATS_LABEL_VALUES
from monai_singanseg.transforms.slices import (
    ExtractTumourSlicesd,
    IsotropicForegroundCropd,
    SquareForegroundCropd,
    axial_axis,
)

__all__ = [
    "singanseg_prepare",
    "singanseg_training_input",
    "SinGANSegTrainingSet",
    "SLICE_MAX_SIZE",
    "VOLUME_MAX_SIZE",
    "VOLUME_BOXES",
    "TUMOUR_BOX_MARGIN",
    "default_max_size",
    "default_box",
]

#: default long side of the finest scale of a slice model, and of a 3D (whole-brain) model, whose size was chosen
#: by measurement so that it trains in about half an hour on 2 CPU cores (``benchmarks/singanseg_3d.py``).
SLICE_MAX_SIZE = 128
VOLUME_MAX_SIZE = 48
#: what a 3D model's working box holds: the whole brain, or the tumour with :data:`TUMOUR_BOX_MARGIN` around it.
VOLUME_BOXES = ("brain", "tumour")
#: voxels of the source grid (2 cm in BraTS' 1 mm grid) kept around the tumour in a ``"tumour"`` box.
TUMOUR_BOX_MARGIN = 20


def default_box(volume: bool) -> str:
    """The default working box: the ``"tumour"`` box for 3D models (it reconstructs the tumour core in place, which
    the whole-brain box does not: ``docs/singanseg.md``), the brain crop for slice models."""
    return "tumour" if volume else "brain"


def default_max_size(volume: bool) -> int:
    """The default long side of the finest scale: :data:`VOLUME_MAX_SIZE` for 3D models, else :data:`SLICE_MAX_SIZE`."""
    return VOLUME_MAX_SIZE if volume else SLICE_MAX_SIZE


def singanseg_prepare(
    label_values: Sequence[int],
    max_size: int | None = None,
    slice_index: int | None = None,
    rgb: bool = False,
    label_map: Mapping[int, int] | None = None,
    volume: bool = False,
    box: str | None = None,
) -> Compose:
    """The SinGAN-Seg prepare ``Compose``: case dict of paths -> list of one prepared dict holding ``"gan"``.

    Volumes: load, the slice with most tumour (or ``slice_index``) along the axial axis, brain crop resized to
    a ``max_size`` square (the affine follows), per-channel [-1, 1] inside the brain, GAN tensor. With
    ``volume=True`` (3D models) the whole brain instead, resampled to isotropic voxels with ``max_size`` on its
    long side (:class:`~monai_singanseg.transforms.slices.IsotropicForegroundCropd`). A 2D picture + mask: load,
    resize so the long side is ``max_size`` (aspect kept), [-1, 1] over the whole picture, GAN tensor.

    Args:
        label_values: label values, background first.
        max_size: long side of the finest scale (None: :func:`default_max_size`).
        slice_index: axial slice index (None: the slice with most tumour); volumes only.
        rgb: the case is a 2D picture with a mask.
        label_map: label values replaced on load (e.g. ``{3: 1}``: BRATS-2013 labels in the BraTS convention).
        volume: train on the whole volume (3D), not on one slice.
        box: 3D models: the working box (None: :func:`default_box`, the tumour's) is the whole ``"brain"`` (non-zero
            image voxels) or the ``"tumour"`` with
            :data:`TUMOUR_BOX_MARGIN` voxels around it (a finer voxel size on the tumour, less anatomy around it).
    """
    num_classes = len(label_values)
    max_size = default_max_size(volume) if max_size is None else max_size
    box = default_box(volume) if box is None else box
    if box not in VOLUME_BOXES:
        raise ValueError(f"box must be one of {VOLUME_BOXES}, got {box!r}")
    if volume:
        tumour = box == "tumour"
        select: list[Any] = [
            IsotropicForegroundCropd(
                source_key="label" if tumour else "image", max_size=max_size, margin=TUMOUR_BOX_MARGIN if tumour else 2
            )
        ]
    elif rgb:
        select = [Resized(("image", "label"), spatial_size=max_size, size_mode="longest", mode=("area", "nearest"))]
    else:
        select = [
            ExtractTumourSlicesd(num_slices=1, slice_indices=None if slice_index is None else [int(slice_index)]),
            SquareForegroundCropd(spatial_size=max_size),
        ]
    return Compose(
        [
            LoadCased(("image", "label"), label_values=label_values, spatial_ndim=2 if rgb else 3, label_map=label_map),
            *select,
            IntensityToTanhRanged("image", use_foreground=not rgb),
            ToGANTensord("image", "label", "gan", num_classes=num_classes),
        ]
    )


def _checked_request(
    first: str, rgb: bool, volume: bool, box: str, slice_index: int | str | None, max_size: int
) -> int | None:
    """The axial slice asked for (None: the one with most tumour), after checking the request fits the input.

    Raises:
        ValueError: naming the option that does not fit (``--volume``, ``--box``, ``--slice``, ``max_size``).
    """
    if max_size < 8:
        raise ValueError(f"max_size must be >= 8 pixels, got {max_size}")
    if volume and rgb:
        raise ValueError(f"{first}: a 3D model (--volume) needs a volume (NIfTI or DICOM series), not a 2D picture")
    if box != "brain" and not volume:
        raise ValueError(f"--box {box}: the working box is a 3D model's (--volume); a slice model crops to the brain")
    if slice_index in (None, "auto"):
        return None
    if volume:
        raise ValueError(f"--slice {slice_index}: a 3D model (--volume) learns the whole volume; leave --slice at auto")
    if rgb:
        raise ValueError(f"--slice {slice_index}: a 2D picture has no slices; leave it at auto")
    return int(slice_index)


def _grid_fields(label: Any) -> dict[str, Any]:
    """A 3D model's source grid: the shape and affine of the volume it learnt from (``generate --paste``)."""
    return {
        "source_grid_shape": [int(s) for s in label.shape[1:]],
        "source_grid_affine": torch.as_tensor(label.affine, dtype=torch.float64).tolist(),
    }


def _source_fields(
    d: Mapping[str, Any],
    paths: list[str],
    label: str,
    label_values: Sequence[int],
    channel_names: Sequence[str] | None,
    rgb: bool,
    volume: bool,
) -> dict[str, Any]:
    """The model config's source fields of a prepared case ``d`` (channels, labels, intensities, geometry)."""
    img = d["image"]
    n_img = int(img.shape[0])
    if channel_names is None:
        channel_names = default_channel_names(n_img, len(paths), rgb)
    if len(channel_names) != n_img:
        raise ValueError(f"{len(channel_names)} channel names given for an image with {n_img} channels")
    affine = img.affine if hasattr(img, "affine") else torch.eye(4)
    return {
        "input_kind": "rgb" if rgb else "volume",
        "image_channels": list(channel_names),
        "num_image_channels": n_img,
        "label_values": list(label_values),
        "num_label_channels": len(label_values) - 1,
        "intensity_stats": dict(img.meta[INTENSITY_STATS_KEY]),
        "use_foreground": not rgb,
        "source_name": safe_name(d["name"]),
        "source_files": paths + [label],
        "source_slice_index": None if rgb or volume else int(d["slice_index"]),
        "source_affine": torch.as_tensor(affine, dtype=torch.float64).tolist(),
        "source_size": [int(s) for s in img.shape[1:]],
    }


def singanseg_training_input(
    image: str | os.PathLike | Sequence[str | os.PathLike],
    label: str | os.PathLike,
    slice_index: int | str | None = "auto",
    max_size: int | None = None,
    label_values: Sequence[int] | None = None,
    channel_names: Sequence[str] | None = None,
    label_map: Mapping[int, int] | None = None,
    name: str | None = None,
    volume: bool = False,
    box: str | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run :func:`singanseg_prepare` on one case: the GAN tensor and the model file's source fields.

    Args:
        image: image path(s): one file, the BraTS modality files in flair, t1, t1ce, t2 order, or a 2D picture.
        label: label path.
        slice_index: ``"auto"``/None or an axial slice index (volumes only).
        max_size: long side of the finest scale (None: :func:`default_max_size`).
        label_values: label values (default BraTS ``(0, 1, 2, 4)`` for volumes, ``(0, 1)`` for 2D pictures).
        channel_names: names of the image channels (default: BraTS modalities for 4 files, RGB, or ``ch<i>``).
        label_map: label values replaced on load (e.g. ``{3: 1}``).
        name: the case's name (default: from its file names).
        volume: the whole volume (a 3D model's input), not one slice.
        box: 3D models: the working box, ``"brain"`` or ``"tumour"`` (None: :func:`default_box`; see
            :func:`singanseg_prepare`).

    Returns:
        ``(gan_tensor (C, *spatial), metadata)``; metadata holds the source fields of
        :class:`~monai_singanseg.io.SinGANSegModelConfig`.

    Raises:
        ValueError: no tumour on the chosen slice (or in the volume), bad sizes, NaN, unknown label values, a 2D
            picture or a slice index with ``volume`` (naming the file).
    """
    paths = [str(p) for p in image] if isinstance(image, (list, tuple)) else [str(image)]
    rgb = is_2d_image_input(paths)
    if label_values is None:
        label_values = BINARY_LABEL_VALUES if rgb else BRATS_LABEL_VALUES
    label_values = tuple(int(v) for v in label_values)
    max_size = default_max_size(volume) if max_size is None else max_size
    box = default_box(volume) if box is None else box
    index = _checked_request(paths[0], rgb, volume, box, slice_index, max_size)
    item = {"image": paths if len(paths) > 1 else paths[0], "label": str(label), **({"name": name} if name else {})}
    prepare = singanseg_prepare(label_values, max_size, index, rgb, label_map, volume, box)
    d = run_pipeline(prepare, item, end=1)
    if "label" not in d:
        raise ValueError(f"{label}: no label loaded")
    if volume and min(d["label"].shape[1:]) < 2:
        raise ValueError(
            f"{label}: a 3D model (--volume) needs a volume, got spatial shape {tuple(d['label'].shape[1:])}"
        )
    source_grid = _grid_fields(d["label"]) if volume else {}
    if index is not None:
        axis = axial_axis(d["image"].affine)
        count = int(d["image"].shape[1 + axis])
        if not 0 <= index < count:
            raise ValueError(f"--slice {index} is outside the volume: its axial slices are 0..{count - 1} ({paths[0]})")
    if not rgb and not volume:
        d = run_pipeline(prepare, d, start=1, end=2)[0]  # the chosen slice
    if not bool((d["label"] > 0).any()):
        where = (
            "the mask has no foreground (no polyp/tumour) to learn"
            if rgb
            else "the volume has no tumour"
            if volume
            else (f"slice {slice_index} has no tumour; pick another --slice or use --slice auto")
        )
        raise ValueError(f"{label}: {where}")
    d = run_pipeline(prepare, d, start=2 if not rgb and not volume else 1)
    d = d[0] if isinstance(d, list) else d
    metadata = {**_source_fields(d, paths, str(label), label_values, channel_names, rgb, volume), **source_grid}
    return d["gan"], metadata


class SinGANSegTrainingSet(torch.utils.data.Dataset):
    """A datalist's SinGAN-Seg training inputs, one ``(gan_tensor, metadata)`` per case (bundles' ``train#dataset``).

    Each entry goes through :func:`singanseg_training_input` (one tumour slice, or the 2D picture, at the working
    size); SinGAN-Seg trains one model per item.

    Args:
        data: datalist entries ``{"image": path or [one path per sequence], "label": path}`` (kept as ``self.data``).
        slice_index: ``"auto"`` or an axial slice index, for every case.
        max_size: long side of the finest scale (None: :func:`default_max_size`).
        label_values: label values of the cases (default: BraTS for volumes, binary for 2D pictures).
        label_map: label values replaced on load (e.g. ``{3: 1}``).
        volume: whole volumes (3D models), not one slice.
        box: 3D models: the working box, ``"brain"`` or ``"tumour"`` (None: :func:`default_box`; see
            :func:`singanseg_prepare`).

    Raises:
        ValueError: an empty datalist, an entry without ``image`` or ``label``, or a case
            :func:`singanseg_training_input` refuses (naming its file).
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        slice_index: int | str | None = "auto",
        max_size: int | None = None,
        label_values: Sequence[int] | None = None,
        label_map: Mapping[int, int] | None = None,
        volume: bool = False,
        box: str | None = None,
    ) -> None:
        self.data = list(data)
        if not self.data:
            raise ValueError("the SinGAN-Seg training datalist is empty")
        for i, entry in enumerate(self.data):
            if not isinstance(entry, Mapping) or "image" not in entry or "label" not in entry:
                raise ValueError(f"datalist entry {i} needs 'image' and 'label' keys, got {entry!r}")
        self.items = [
            singanseg_training_input(
                e["image"],
                e["label"],
                slice_index,
                max_size,
                label_values,
                label_map=label_map,
                name=e.get("name"),
                volume=volume,
                box=box,
            )
            for e in self.data
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.items[index]
