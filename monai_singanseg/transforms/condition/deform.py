"""Transforms that make new pix2pix conditions from real ones: an elastic + affine deformation of the whole stack
(one displacement field, nearest-neighbour sampling, so every label voxel stays inside the brain), or a tumour moved
from one case into another case's brain.

Both follow MONAI's rules for random transforms: a ``prob`` (default 1.0), all random numbers drawn in
``randomize()``, reproducible with ``set_random_state``; they accept numpy arrays and torch tensors (CPU or CUDA) and
return the input's type.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.networks.layers import GaussianFilter
from monai.transforms import (
    CenterSpatialCrop,
    Rand2DElastic,
    Rand3DElastic,
    RandAffineGrid,
    RandDeformGrid,
    RandomizableTransform,
    Resample,
)
from monai.transforms.utils import create_grid
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor, ensure_tuple
from scipy import ndimage

from monai_singanseg.transforms.condition.array import ConditionError, check_same_grid, draw_do_transform
from monai_singanseg.transforms.containers import like_input

__all__ = ["RandDeformCondition", "TumourTransplant"]


class RandDeformCondition(RandomizableTransform):
    """Random elastic + affine deformation of a whole condition with MONAI's elastic transforms.

    All channels share one displacement field and are sampled nearest-neighbour with zero padding,
    so each output voxel copies one input voxel: tumour and tissue voxels remain inside the brain
    channel (this is also enforced afterwards).

    2D uses :class:`monai.transforms.Rand2DElastic` (random control-point grid + affine). 3D uses, by
    default (``elastic="grid"``), the same construction in 3D from MONAI's ``RandDeformGrid``,
    ``RandAffineGrid`` and ``Resample`` (a full BraTS volume in well under a second), or with
    ``elastic="gaussian"`` :class:`monai.transforms.Rand3DElastic` (Gaussian-smoothed dense field;
    about 25-45 s per 240x240x155 volume on one CPU core, because it smooths the field at full resolution).

    As in MONAI, :meth:`randomize` draws everything (whether to deform, with probability ``prob``, and the
    deformation itself, kept as the sampling grid) and ``__call__(..., randomize=False)`` applies the last
    draw again, so that several conditions can share one deformation (:class:`RandDeformConditiond`). With
    ``prob=1.0`` the random numbers, and so the outputs for a given ``set_random_state``, are exactly those
    of the releases before ``prob`` existed.

    Args:
        spatial_dims: 2 (slices) or 3 (volumes).
        spacing: control-point spacing in voxels (``"grid"`` and 2D).
        magnitude_range: elastic magnitude: control-point offset in voxels for ``"grid"`` and 2D (default
            (2, 5)), MONAI's ``magnitude_range`` of Rand3DElastic for ``"gaussian"`` (default (50, 120)).
        sigma_range: smoothing of the dense field in voxels (``"gaussian"`` only).
        rotate_degrees: maximum rotation about the last spatial axis (the axial axis in BraTS/RAS layouts).
        scale_range: maximum relative scaling (+/-).
        translate_range: maximum translation in voxels (+/-).
        elastic: ``"grid"`` or ``"gaussian"`` (3D only).
        prob: probability of deforming; otherwise the condition is returned unchanged.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        spatial_dims: int = 3,
        spacing: float = 24.0,
        magnitude_range: tuple[float, float] | None = None,
        sigma_range: tuple[float, float] = (6.0, 9.0),
        rotate_degrees: float = 10.0,
        scale_range: float = 0.08,
        translate_range: float = 6.0,
        elastic: str = "grid",
        prob: float = 1.0,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if elastic not in ("grid", "gaussian"):
            raise ValueError(f"elastic must be 'grid' or 'gaussian', got {elastic!r}")
        RandomizableTransform.__init__(self, prob)
        self.spatial_dims = spatial_dims
        self.spacing = (float(spacing),) * spatial_dims
        rot = float(np.deg2rad(rotate_degrees))
        rotate = (rot,) if spatial_dims == 2 else (0.0, 0.0, rot)
        affine = {
            "rotate_range": rotate,
            "scale_range": (scale_range,) * spatial_dims,
            "translate_range": (translate_range,) * spatial_dims,
        }
        # the MONAI parts always deform (prob=1): whether to deform is this transform's own draw
        common = {"prob": 1.0, "mode": "nearest", "padding_mode": "zeros", **affine}
        self.elastic: Rand2DElastic | Rand3DElastic | None = None
        if spatial_dims == 2:
            self.elastic = Rand2DElastic(spacing=spacing, magnitude_range=magnitude_range or (2.0, 5.0), **common)
        elif elastic == "gaussian":
            self.elastic = Rand3DElastic(
                sigma_range=sigma_range, magnitude_range=magnitude_range or (50.0, 120.0), **common
            )
        else:
            self.deform_grid = RandDeformGrid(spacing=self.spacing, magnitude_range=magnitude_range or (2.0, 5.0))
            self.affine_grid = RandAffineGrid(**affine)
            self.resampler = Resample(mode="nearest", padding_mode="zeros")
        self._grid: torch.Tensor | None = None
        self._grid_size: tuple[int, ...] | None = None

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandDeformCondition:
        """Seed this transform (``seed``) and its MONAI parts (``seed``, ``seed + 1``), or share ``state``."""
        super().set_random_state(seed, state)
        parts = [self.elastic] if self.elastic is not None else [self.deform_grid, self.affine_grid]
        for i, part in enumerate(parts):
            part.set_random_state(None if seed is None else seed + i, state)
        return self

    def randomize(self, data: Sequence[int] | None = None, device: torch.device | str | None = None) -> None:
        """Draw whether to deform and, if so, the deformation of a condition of spatial size ``data``.

        The deformation is kept as the sampling grid that :meth:`__call__` applies.

        Args:
            data: the spatial size of the condition(s) to deform.
            device: where to build the grid (the conditions' device; None: the CPU).

        Raises:
            ConditionError: ``data`` is not a spatial size of ``spatial_dims`` dimensions.
        """
        draw_do_transform(self)
        self._grid, self._grid_size = None, None
        if not self._do_transform:
            return
        size = tuple(int(s) for s in ensure_tuple(data if data is not None else ()))
        if len(size) != self.spatial_dims:
            raise ConditionError(f"expected a ({self.spatial_dims}+1)-dimensional condition, got spatial size {size}")
        device = None if device is None else torch.device(device)
        if isinstance(self.elastic, Rand2DElastic):
            grid = self._grid_2d(self.elastic, size, device)
        elif isinstance(self.elastic, Rand3DElastic):
            grid = self._grid_gaussian(self.elastic, size, device)
        else:
            self.deform_grid.device = self.affine_grid.device = device
            grid = self.affine_grid(grid=self.deform_grid(spatial_size=size))
            grid = F.interpolate(
                grid[None],
                scale_factor=list(self.spacing),
                mode="trilinear",
                align_corners=False,
                recompute_scale_factor=True,
            )
            grid = CenterSpatialCrop(roi_size=size)(grid[0])
        self._grid, self._grid_size = convert_to_tensor(grid, track_meta=False), size

    @staticmethod
    def _grid_2d(elastic: Rand2DElastic, size: tuple[int, ...], device: torch.device | None) -> torch.Tensor:
        """The sampling grid of ``Rand2DElastic.__call__``, built step by step (same random numbers)."""
        elastic.set_device(device)
        elastic.randomize(size)
        grid = elastic.deform_grid(spatial_size=size)
        grid = elastic.rand_affine_grid(grid=grid)
        grid = F.interpolate(
            recompute_scale_factor=True,
            input=grid.unsqueeze(0),
            scale_factor=list(ensure_tuple(elastic.deform_grid.spacing)),
            mode="bicubic",
            align_corners=False,
        )
        return CenterSpatialCrop(roi_size=size)(grid[0])

    @staticmethod
    def _grid_gaussian(elastic: Rand3DElastic, size: tuple[int, ...], device: torch.device | None) -> torch.Tensor:
        """The sampling grid of ``Rand3DElastic.__call__``, built step by step (same random numbers)."""
        elastic.set_device(device)
        elastic.randomize(size)
        grid = create_grid(spatial_size=size, device=device, backend="torch")
        gaussian = GaussianFilter(3, elastic.sigma, 3.0).to(device=device)
        offset = torch.as_tensor(elastic.rand_offset, device=device).unsqueeze(0)
        grid[:3] += gaussian(offset)[0] * elastic.magnitude
        return elastic.rand_affine_grid(grid=grid)

    def __call__(self, condition: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """Deform ``condition`` ``(C, *sp)``; channel 0 must be the brain mask.

        Args:
            condition: the condition, numpy or torch (any device).
            randomize: draw a new deformation first; False applies the last one (same spatial size).

        Returns:
            The deformed condition in the input's type (the input itself when not deforming, see ``prob``).

        Raises:
            ConditionError: wrong number of dimensions.
            RuntimeError: ``randomize=False`` without a previous draw for this spatial size.
        """
        c = convert_to_tensor(condition, track_meta=False).float()
        if c.ndim != self.spatial_dims + 1:
            raise ConditionError(
                f"expected a ({self.spatial_dims}+1)-dimensional condition, got shape {tuple(c.shape)}"
            )
        if randomize:
            self.randomize(c.shape[1:], device=c.device)
        if not self._do_transform:
            return condition
        if self._grid is None or self._grid_size != tuple(c.shape[1:]):
            raise RuntimeError(
                f"no deformation drawn for spatial size {tuple(c.shape[1:])}: call randomize() first or use "
                "randomize=True"
            )
        if self.elastic is not None:
            deformed = self.elastic.resampler(
                c, self._grid, mode=self.elastic.mode, padding_mode=self.elastic.padding_mode
            )
        else:
            deformed = self.resampler(c, self._grid)
        out = convert_to_tensor(deformed, track_meta=False).float().round()
        brain = out[:1] > 0.5
        out[1:] = out[1:] * brain
        return like_input(out, condition)


class TumourTransplant(RandomizableTransform):
    """Move the tumour of a donor label into a recipient's brain, fully inside it and away from its border.

    The donor's tumour (all voxels with a class > 0, kept with their classes) is translated to a random
    position where every tumour voxel lies inside the recipient's brain mask eroded by ``margin``
    voxels; the recipient's own tumour is removed unless ``keep_recipient_tumour`` (then the two must
    not overlap).

    The position is found by rejection sampling: each try draws one candidate in :meth:`randomize`. With
    ``prob=1.0`` the random numbers, and so the outputs for a given ``set_random_state``, are those of the
    releases before ``prob`` existed.

    Args:
        margin: minimum distance in voxels between the moved tumour and the brain border.
        max_tries: random positions tried before giving up.
        keep_recipient_tumour: keep the recipient's tumour as well.
        prob: probability of transplanting; otherwise the recipient label is returned unchanged.
    """

    # the search runs in numpy/scipy; torch inputs (any device) are converted and the result moved back
    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self, margin: int = 3, max_tries: int = 500, keep_recipient_tumour: bool = False, prob: float = 1.0
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.margin = margin
        self.max_tries = max_tries
        self.keep_recipient_tumour = keep_recipient_tumour
        self._start: np.ndarray | None = None

    def randomize(self, data: tuple[Sequence[int], Sequence[int]] | None = None) -> None:
        """Draw whether to transplant (``data=None``), or one candidate position (``data=(low, high)``).

        Args:
            data: None, or the inclusive per-axis bounds ``(low, high)`` of the tumour box's first corner; the
                candidate is stored in ``self._start``.
        """
        if data is None:
            draw_do_transform(self)
            return
        low, high = data
        self._start = np.array([self.R.randint(a, b + 1) for a, b in zip(low, high)])

    def __call__(
        self, donor_label: NdarrayOrTensor, recipient_label: NdarrayOrTensor, recipient_brain: NdarrayOrTensor
    ) -> NdarrayOrTensor:
        """Args:
        donor_label: ``(1, *sp)`` class indices holding a tumour.
        recipient_label: ``(1, *sp')`` class indices of the recipient.
        recipient_brain: ``(1, *sp')`` recipient brain mask.

        Returns:
            The recipient's new label ``(1, *sp')`` (class indices), with the recipient's type, device and
            metadata (the recipient label itself when not transplanting, see ``prob``).

        Raises:
            ConditionError: no tumour in the donor, empty brain, or no position found.
        """
        self.randomize(None)
        if not self._do_transform:
            return recipient_label
        check_same_grid(recipient_label, recipient_brain, "recipient brain mask")
        donor = convert_to_numpy(convert_to_tensor(donor_label, track_meta=False).to(torch.int64)[0])
        rec = convert_to_numpy(convert_to_tensor(recipient_label, track_meta=False).to(torch.int64)[0])
        brain = convert_to_numpy(convert_to_tensor(recipient_brain, track_meta=False)[0]) != 0
        if donor.ndim != rec.ndim:
            raise ConditionError(f"donor label is {donor.ndim}D but the recipient is {rec.ndim}D")
        if not (donor > 0).any():
            raise ConditionError("donor label holds no tumour")
        if not brain.any():
            raise ConditionError("recipient brain mask is empty")
        allowed = ndimage.binary_erosion(brain, iterations=self.margin) if self.margin > 0 else brain
        base = rec if self.keep_recipient_tumour else np.zeros_like(rec)
        if self.keep_recipient_tumour:
            allowed = allowed & (rec == 0)
        coords = np.argwhere(donor > 0)
        lo, hi = coords.min(0), coords.max(0) + 1
        patch = donor[tuple(slice(a, b) for a, b in zip(lo, hi))]
        extent = hi - lo
        inside = np.argwhere(allowed)
        if inside.size == 0 or np.any(extent > inside.max(0) - inside.min(0) + 1):
            raise ConditionError(f"the donor tumour (extent {tuple(extent)}) does not fit in the recipient brain")
        box_lo, box_hi = inside.min(0), inside.max(0) - extent + 1
        tumour = patch > 0
        for _ in range(self.max_tries):
            self.randomize((box_lo, box_hi))
            region = tuple(slice(s, s + e) for s, e in zip(self._start, extent))
            if allowed[region][tumour].all():
                out = base.copy()
                out[region][tumour] = patch[tumour]
                return like_input(torch.from_numpy(out)[None].to(torch.int64), recipient_label)
        raise ConditionError(
            f"no position found for the donor tumour inside the recipient brain (margin {self.margin}) "
            f"after {self.max_tries} tries"
        )
