"""Dictionary slice and volume transforms: tumour-slice extraction, the square crop around the brain of a slice and
the isotropic crop around the brain of a volume."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import CropForegroundd, InvertibleTransform, MapTransform, Resized, SpatialPadd, SpatialResample
from monai.utils import TransformBackends

from monai_singanseg.transforms.slices.array import ExtractSlice, TumourSliceError, axial_axis, rank_tumour_slices

__all__ = ["ExtractTumourSlicesd", "SquareForegroundCropd", "IsotropicForegroundCropd", "ResampleToGridd"]


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    """The foreground of ``CropForegroundd``: non-zero voxels."""
    return x != 0


def _foreground_crop(keys: KeysCollection, source_key: str, margin: int) -> CropForegroundd:
    """MONAI's ``CropForegroundd`` to the non-zero box of ``source_key`` plus ``margin`` (never past the volume)."""
    return CropForegroundd(
        keys, source_key=source_key, select_fn=_nonzero, margin=margin, allow_smaller=True, allow_missing_keys=True
    )


class ExtractTumourSlicesd(MapTransform):
    """Volume case -> list of 2D slice cases, the slices with most tumour first.

    Each output dict is a copy of the input with ``keys`` replaced by 2D ``(C, H, W)`` MetaTensors whose
    affine is the slice's position in the volume, plus ``"slice_index"``.

    Args:
        keys: volume keys to slice (image and label).
        label_key: the class-index label used to rank slices.
        num_slices: keep at most this many (None: all with ``min_area``).
        min_area: minimum tumour voxels for a slice to count.
        slice_indices: take exactly these slices instead of ranking (any tumour content).
        axis: spatial axis to slice along; None: the axial axis of the label's affine.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        TumourSliceError: naming the label file, if it has no tumour slice.
    """

    backend = ExtractSlice.backend

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        label_key: str = "label",
        num_slices: int | None = None,
        min_area: int = 1,
        slice_indices: Sequence[int] | None = None,
        axis: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.num_slices = num_slices
        self.min_area = min_area
        self.slice_indices = None if slice_indices is None else [int(i) for i in slice_indices]
        self.axis = axis

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        """One dict per selected slice, the slices with most tumour first."""
        d = dict(data)
        label = d[self.label_key]
        axis = (
            self.axis
            if self.axis is not None
            else axial_axis(label.affine if isinstance(label, MetaTensor) else torch.eye(4))
        )
        if self.slice_indices is not None:
            indices = self.slice_indices
        else:
            try:
                indices = rank_tumour_slices(label, axis, self.num_slices, self.min_area)
            except TumourSliceError as exc:
                source = label.meta.get("filename_or_obj", "label") if isinstance(label, MetaTensor) else "label"
                raise TumourSliceError(f"{source}: {exc}") from exc
        extract = ExtractSlice(axis)
        out = []
        for index in indices:
            item = dict(d)
            for key in self.key_iterator(d):
                item[key] = extract(d[key], index)
            item["slice_index"] = int(index)
            out.append(item)
        return out


