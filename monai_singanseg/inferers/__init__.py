"""Running trained generators: the SinGAN-Seg sampler and the pix2pix renderer, with their MONAI transforms."""

from __future__ import annotations

from monai_singanseg.inferers.pix2pix import (
    Pix2PixRender,
    Pix2PixRenderd,
    RandAppearanced,
    generator_from_config,
    load_pix2pix,
)
from monai_singanseg.inferers.singanseg import SinGANSegSample, SinGANSegSampled, SinGANSegSampler

__all__ = [
    "Pix2PixRender",
    "Pix2PixRenderd",
    "RandAppearanced",
    "generator_from_config",
    "load_pix2pix",
    "SinGANSegSample",
    "SinGANSegSampled",
    "SinGANSegSampler",
]
