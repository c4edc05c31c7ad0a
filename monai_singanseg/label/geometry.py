"""Putting a generated tumour slice back into the geometry of the volume it was learnt from.

SinGAN-Seg learns one axial slice of a volume after :class:`~monai_singanseg.transforms.slices.ExtractTumourSlicesd`
and :class:`~monai_singanseg.transforms.slices.SquareForegroundCropd` (brain crop, resize, pad to a square). A sample
has the shape of that square. :func:`slice_sample_to_volume` replays the two transforms on the source case to recover
their exact trace, gives the sample that trace, inverts the crop/resize/pad with MONAI's own inverses and places the
slice at its index in a volume with the source's shape and affine; every other voxel is background.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from monai.data import MetaTensor

from monai_singanseg.transforms.slices import ExtractTumourSlicesd, SlicesToVolume, SquareForegroundCropd

__all__ = ["training_slice", "slice_sample_to_volume"]


def training_slice(
    case: Mapping[str, Any], slice_index: int, max_size: int
) -> tuple[dict[str, Any], SquareForegroundCropd]:
    """Slice ``slice_index`` of a loaded case, cropped and resized exactly as SinGAN-Seg training prepares it.

    Args:
        case: a :func:`~monai_singanseg.data.load_case` result (``image`` and ``label`` volumes).
        slice_index: the axial slice index (the model's ``source_slice_index``).
        max_size: side of the square training slice (the model's finest scale).

    Returns:
        The cropped slice dict (its MetaTensors carry the transform trace) and the crop transform that inverts it.
    """
    item = ExtractTumourSlicesd(num_slices=1, slice_indices=[int(slice_index)])(case)[0]
    crop = SquareForegroundCropd(spatial_size=int(max_size))
    return crop(item), crop


def _with_trace(reference: MetaTensor, data: torch.Tensor) -> MetaTensor:
    """``data`` as a MetaTensor with the metadata and transform trace of ``reference`` (same shape)."""
    return MetaTensor(
        torch.as_tensor(data),
        meta=copy.deepcopy(dict(reference.meta)),
        applied_operations=copy.deepcopy(reference.applied_operations),
    )


def slice_sample_to_volume(
    image: torch.Tensor,
    label: torch.Tensor,
    case: Mapping[str, Any],
    slice_index: int,
    source_affine: Any | None = None,
) -> tuple[MetaTensor, MetaTensor]:
    """Map one generated slice (image ``(C, S, S)``, label ``(1, S, S)``) into the source volume's grid.

    Args:
        image: image channels of the sample in any units (source units are typical); background is 0.
        label: the sample's label (class indices or label values; resized with nearest neighbour).
        case: the loaded source case the model was trained on (``image`` ``(C, X, Y, Z)`` with its affine).
        slice_index: the axial slice the model was trained on.
        source_affine: the model's stored 4x4 affine of the training slice; if given, it must match the slice
            recomputed from ``case`` (otherwise the model was not trained on this image).

    Returns:
        ``(image (C, X, Y, Z), label (1, X, Y, Z))`` with the source's shape and affine; voxels off the slice are 0.

    Raises:
        ValueError: the sample's shape or the model's affine does not match the training slice of ``case``.
    """
    size = int(image.shape[-1])
    if tuple(image.shape[1:]) != (size, size) or tuple(label.shape[1:]) != (size, size):
        raise ValueError(f"expected a square sample, got image {tuple(image.shape)} and label {tuple(label.shape)}")
    reference, crop = training_slice(case, slice_index, size)
    if int(image.shape[0]) != int(reference["image"].shape[0]):
        raise ValueError(f"sample has {image.shape[0]} image channels, the source image {reference['image'].shape[0]}")
    if source_affine is not None:
        stored = torch.as_tensor(source_affine, dtype=torch.float64)
        if not torch.allclose(stored, reference["image"].affine.double(), atol=1e-3):
            raise ValueError(
                "the model's training-slice geometry does not match this image (trained on another image?)"
            )
    restored = crop.inverse(
        {"image": _with_trace(reference["image"], image), "label": _with_trace(reference["label"], label)}
    )
    volume = case["image"]
    to_volume = SlicesToVolume(volume.shape[1:], volume.affine, background=0.0, dtype=torch.float32)
    return to_volume([restored["image"]]), to_volume([restored["label"]])
