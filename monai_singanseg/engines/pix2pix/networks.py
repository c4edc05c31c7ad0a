"""A pix2pix run's generator and critic, made from its checked model config on the run's own random stream."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix.checkpoint import new_model_config
from monai_singanseg.engines.pix2pix.data import Pix2PixSlices
from monai_singanseg.engines.pix2pix.settings import Pix2PixSettings
from monai_singanseg.inferers.pix2pix import generator_from_config
from monai_singanseg.io.model_config import Pix2PixModelConfig
from monai_singanseg.networks.pix2pix import Pix2PixCritic
from monai_singanseg.rng import forked_rng

__all__ = ["Pix2PixNetworks", "pix2pix_networks", "checked_config", "new_networks"]


@dataclass
class Pix2PixNetworks:
    """The generator and critic of a run, initialised on the run's own random stream.

    Args:
        generator: the U-Net generator (condition -> image).
        critic: the multi-scale conditional critic.
        random_state: the CPU random stream's state after initialisation (training continues it).
    """

    generator: torch.nn.Module
    critic: torch.nn.Module
    random_state: torch.Tensor


def checked_config(data: Pix2PixSlices, settings: Pix2PixSettings) -> Pix2PixModelConfig:
    """The model config of a run on ``data`` (checks that the slices were prepared with ``settings``)."""
    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    if data.condition.shape[0] == 0:
        raise ValueError("no training slices (no case has a tumour-bearing slice)")
    config = new_model_config(settings, data)
    if data.condition.shape[1] != config.generator_in_channels:
        raise ValueError(
            f"the slices hold {data.condition.shape[1]} condition channels, but "
            f"context_slices={settings.context_slices} "
            f"needs {config.generator_in_channels}: prepare them with these settings"
        )
    return config


def pix2pix_networks(
    data: Pix2PixSlices, settings: Pix2PixSettings | None = None, device: str | torch.device | None = None
) -> Pix2PixNetworks:
    """A new generator and critic for ``data``, initialised from ``settings.seed`` (the caller's stream untouched).

    Bundles build them first so that an evaluator can share the generator with the trainer
    (:func:`pix2pix_trainer` ``networks=``).
    """
    settings = settings or data.settings
    return new_networks(checked_config(data, settings), data, settings, resolve_device(device))


def new_networks(
    config: Pix2PixModelConfig, data: Pix2PixSlices, settings: Pix2PixSettings, dev: torch.device
) -> Pix2PixNetworks:
    """:func:`pix2pix_networks` for an already checked config (the data fingerprint is not computed again)."""
    with forked_rng(dev, settings.seed):
        generator = generator_from_config(config).to(dev)
        critic = Pix2PixCritic(
            2,
            data.condition.shape[1],
            data.image.shape[1],
            channels=settings.critic_channels,
            scales=config.critic_scales,
            size=settings.size,
        ).to(dev)
        return Pix2PixNetworks(generator, critic, torch.get_rng_state())
