"""pix2pix training data: prepared slices, paired items, per-epoch order, augmentation and the loaders."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.data import DistributedSampler as MonaiDistributedSampler
from monai.engines.utils import PrepareBatch
from torch.utils.data import DataLoader, Dataset, Sampler

from monai_singanseg.engines.common import stream_neutral_loader
from monai_singanseg.engines.pix2pix.settings import Pix2PixSettings
from monai_singanseg.transforms.intensity.array import IntensityStats

__all__ = [
    "Pix2PixSlices",
    "PairedSlices",
    "EpochPermutation",
    "PairsToDevice",
    "AugmentedPairs",
    "augment_pairs",
    "paired_loader",
    "validation_loader",
]


@dataclass
class Pix2PixSlices:
    """Training pairs: ``condition`` ``(N, C, S, S)`` in {0, 1}, ``image`` ``(N, M, S, S)`` in [-1, 1].

    Args:
        condition: condition slices.
        image: image slices.
        stats: each case's intensity statistics.
        names: each case's name.
        source_dtype: the cases' dtype on disk.
        label_values: label values, background first.
        modalities: names of the image channels.
        settings: the settings the slices were prepared with (size, margin, slices, tissue classes).
    """

    condition: torch.Tensor
    image: torch.Tensor
    stats: list[IntensityStats]
    names: list[str]
    source_dtype: str
    label_values: tuple[int, ...]
    modalities: tuple[str, ...]
    settings: Pix2PixSettings


def augment_pairs(
    cond: torch.Tensor, img: torch.Tensor, flip: bool, rotate_degrees: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random left-right flip and in-plane rotation of each condition/image pair.

    The condition is resampled nearest (it stays one-hot), the image bilinear with -1 (background) outside.
    """
    n = cond.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotate_degrees)
    flips = (torch.rand(n, generator=generator) < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    if rotate_degrees <= 0 and not flips.any():
        return cond, img
    sx = torch.where(flips, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) * sx, -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) * sx, torch.cos(angle)
    grid = F.affine_grid(theta, list(cond.shape), align_corners=False)
    cond = F.grid_sample(cond, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    img = F.grid_sample(img + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    return cond, img


class PairedSlices(Dataset):
    """Condition/image pairs as ``{"condition", "image"}`` items (one slice each).

    Args:
        condition: ``(N, C, S, S)`` condition slices.
        image: ``(N, M, S, S)`` image slices.
    """

    def __init__(self, condition: torch.Tensor, image: torch.Tensor) -> None:
        if condition.shape[0] != image.shape[0]:
            raise ValueError(f"{condition.shape[0]} condition slices but {image.shape[0]} image slices")
        self.condition, self.image = condition, image

    def __len__(self) -> int:
        return int(self.condition.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"condition": self.condition[index], "image": self.image[index]}


class EpochPermutation(Sampler[int]):
    """A new random order of ``n`` items every epoch, drawn from ``generator`` (saved in checkpoints for resume)."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def validation_loader(dataset: Dataset, batch_size: int = 8, distributed: bool = False) -> DataLoader:
    """Batches of ``dataset`` in order, for an evaluator run between training epochs.

    It draws nothing from the global random stream (:func:`~monai_singanseg.engines.common.stream_neutral_loader`):
    validating does not change training, so a resumed run still equals an uninterrupted one.

    Args:
        dataset: the validation pairs.
        batch_size: slices per batch.
        distributed: each rank of the process group evaluates its own share (MONAI's ``DistributedSampler``
            without padding; MONAI's metrics gather the shares), as every rank must take part in the metrics.
    """
    sampler = MonaiDistributedSampler(dataset, shuffle=False, even_divisible=False) if distributed else None
    return stream_neutral_loader(dataset, batch_size, sampler)


def paired_loader(dataset: Dataset, batch_size: int, generator: torch.Generator) -> DataLoader:
    """Batches of ``dataset`` in an order drawn from ``generator`` each epoch, never from the global stream (the
    networks', e.g. dropout)."""
    return stream_neutral_loader(dataset, batch_size, EpochPermutation(len(dataset), generator))  # type: ignore[arg-type]


class PairsToDevice(PrepareBatch):
    """``prepare_batch`` for ``{"condition", "image"}`` batches: ``(condition, image)`` on the device (evaluators)."""

    def pair(self, batchdata: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batchdata["condition"], batchdata["image"]

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cond, image = self.pair(batchdata)
        return (
            cond.to(device=device, non_blocking=non_blocking, **kwargs),
            image.to(device=device, non_blocking=non_blocking, **kwargs),
        )


class AugmentedPairs(PairsToDevice):
    """``prepare_batch`` for training: :func:`augment_pairs` on each batch, then ``(condition, image)`` on the device.

    Args:
        flip: random left-right flips.
        rotate_degrees: maximum random in-plane rotation.
        generator: the augmentation's random stream (saved in checkpoints).
    """

    def __init__(self, flip: bool, rotate_degrees: float, generator: torch.Generator) -> None:
        self.flip, self.rotate_degrees, self.generator = flip, rotate_degrees, generator

    def pair(self, batchdata: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return augment_pairs(batchdata["condition"], batchdata["image"], self.flip, self.rotate_degrees, self.generator)
