"""The SinGAN-Seg pyramid: the spatial size of every scale and the training tensor resampled to each."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_singanseg.engines.singanseg.settings import SinGANSegSettings
from monai_singanseg.networks.singan import resize_to

__all__ = ["pyramid_sizes", "real_pyramid"]


def pyramid_sizes(shape: Sequence[int], settings: SinGANSegSettings) -> list[list[int]]:
    """Spatial size of every scale, coarse to fine; the finest is ``shape`` itself.

    Args:
        shape: spatial shape of the training tensor.
        settings: the schedule and its sizes.

    Raises:
        ValueError: the image is too small for the pyramid (short side below ``min_size``).
    """
    shape = [int(s) for s in shape]
    short = min(shape)
    if short < settings.min_size:
        raise ValueError(
            f"image of size {shape} is too small for the SinGAN-Seg pyramid: its short side must be at least "
            f"min_size={settings.min_size} (use a larger slice/--max-size or a smaller --min-size)"
        )
    ratio = settings.min_size / short
    if settings.schedule == "singan":
        num = max(1, int(math.ceil(math.log(ratio) / math.log(settings.scale_factor))) + 1) if ratio < 1 else 1
        factor = ratio ** (1.0 / (num - 1)) if num > 1 else 1.0
        scales = [factor ** (num - 1 - i) for i in range(num)]
    else:  # ConSinGAN: stages spaced densely at low resolution
        stop = settings.num_stages - 1
        if stop < 1 or ratio >= 1:
            scales = [1.0]
        elif stop == 1:
            scales = [ratio, 1.0]
        else:
            factor = ratio ** (1.0 / stop)
            scales = [factor ** ((stop - 1) / math.log(stop) * math.log(stop - i) + 1) for i in range(stop)] + [1.0]
    sizes: list[list[int]] = []
    for s in scales:
        size = [max(1, int(round(d * s))) for d in shape]
        if not sizes or size != sizes[-1]:
            sizes.append(size)
    return sizes


def real_pyramid(real: torch.Tensor, sizes: Sequence[Sequence[int]], num_image_channels: int) -> list[torch.Tensor]:
    """The training tensor ``(1, C, *spatial)`` at every scale: image channels anti-aliased, labels by area.

    Label channels are averaged (area), so they stay soft at the coarse scales.
    """
    out = []
    for size in sizes:
        img = resize_to(real[:, :num_image_channels], size, smooth=True)
        lab = resize_to(real[:, num_image_channels:], size, smooth=False)
        out.append(torch.cat([img, lab], dim=1).clamp(-1.0, 1.0))
    return out
