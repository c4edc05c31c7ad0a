"""Slice transforms: volumes -> 2D axial slices that keep their place in the world, and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor

__all__ = [
    "spread_order",
    "TumourSliceError",
    "axial_axis",
    "slice_affine",
    "tumour_area_per_slice",
    "rank_tumour_slices",
    "ExtractSlice",
    "SlicesToVolume",
]


class TumourSliceError(ValueError):
    """Raised when tumour slices are requested from a label without (enough) tumour."""


def axial_axis(affine: NdarrayOrTensor) -> int:
    """The spatial axis (0, 1 or 2) whose direction is closest to the world's inferior-superior axis."""
    aff = convert_to_tensor(affine, track_meta=False).double()
    directions = aff[:3, :3] / aff[:3, :3].norm(dim=0, keepdim=True).clamp_min(1e-12)
    return int(directions[2].abs().argmax())


def slice_affine(affine: NdarrayOrTensor, axis: int, index: int) -> torch.Tensor:
    """The 4x4 affine of slice ``index`` along ``axis`` of a volume with ``affine``.

    The 2D slice's columns 0 and 1 are the volume's two remaining axes (in order), column 2 is the
    slice normal and the origin moves to the slice, so that voxel ``(i, j)`` of the slice (or ``(i, j, 0)``
    of a one-slice volume) lands on the same world point as in the volume.
    """
    aff = convert_to_tensor(affine, track_meta=False).double().clone()
    in_plane = [a for a in range(3) if a != axis]
    out = torch.eye(4, dtype=torch.float64)
    out[:3, 0] = aff[:3, in_plane[0]]
    out[:3, 1] = aff[:3, in_plane[1]]
    out[:3, 2] = aff[:3, axis]
    out[:3, 3] = aff[:3, 3] + aff[:3, axis] * index
    return out


def tumour_area_per_slice(label: NdarrayOrTensor, axis: int) -> torch.Tensor:
    """Number of non-background voxels in each slice along spatial ``axis`` of a ``(1, *spatial)`` label."""
    t = convert_to_tensor(label, track_meta=False)
    fg = (t[0] > 0).to(torch.int64)
    dims = [d for d in range(3) if d != axis]
    return fg.sum(dim=dims)


def rank_tumour_slices(
    label: NdarrayOrTensor, axis: int, num_slices: int | None = None, min_area: int = 1
) -> list[int]:
    """Slice indices ordered by tumour area (largest first), keeping those with ``area >= min_area``.

    Raises:
        TumourSliceError: no slice has ``min_area`` tumour voxels.
    """
    area = tumour_area_per_slice(label, axis)
    order = sorted(range(len(area)), key=lambda k: (-int(area[k]), k))
    chosen = [k for k in order if int(area[k]) >= max(1, min_area)]
    if not chosen and (not len(area) or int(area.max()) == 0):
        raise TumourSliceError(
            "the label holds no tumour: every voxel is background (0); a case needs a tumour to learn from (check "
            "the label file, and --label-values / --label-map if its tumour has other values)"
        )
    if not chosen:
        raise TumourSliceError(
            f"label has no slice with at least {max(1, min_area)} tumour voxels (largest: {int(area.max())})"
        )
    return chosen[:num_slices] if num_slices else chosen


