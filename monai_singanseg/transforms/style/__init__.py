"""Style transfer (SinGAN-Seg's second stage): histogram matching and Gatys optimisation with pluggable features."""

from __future__ import annotations

from monai_singanseg.transforms.style.array import *  # noqa: F401,F403
from monai_singanseg.transforms.style.array import __all__ as _array_all
from monai_singanseg.transforms.style.dictionary import *  # noqa: F401,F403
from monai_singanseg.transforms.style.dictionary import __all__ as _dictionary_all
from monai_singanseg.transforms.style.losses import content_loss, gram_matrix, style_distance, style_grams, style_loss

__all__ = [*_array_all, *_dictionary_all, "content_loss", "gram_matrix", "style_distance", "style_grams", "style_loss"]
