"""pix2pix training: settings, losses, data, checkpoints, networks, the MONAI engine and its builder."""

from __future__ import annotations

from monai_singanseg.engines.pix2pix.checkpoint import recorded_settings, resume_settings
from monai_singanseg.engines.pix2pix.data import (
    AugmentedPairs,
    EpochPermutation,
    PairedSlices,
    PairsToDevice,
    Pix2PixSlices,
    augment_pairs,
    paired_loader,
    validation_loader,
)
from monai_singanseg.engines.pix2pix.engine import Pix2PixTrainer
from monai_singanseg.engines.pix2pix.losses import (
    ITERATION_LOSSES,
    PerceptualLoss,
    critic_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    perceptual_loss,
)
from monai_singanseg.engines.pix2pix.networks import Pix2PixNetworks, pix2pix_networks
from monai_singanseg.engines.pix2pix.settings import Pix2PixSettings
from monai_singanseg.engines.pix2pix.trainer import pix2pix_trainer, train_pix2pix

__all__ = [
    "Pix2PixSettings",
    "Pix2PixSlices",
    "Pix2PixNetworks",
    "Pix2PixTrainer",
    "resume_settings",
    "recorded_settings",
    "pix2pix_networks",
    "pix2pix_trainer",
    "train_pix2pix",
    "ITERATION_LOSSES",
    "critic_loss",
    "generator_adversarial_loss",
    "feature_matching_loss",
    "PerceptualLoss",
    "perceptual_loss",
    "PairedSlices",
    "EpochPermutation",
    "PairsToDevice",
    "AugmentedPairs",
    "augment_pairs",
    "paired_loader",
    "validation_loader",
]