class ExtractSlice(Transform):
    """Take slice ``index`` along spatial ``axis`` of a ``(C, *spatial)`` volume as a ``(C, H, W)`` MetaTensor.

    The result's affine places the slice where it was in the volume (:func:`slice_affine`); its metadata
    records ``slice_index``, ``slice_axis``, ``volume_shape`` and ``volume_affine`` so it can be put back.
    A torch tensor (any device) gives a MetaTensor on the same device (an identity volume affine if the
    input had none); a numpy volume gives a numpy slice (without metadata, like every numpy output).

    Args:
        axis: spatial axis to slice along; None means the axial axis of the image's affine.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def __call__(self, img: NdarrayOrTensor, index: int) -> NdarrayOrTensor:
        """Args:
        img: channel-first volume ``(C, X, Y, Z)``.
        index: the slice index along the axis.

        Raises:
            ValueError: not a channel-first volume.
            IndexError: ``index`` outside the volume.
        """
        if isinstance(img, np.ndarray):
            return convert_to_numpy(self(convert_to_tensor(img, track_meta=False), index))
        vol = img if isinstance(img, MetaTensor) else MetaTensor(convert_to_tensor(img))
        if vol.ndim != 4:
            raise ValueError(f"expected a channel-first volume (C, X, Y, Z), got shape {tuple(vol.shape)}")
        axis = axial_axis(vol.affine) if self.axis is None else self.axis
        size = vol.shape[axis + 1]
        if not 0 <= index < size:
            raise IndexError(f"slice {index} is outside the volume (axis {axis} has {size} slices)")
        data = vol.as_tensor().select(axis + 1, index).clone()
        meta = {k: v for k, v in vol.meta.items() if k not in ("affine", "original_affine", "spatial_shape")}
        out = MetaTensor(data, affine=slice_affine(vol.affine, axis, index), meta=meta)
        out.meta.update(
            {
                "slice_index": int(index),
                "slice_axis": int(axis),
                "volume_shape": [int(s) for s in vol.shape[1:]],
                "volume_affine": vol.affine.tolist(),
                "spatial_shape": np.asarray(data.shape[1:]),
            }
        )
        return out


class SlicesToVolume(Transform):
    """Place 2D slices back into a volume of the given geometry, each at the position its affine says.

    A slice must lie on the volume's grid in-plane (if it was cropped or resized, invert that first,
    e.g. with :meth:`SquareForegroundCropd.inverse`); its slice index is read from its affine, so a
    slice written back lands exactly where it came from.

    Args:
        spatial_shape: the volume's spatial shape.
        affine: the volume's 4x4 affine.
        background: value of voxels no slice covers (per channel or one value).
        dtype: output dtype (default: the slices').

    The volume is a MetaTensor (the slices must be MetaTensors: they carry their affines) on the first
    slice's device.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        spatial_shape: Sequence[int],
        affine: NdarrayOrTensor,
        background: float | Sequence[float] = 0.0,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        self.affine = convert_to_tensor(affine, track_meta=False).double()
        self.background = background
        self.dtype = dtype

    def slice_index(self, slice_aff: NdarrayOrTensor) -> tuple[int, int]:
        """``(axis, index)`` of a slice with affine ``slice_aff`` in this volume; raises if off-grid."""
        aff = convert_to_tensor(slice_aff, track_meta=False).double()
        for axis in range(3):
            index = int(round(float((torch.linalg.inv(self.affine) @ aff[:, 3])[axis])))
            if torch.allclose(slice_affine(self.affine, axis, index), aff, atol=1e-3):
                return axis, index
        raise ValueError("slice is not on the volume's grid (different spacing, orientation or in-plane offset)")

    def __call__(self, slices: Sequence[NdarrayOrTensor], **_: Any) -> MetaTensor:
        """Args:
        slices: 2D ``(C, H, W)`` MetaTensors cut from a volume of this geometry.

        Raises:
            ValueError: no slices, a slice off the volume's grid or of the wrong shape, bad background.
            TypeError: a slice is not a MetaTensor.
        """
        if not slices:
            raise ValueError("no slices given")
        first = convert_to_tensor(slices[0], track_meta=False)
        dtype = self.dtype or first.dtype
        channels = first.shape[0]
        bg = torch.as_tensor(self.background, dtype=torch.float64).reshape(-1)
        if bg.numel() not in (1, channels):
            raise ValueError(f"background has {bg.numel()} values for {channels} channels")
        vol = bg.to(device=first.device, dtype=dtype).view(-1, 1, 1, 1).expand(channels, *self.spatial_shape).clone()
        for s in slices:
            if not isinstance(s, MetaTensor):
                raise TypeError("slices must be MetaTensors carrying their affine")
            axis, index = self.slice_index(s.affine)
            if not 0 <= index < self.spatial_shape[axis]:
                raise ValueError(f"slice index {index} is outside the volume along axis {axis}")
            in_plane = [self.spatial_shape[a] for a in range(3) if a != axis]
            if list(s.shape[1:]) != in_plane:
                raise ValueError(
                    f"slice shape {tuple(s.shape[1:])} does not match the volume's in-plane shape {in_plane}"
                )
            vol.select(axis + 1, index).copy_(s.as_tensor().to(device=vol.device, dtype=dtype))
        return MetaTensor(vol, affine=self.affine.clone())


def spread_order(slice_indices: Sequence[int], areas: Sequence[float], pool_fraction: float = 0.25) -> list[int]:
    """Positions of the small-data slices: the largest tumour slice first, then farthest-point along the axis.

    Args:
        slice_indices: axial index of every slice.
        areas: tumour area of every slice.
        pool_fraction: only slices whose area is at least this fraction of the largest are used.

    Returns:
        Positions into ``slice_indices``; every prefix is spread over the tumour's extent.
    """
    top = max(areas)
    pool = [i for i, a in enumerate(areas) if a >= pool_fraction * top]
    order = [max(pool, key=lambda i: (areas[i], -i))]
    while len(order) < len(pool):
        rest = [i for i in pool if i not in order]
        order.append(max(rest, key=lambda i: (min(abs(slice_indices[i] - slice_indices[j]) for j in order), areas[i])))
    return order
