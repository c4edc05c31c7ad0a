"""New tumour layouts for SinGAN-Seg samples: move, turn, resize and reshape the tumour of a coarse GAN tensor.

A SinGAN-Seg model trained on one slice learns that slice's global layout at its coarsest scale, so samples
drawn from start scale 0 keep the tumour where it was. :class:`RandTumourDisplacement` warps the coarse
output (image channels and tumour channels together, so class nesting is kept) before the finer scales add
texture: the tumour moves by a random shift inside the foreground, turns, changes size and outline, and the
tissue around it flows along like a mass effect (a smooth, invertible displacement field, so no tissue is
duplicated and the old site is filled by the tissue behind it). A candidate warp is accepted only if its
tumour touches the background no more than the original tumour did and at least three quarters of it stays in
the frame: the frame of a picture cuts the view, not the body, so a polyp may move partly out of an endoscopy
frame as polyps in real frames do, while a brain tumour is held inside the brain by the background rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.transforms import RandomizableTransform
from monai.utils import TransformBackends, convert_to_tensor

from monai_singanseg.metrics.tumour import outer_ring
from monai_singanseg.transforms.condition.array import draw_do_transform

__all__ = ["RandTumourDisplacement", "frame_cuts_tissue", "tumour_background_contact"]

#: control points per side of the random elastic field that roughens the tumour outline.
_ELASTIC_POINTS = 4
#: length of the field's taper per pixel of shift (above pi / 2 the field is invertible; longer: less stretch).
TAPER_PER_SHIFT = 1.7
#: share of the moved tumour that must stay in the frame (the rest may be cut by the frame edge).
MIN_IN_FRAME = 0.75


def frame_cuts_tissue(foreground: torch.Tensor) -> bool:
    """Whether most of the ``(H, W)`` boolean ``foreground``'s border is foreground: the frame cuts through tissue
    (endoscopy) rather than framing an object on a background (a brain in its MR slice)."""
    border = torch.cat([foreground[0], foreground[-1], foreground[:, 0], foreground[:, -1]])
    return bool(border.float().mean() > 0.5)


def tumour_background_contact(tumour: torch.Tensor, foreground: torch.Tensor) -> float:
    """Share of the pixels just outside ``tumour`` (its 1-pixel ring, 8-connected) that are not ``foreground``.

    Both are ``(H, W)`` boolean. Pixels just beyond the image border are foreground when most of the border is (a
    frame that cuts through tissue, as in endoscopy: the tissue goes on beyond it) and background otherwise (an
    object on a background, as a brain in its MR slice).
    """
    ring = outer_ring(F.pad(tumour, (1, 1, 1, 1)))
    inside = F.pad(foreground, (1, 1, 1, 1), value=frame_cuts_tissue(foreground))
    total = int(ring.sum())
    return float((ring & ~inside).sum()) / total if total else 0.0


class RandTumourDisplacement(RandomizableTransform):
    """Randomly move and reshape the tumour of a 2D GAN tensor ``(C, H, W)`` (image channels, then tumour channels).

    The output pixel ``p`` samples the input at ``p + phi(p) * (c + M^-1 (p - c') + e(p) - p)``: ``c`` is the
    tumour's centre, ``c' = c + t`` its new centre, ``M`` a rotation and scaling, ``e`` a smooth random
    field of amplitude ``elastic`` x the tumour radius, and ``phi`` is 1 on the new tumour and falls to 0
    (cosine taper) over 1.7x the shift length, which keeps the field invertible.

    Args:
        num_image_channels: image channels at the front of the tensor; the rest are tumour channels.
        max_shift: largest shift as a fraction of the image's short side.
        rotate_degrees: largest rotation of the tumour (+/-).
        scale_range: largest relative change of the tumour's size (+/-; 0.1: 0.9x to 1.1x its radius).
        elastic: amplitude of the outline roughening, relative to the tumour radius.
        background: image value of the background (-1 in the GAN range).
        tolerance: an image pixel is foreground when any channel exceeds ``background + tolerance``.
        max_tries: candidate warps drawn per call; the first acceptable one is applied (if none is, only
            the tumour's turn, resize and outline change are applied in place, and if that is not acceptable
            either the input is returned).
        prob: probability of displacing the tumour at all.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        num_image_channels: int,
        max_shift: float = 0.15,
        rotate_degrees: float = 15.0,
        scale_range: float = 0.1,
        elastic: float = 0.1,
        background: float = -1.0,
        tolerance: float = 0.1,
        max_tries: int = 8,
        prob: float = 1.0,
    ) -> None:
        if num_image_channels < 1:
            raise ValueError(f"num_image_channels must be >= 1, got {num_image_channels}")
        if not 0.0 <= max_shift <= 1.0:
            raise ValueError(f"max_shift must lie in [0, 1] (a fraction of the image side), got {max_shift}")
        if not 0.0 <= scale_range < 1.0:
            raise ValueError(f"scale_range must lie in [0, 1), got {scale_range}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        RandomizableTransform.__init__(self, prob)
        self.num_image_channels = num_image_channels
        self.max_shift = float(max_shift)
        self.rotate = math.radians(rotate_degrees)
        self.scale_range = float(scale_range)
        self.elastic = float(elastic)
        self.background = float(background)
        self.tolerance = float(tolerance)
        self.max_tries = int(max_tries)
        self._candidates: np.ndarray = np.zeros((0, 4))
        self._elastic_field: np.ndarray = np.zeros((2, _ELASTIC_POINTS, _ELASTIC_POINTS))

    def randomize(self, data: None = None) -> None:
        """Draw whether to displace and ``max_tries`` candidate (direction, shift, rotation, scale) warps."""
        draw_do_transform(self)
        if not self._do_transform:
            return
        n = self.max_tries
        direction = self.R.uniform(0.0, 2.0 * math.pi, n)
        shift = np.sqrt(self.R.uniform(0.0, 1.0, n)) * self.max_shift  # uniform over the disc of shifts
        rotation = self.R.uniform(-self.rotate, self.rotate, n)
        log_scale = self.R.uniform(math.log(1.0 - self.scale_range), math.log(1.0 + self.scale_range), n)
        self._candidates = np.stack([direction, shift, rotation, log_scale], axis=1)
        self._elastic_field = self.R.standard_normal((2, _ELASTIC_POINTS, _ELASTIC_POINTS))

    def foreground(self, x: torch.Tensor) -> torch.Tensor:
        """``(H, W)`` pixels where any image channel exceeds the background level."""
        return (x[: self.num_image_channels] > self.background + self.tolerance).any(0)

    def tumour(self, x: torch.Tensor) -> torch.Tensor:
        """``(H, W)`` pixels whose largest tumour channel is above 0 (probability 0.5)."""
        return (x[self.num_image_channels :] > 0).any(0)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        """Args:
        img: ``(C, H, W)`` GAN tensor in [-1, 1] with at least one tumour channel.
        randomize: draw a new warp (False: the last draw).

        Returns:
            The warped tensor (float32, on the input's device), or the input if no tumour is present, the draw
            says not to displace, or no candidate is acceptable.

        Raises:
            ValueError: not a 2D GAN tensor with tumour channels.
        """
        x = convert_to_tensor(img, track_meta=False).float()
        if x.ndim != 3 or x.shape[0] <= self.num_image_channels:
            raise ValueError(
                f"expected a (C, H, W) GAN tensor with more than {self.num_image_channels} channels, got shape "
                f"{tuple(x.shape)}"
            )
        if randomize:
            self.randomize()
        tumour = self.tumour(x)
        if not self._do_transform or not tumour.any():
            return x
        contact = max(tumour_background_contact(tumour, self.foreground(x) | tumour), 0.1)
        side = min(x.shape[1:])
        no_shift = [(0.0, 0.0, float(c[2]), float(c[3])) for c in self._candidates[:1]]
        for direction, shift, rotation, log_scale in [tuple(map(float, c)) for c in self._candidates] + no_shift:
            offset = (shift * side * math.cos(direction), shift * side * math.sin(direction))
            out = self._warp(x, tumour, offset, rotation, math.exp(log_scale))
            if out is not None:
                moved = self.tumour(out)
                if moved.any() and tumour_background_contact(moved, self.foreground(out) | moved) <= contact:
                    return out
        return x

    def _warp(
        self, x: torch.Tensor, tumour: torch.Tensor, offset: Sequence[float], rotation: float, scale: float
    ) -> torch.Tensor | None:
        """The tensor warped so that the tumour moves by ``offset`` pixels (None: less than ``MIN_IN_FRAME`` of the
        moved tumour would stay in the frame)."""
        h, w = x.shape[1:]
        grid_axes = (torch.arange(n, dtype=torch.float32, device=x.device) for n in (h, w))
        rows, cols = torch.meshgrid(*grid_axes, indexing="ij")
        weight = tumour.float()
        area = float(weight.sum())
        centre = (float((rows * weight).sum()) / area, float((cols * weight).sum()) / area)
        radius = math.sqrt(area / math.pi)
        new = (centre[0] + offset[0], centre[1] + offset[1])
        reach = scale * radius
        # the tumour's own motion (turn by rotation, scale about its centre, move to the new centre) of its pixels
        cos, sin = math.cos(rotation) * scale, math.sin(rotation) * scale
        a, b = rows[tumour] - centre[0], cols[tumour] - centre[1]
        to_r, to_c = new[0] + cos * a - sin * b, new[1] + sin * a + cos * b
        in_frame = (to_r >= -0.5) & (to_r <= h - 0.5) & (to_c >= -0.5) & (to_c <= w - 0.5)
        if float(in_frame.float().mean()) < MIN_IN_FRAME:
            return None
        dr, dc = rows - new[0], cols - new[1]
        # phi: 1 on the moved tumour, a cosine taper to 0 over more than twice the shift (invertible field)
        length = math.hypot(*offset)
        plateau = 1.1 * reach + 0.5
        taper = TAPER_PER_SHIFT * length + 0.5 * radius + 1.0  # the steepest slope pi / (2 taper) x length stays < 1
        phi = 0.5 * (1.0 + torch.cos(math.pi * ((torch.sqrt(dr**2 + dc**2) - plateau) / taper).clamp(0.0, 1.0)))
        # inverse of the tumour's own motion: turn by -rotation and shrink by 1/scale about the new centre
        cos, sin = math.cos(rotation) / scale, math.sin(rotation) / scale
        src_r = centre[0] + cos * dr + sin * dc
        src_c = centre[1] - sin * dr + cos * dc
        field = torch.as_tensor(self._elastic_field, dtype=torch.float32, device=x.device)[None]
        field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)[0] * self.elastic * radius
        q_r = rows + phi * (src_r + field[0] - rows)
        q_c = cols + phi * (src_c + field[1] - cols)
        grid = torch.stack([(2.0 * q_c + 1.0) / w - 1.0, (2.0 * q_r + 1.0) / h - 1.0], dim=-1)[None]
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
