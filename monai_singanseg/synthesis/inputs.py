"""What every generator's prepare step asks of a case's inputs: is it a 2D picture, and what are its channels called."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monai_singanseg.io.writers import BRATS_MODALITIES

__all__ = ["is_2d_image_input", "default_channel_names"]

_RGB_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def is_2d_image_input(image: str | os.PathLike | Sequence[str | os.PathLike]) -> bool:
    """True for one 2D picture file (PNG/JPEG/...), e.g. a Kvasir-SEG RGB image with its mask."""
    if isinstance(image, (list, tuple)):
        return len(image) == 1 and is_2d_image_input(image[0])
    return Path(image).suffix.lower() in _RGB_SUFFIXES


def default_channel_names(num_channels: int, num_files: int, rgb: bool) -> list[str]:
    """Names of a case's image channels when none are given: RGB, the BraTS modalities (4 files), else ``ch<i>``."""
    if rgb and num_channels == 3:
        return ["red", "green", "blue"]
    if num_channels == len(BRATS_MODALITIES) and num_files == len(BRATS_MODALITIES):
        return list(BRATS_MODALITIES)
    return [f"ch{i}" for i in range(num_channels)]
