from __future__ import annotations

from monai_singanseg.networks.pix2pix import Pix2PixCritic, Pix2PixGenerator, init_pix2pix_weights, num_unet_levels
from monai_singanseg.networks.random_features import RandomFeatures
from monai_singanseg.networks.singan import (
    SinGANCritic,
    SinGANGenerator,
    SinGANPyramid,
    SinGANSampleNetwork,
    resize_to,
    scale_features,
)
from monai_singanseg.networks.spade import (
    GENERATOR_ARCHITECTURES,
    SPADE,
    NoiseInjection,
    SPADEGenerator,
    SPADEResBlock,
    StyleEncoder,
)
from monai_singanseg.networks.vgg import VGG19Features, VGG19StyleExtractor, load_vgg19_features

__all__ = [
    "Pix2PixCritic",
    "Pix2PixGenerator",
    "init_pix2pix_weights",
    "num_unet_levels",
    "RandomFeatures",
    "GENERATOR_ARCHITECTURES",
    "SPADE",
    "NoiseInjection",
    "SPADEGenerator",
    "SPADEResBlock",
    "StyleEncoder",
    "SinGANCritic",
    "SinGANGenerator",
    "SinGANPyramid",
    "SinGANSampleNetwork",
    "resize_to",
    "scale_features",
    "VGG19Features",
    "VGG19StyleExtractor",
    "load_vgg19_features",
]