class SquareForegroundCropd(MapTransform, InvertibleTransform):
    """Crop 2D slices to the foreground's bounding box, resize the longest side to ``spatial_size`` and pad to a square.

    Built from MONAI's ``CropForegroundd``, ``Resized`` (``size_mode="longest"``, aspect kept) and
    ``SpatialPadd``, so the affine is updated at each step (the slice stays in the right place in the
    world) and ``inverse`` maps a generated slice back onto the original slice grid.

    Args:
        keys: keys to crop (images and labels).
        source_key: key whose non-zero voxels define the foreground (the brain of a skull-stripped MR).
        spatial_size: output side length; None only crops to the foreground (no resize, no padding).
        margin: voxels kept around the foreground.
        label_keys: keys resized with nearest-neighbour (class maps); others use antialiased bilinear.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        source_key: str = "image",
        spatial_size: int | None = 128,
        margin: int = 4,
        label_keys: Sequence[str] = ("label",),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.spatial_size = spatial_size
        # "nearest-exact" samples pixel centres; torch's "nearest" shifts a label ~0.6 source pixels per resize
        # (measured on the demo slice) against the bilinear image
        modes = ["nearest-exact" if k in label_keys else "bilinear" for k in self.keys]
        steps: list[Any] = [_foreground_crop(self.keys, source_key, margin)]
        if spatial_size is not None:
            steps.append(
                Resized(
                    self.keys,
                    spatial_size=spatial_size,
                    size_mode="longest",
                    mode=modes,
                    anti_aliasing=[m == "bilinear" for m in modes],
                    allow_missing_keys=True,
                )
            )
            steps.append(SpatialPadd(self.keys, spatial_size=(spatial_size, spatial_size), allow_missing_keys=True))
        self.steps = steps

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Crop, resize and pad every key (MONAI traces each step for :meth:`inverse`)."""
        d = dict(data)
        source = d[self.source_key]
        if source.ndim != 3:
            raise ValueError(f"SquareForegroundCropd works on 2D slices (C, H, W), got shape {tuple(source.shape)}")
        if not bool((source != 0).any()):
            raise ValueError("slice has no foreground (all voxels are zero)")
        for step in self.steps:
            d = step(d)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Undo the padding, resizing and cropping: back onto the original slice grid."""
        d = dict(data)
        for step in reversed(self.steps):
            d = step.inverse(d)
        return d


class IsotropicForegroundCropd(MapTransform, InvertibleTransform):
    """Crop volumes to the foreground's bounding box and resample them to isotropic voxels, ``max_size`` on the long
    side.

    The working grid of a 3D SinGAN-Seg model: the whole brain (the tumour with all the anatomy around it) at one
    voxel size in every direction, so a model sees the same millimetres along each axis whatever the scan's
    spacing (a 240 x 240 x 155 BraTS case at 1 mm, brain about 140 x 170 x 140 mm, becomes 53 x 64 x 53 at
    2.7 mm for ``max_size=64``). Built from MONAI's ``CropForegroundd`` and ``Resized``, so the affine follows
    every step (the volume stays where it was in the world) and :meth:`inverse` maps a volume of the working
    grid back onto the source grid.

    Args:
        keys: keys to crop (images and labels).
        source_key: key whose non-zero voxels define the foreground (the brain of a skull-stripped MR).
        max_size: voxels along the longest physical side of the foreground box.
        margin: voxels kept around the foreground (in the source grid).
        label_keys: keys resampled with nearest neighbour (class maps); others use antialiased trilinear.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: ``max_size`` < 2.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        source_key: str = "image",
        max_size: int = 64,
        margin: int = 2,
        label_keys: Sequence[str] = ("label",),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if int(max_size) < 2:
            raise ValueError(f"max_size must be >= 2 voxels, got {max_size}")
        self.source_key = source_key
        self.max_size = int(max_size)
        self.modes = ["nearest-exact" if k in label_keys else "trilinear" for k in self.keys]
        self.crop = _foreground_crop(self.keys, source_key, margin)
        self.resize: Resized | None = None  # the last call's (its size depends on the case); inverse needs it

    def working_size(self, shape: Sequence[int], affine: Any) -> list[int]:
        """The isotropic grid size of a box of ``shape`` voxels with ``affine``: ``max_size`` on its long side."""
        extent = [
            n * float(s) for n, s in zip(shape, affine_to_spacing(torch.as_tensor(affine, dtype=torch.float64), r=3))
        ]
        voxel = max(extent) / self.max_size
        return [max(1, round(e / voxel)) for e in extent]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Crop and resample every key (MONAI traces each step for :meth:`inverse`).

        Raises:
            ValueError: the source is not a volume ``(C, H, W, D)``, or it has no foreground.
        """
        d = dict(data)
        source = d[self.source_key]
        if source.ndim != 4:
            raise ValueError(f"IsotropicForegroundCropd works on volumes (C, H, W, D), got shape {tuple(source.shape)}")
        if not bool((source != 0).any()):
            raise ValueError("volume has no foreground (all voxels are zero)")
        d = self.crop(d)
        cropped = d[self.source_key]
        affine = cropped.affine if isinstance(cropped, MetaTensor) else torch.eye(4)
        self.resize = Resized(
            self.keys,
            spatial_size=self.working_size(cropped.shape[1:], affine),
            mode=self.modes,
            anti_aliasing=[m == "trilinear" for m in self.modes],
            allow_missing_keys=True,
        )
        return self.resize(d)

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Undo the resampling and the crop of the last call: back onto the source grid (zeros outside the box).

        Raises:
            RuntimeError: the transform has not been called yet.
        """
        if self.resize is None:
            raise RuntimeError("IsotropicForegroundCropd.inverse: nothing to invert, the transform has not run yet")
        return self.crop.inverse(self.resize.inverse(dict(data)))


class ResampleToGridd(MapTransform):
    """Resample MetaTensors onto a given world grid (e.g. a 3D sample back into its whole source volume).

    Each key is resampled by its own affine onto ``affine`` / ``spatial_size`` with MONAI's ``SpatialResample``;
    voxels of the grid outside the input are 0 (the background of a skull-stripped MR and of a label map).

    Args:
        keys: keys to resample (images and labels).
        affine: 4x4 affine of the target grid.
        spatial_size: spatial shape of the target grid.
        label_keys: keys resampled with nearest neighbour (label values); others trilinear.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: ``affine`` is not 4x4.
    """

    backend = SpatialResample.backend

    def __init__(
        self,
        keys: KeysCollection,
        affine: Any,
        spatial_size: Sequence[int],
        label_keys: Sequence[str] = ("label",),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.affine = torch.as_tensor(affine, dtype=torch.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {tuple(self.affine.shape)}")
        self.spatial_size = [int(s) for s in spatial_size]
        self.label_keys = tuple(label_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = key in self.label_keys
            resample = SpatialResample(mode="nearest" if label else "bilinear", padding_mode="zeros")
            dtype = d[key].dtype
            out = resample(d[key], dst_affine=self.affine, spatial_size=self.spatial_size)
            d[key] = out.round().to(dtype) if label or not dtype.is_floating_point else out.to(dtype)
        return d
