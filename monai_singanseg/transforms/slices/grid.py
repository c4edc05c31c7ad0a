"""Axial slices of a volume <-> square working-size slices around the brain (pix2pix's training and rendering grid).

Every axial slice that holds brain is cut to one square in-plane box around the brain (the same box for every
slice, so the scale is the same for all), resized to the working size, and pasted back after rendering.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_tensor

from monai_singanseg.transforms.slices.array import axial_axis

__all__ = ["AxialSliceGrid", "GridError"]


class GridError(ValueError):
    """The volume or brain mask cannot define a slice grid (not 3D, or an empty brain mask)."""


class AxialSliceGrid:
    """Axial slices of a volume <-> a stack of square ``size x size`` slices around the brain.

    Args:
        brain_mask: ``(1, *sp)`` 3D brain mask (defines the in-plane box and which slices hold brain).
        affine: the volume's 4x4 affine (gives the axial axis).
        size: working size of the generator.
        margin: voxels of background kept around the brain's in-plane bounding box.
    """

    def __init__(self, brain_mask: NdarrayOrTensor, affine: NdarrayOrTensor, size: int, margin: int = 4) -> None:
        brain = convert_to_tensor(brain_mask, track_meta=False)[0] != 0
        if brain.ndim != 3:
            raise GridError(f"expected a 3D volume (1, X, Y, Z), got spatial shape {tuple(brain.shape)}")
        if not brain.any():
            raise GridError("brain mask is empty (no non-zero voxel)")
        self.axis = axial_axis(affine)
        self.size = size
        self.shape = tuple(brain.shape)
        moved = brain.movedim(self.axis, 0)  # (S, A, B)
        self.brain_slices = [int(i) for i in torch.nonzero(moved.flatten(1).any(1)).flatten()]
        proj = moved.any(0)
        rows, cols = torch.nonzero(proj.any(1)).flatten(), torch.nonzero(proj.any(0)).flatten()
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        self.side = max(r1 - r0, c1 - c0) + 2 * margin
        self.r0 = (r0 + r1 - self.side) // 2
        self.c0 = (c0 + c1 - self.side) // 2

    def _plane_stack(self, volume: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        """``(C, *sp)`` -> ``(N, C, A, B)`` axial slices."""
        return volume.movedim(1 + self.axis, 0)[list(indices)]

    def extract(
        self, volume: NdarrayOrTensor, indices: Sequence[int], mode: str = "area", pad_value: float = 0.0
    ) -> torch.Tensor:
        """Slices ``indices`` of ``volume`` ``(C, *sp)`` as ``(N, C, size, size)`` float.

        Args:
            mode: ``"nearest-exact"`` for conditions/labels, ``"area"`` (downsampling) or ``"bilinear"`` for images.
            pad_value: value of the box outside the volume.
        """
        vol = convert_to_tensor(volume, track_meta=False).float()
        planes = self._plane_stack(vol, indices)
        a, b = planes.shape[-2:]
        pads = (max(0, -self.c0), max(0, self.c0 + self.side - b), max(0, -self.r0), max(0, self.r0 + self.side - a))
        planes = F.pad(planes, pads, value=pad_value)
        r, c = self.r0 + pads[2], self.c0 + pads[0]
        box = planes[..., r : r + self.side, c : c + self.side]
        if mode == "area" and self.side < self.size:
            mode = "bilinear"
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        return F.interpolate(box, size=(self.size, self.size), mode=mode, **kwargs)

    def extract_with_context(
        self, volume: NdarrayOrTensor, indices: Sequence[int], context: int = 0, mode: str = "nearest-exact"
    ) -> torch.Tensor:
        """Slices ``indices`` with ``context`` neighbours on each side, stacked along channels (2.5D input).

        Returns ``(N, C * (2 context + 1), size, size)``: the channels of slice ``z - context`` first, then
        ``z - context + 1`` ... ``z + context``; slices beyond the volume repeat its first or last slice.
        """
        if context < 0:
            raise ValueError(f"context slices must be >= 0, got {context}")
        last = self.shape[self.axis] - 1
        planes = [
            self.extract(volume, [min(max(i + offset, 0), last) for i in indices], mode=mode)
            for offset in range(-context, context + 1)
        ]
        return torch.cat(planes, dim=1)

    def paste(
        self, slices: torch.Tensor, indices: Sequence[int], out: torch.Tensor, mode: str = "bilinear"
    ) -> torch.Tensor:
        """Resize ``(N, C, size, size)`` slices back to the box and write them into ``out`` ``(C, *sp)``.

        Args:
            mode: ``"bilinear"`` (class probabilities: stays inside their range) or ``"bicubic"`` (images: keeps more
                of their fine detail, antialiased when the box is smaller than the slices; it may overshoot the
                slices' range by a little near sharp edges, so clamp the result where the range matters).
        """
        if mode not in ("bilinear", "bicubic"):
            raise ValueError(f"paste mode must be 'bilinear' or 'bicubic', got {mode!r}")
        antialias = mode == "bicubic" and self.side < self.size
        back = F.interpolate(
            slices.float(), size=(self.side, self.side), mode=mode, align_corners=False, antialias=antialias
        )
        moved = out.movedim(1 + self.axis, 0)  # a view: writing into it writes into ``out``
        a, b = moved.shape[-2:]
        ra, rb = max(0, self.r0), min(a, self.r0 + self.side)
        ca, cb = max(0, self.c0), min(b, self.c0 + self.side)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        moved[idx, :, ra:rb, ca:cb] = back[..., ra - self.r0 : rb - self.r0, ca - self.c0 : cb - self.c0].to(out.dtype)
        return out
