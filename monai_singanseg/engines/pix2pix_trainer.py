"""The pix2pix iteration as a MONAI engine: paired slices in, one critic step and one generator step per batch.

:class:`Pix2PixTrainer` is a thin ``monai.engines.AdversarialTrainer`` whose iteration is pix2pix's (the
critics see the condition beside the image, they step first, the generator adds L1 and pix2pixHD's feature
matching). The data side is MONAI/torch's: a ``Dataset`` of ``{"condition", "image"}`` items, a sampler whose
per-epoch order comes from a generator the checkpoint saves, and a ``prepare_batch`` that augments each pair.
Settings, model files and resume live in :mod:`monai_singanseg.engines.pix2pix`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.data import DistributedSampler as MonaiDistributedSampler
from monai.engines import AdversarialTrainer
from monai.engines.utils import PrepareBatch, default_prepare_batch
from monai.utils import AdversarialIterationEvents
from monai.utils import CommonKeys as Keys
from torch.utils.data import DataLoader, Dataset, Sampler

from monai_singanseg.engines.common import stream_neutral_loader
from monai_singanseg.rng import forked_rng

__all__ = [
    "PairedSlices",
    "EpochPermutation",
    "PairsToDevice",
    "AugmentedPairs",
    "Pix2PixTrainer",
    "augment_pairs",
    "critic_loss",
    "generator_adversarial_loss",
    "feature_matching_loss",
    "paired_loader",
    "validation_loader",
    "ITERATION_LOSSES",
]

#: the scalar losses each iteration reports (and each epoch's history record averages).
ITERATION_LOSSES = ("loss_g", "loss_d", "l1", "feature_matching")


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


def _adversarial(outputs: Sequence[Sequence[torch.Tensor]], real: bool) -> torch.Tensor:
    """BCE of every critic's patch logits (the last of its outputs) against 1 (real) or 0, averaged over critics."""
    losses = [F.binary_cross_entropy_with_logits(o[-1], torch.full_like(o[-1], float(real))) for o in outputs]
    return torch.stack(losses).mean()


def generator_adversarial_loss(fake_outputs: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """The generator's adversarial loss: the critics should call the generated pairs real."""
    return _adversarial(fake_outputs, True)


def critic_loss(
    real_outputs: Sequence[Sequence[torch.Tensor]], fake_outputs: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """The critics' loss: real pairs -> 1, generated pairs -> 0."""
    return 0.5 * (_adversarial(real_outputs, True) + _adversarial(fake_outputs, False))


def feature_matching_loss(
    fake: Sequence[Sequence[torch.Tensor]], real: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between the critics' hidden features of the generated and the real pair."""
    terms = [F.l1_loss(f, r.detach()) for fo, ro in zip(fake, real) for f, r in zip(fo[:-1], ro[:-1])]
    return torch.stack(terms).mean()


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


class Pix2PixTrainer(AdversarialTrainer):
    """pix2pix with pix2pixHD's multi-scale critic and feature matching, as a MONAI ``AdversarialTrainer``.

    One iteration trains the critics on the real and the generated pair (both conditioned), then the generator
    against the critics + ``l1_weight`` x L1 + ``feature_matching_weight`` x feature matching. The iteration
    output holds ``Keys.IMAGE`` (condition), ``Keys.LABEL`` (real image), ``Keys.PRED`` (generated image),
    ``Keys.LOSS`` (the generator's loss) and the floats of :data:`ITERATION_LOSSES` and ``batch_size``, for
    handlers. Any MONAI or ignite handler attaches through ``train_handlers``.

    With ``random_state`` (a CPU generator state), :meth:`run` draws dropout from that private stream and
    leaves the caller's random state untouched; ``random_state`` holds the stream's state after the run.

    Args:
        device: the device the networks are on.
        max_epochs: total epochs (a resumed run sets ``state.epoch`` and ``state.iteration`` first).
        train_data_loader: batches of ``{"condition", "image"}``.
        g_network: the generator (condition -> image).
        g_optimizer: its optimiser.
        d_network: the critic, called as ``d_network(condition, image)`` -> one list of outputs per scale
            (hidden features..., patch logits), as :class:`~monai_singanseg.networks.Pix2PixCritic`.
        d_optimizer: its optimiser.
        l1_weight: weight of the L1 term (100 in pix2pix).
        feature_matching_weight: weight of pix2pixHD's feature matching (0: off).
        prepare_batch: turns a batch into ``(condition, image)`` on the device (e.g. :class:`AugmentedPairs`).
        train_handlers: handlers to attach, in order.
        random_state: the private random stream's state (None: draw from the global stream).
        kwargs: other ``AdversarialTrainer`` arguments (``epoch_length``, ``non_blocking``, ...).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        g_network: torch.nn.Module,
        g_optimizer: torch.optim.Optimizer,
        d_network: torch.nn.Module,
        d_optimizer: torch.optim.Optimizer,
        l1_weight: float = 100.0,
        feature_matching_weight: float = 10.0,
        prepare_batch: Callable = default_prepare_batch,
        train_handlers: Sequence | None = None,
        random_state: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            g_network=g_network,
            g_optimizer=g_optimizer,
            g_loss_function=generator_adversarial_loss,
            recon_loss_function=torch.nn.L1Loss(),
            d_network=d_network,
            d_optimizer=d_optimizer,
            d_loss_function=critic_loss,
            prepare_batch=prepare_batch,
            train_handlers=train_handlers,
            decollate=False,
            optim_set_to_none=True,
            **kwargs,
        )
        self.l1_weight = float(l1_weight)
        self.feature_matching_weight = float(feature_matching_weight)
        self.random_state = random_state

    def run(self) -> None:  # type: ignore[override]
        """Train up to ``max_epochs`` (from ``state.epoch``; nothing when it is reached), on the private stream if
        any."""
        if self.state.epoch >= self.state.max_epochs:
            return  # ignite would start afresh from epoch 0
        if self.random_state is None:
            super().run()
            return
        with forked_rng(self.state.device, state=self.random_state):
            try:
                super().run()
            finally:
                self.random_state = torch.get_rng_state()

    def _iteration(self, engine: Pix2PixTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        cond, real = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        state = engine.state
        state.g_network.train()
        state.d_network.train()
        fake = engine.g_inferer(cond, state.g_network)
        engine.fire_event(AdversarialIterationEvents.GENERATOR_FORWARD_COMPLETED)
        # critics: real pairs -> 1, generated pairs -> 0
        state.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        real_outs = state.d_network(cond, real)
        loss_d = state.d_loss_function(real_outs, state.d_network(cond, fake.detach()))
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_LOSS_COMPLETED)
        loss_d.backward()
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_BACKWARD_COMPLETED)
        state.d_optimizer.step()
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_MODEL_COMPLETED)
        # generator: fool the critics, match their features of the real pair, stay close to the real image
        state.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        fake_outs = state.d_network(cond, fake)
        l1 = state.recon_loss_function(fake, real)
        engine.fire_event(AdversarialIterationEvents.RECONSTRUCTION_LOSS_COMPLETED)
        fm = feature_matching_loss(fake_outs, real_outs) if engine.feature_matching_weight > 0 else l1.new_zeros(())
        loss_g = state.g_loss_function(fake_outs) + engine.l1_weight * l1 + engine.feature_matching_weight * fm
        engine.fire_event(AdversarialIterationEvents.GENERATOR_LOSS_COMPLETED)
        loss_g.backward()
        engine.fire_event(AdversarialIterationEvents.GENERATOR_BACKWARD_COMPLETED)
        state.g_optimizer.step()
        engine.fire_event(AdversarialIterationEvents.GENERATOR_MODEL_COMPLETED)
        return {
            Keys.IMAGE: cond,
            Keys.LABEL: real,
            Keys.PRED: fake.detach(),
            Keys.LOSS: loss_g.detach(),
            "loss_g": loss_g.item(),
            "loss_d": loss_d.item(),
            "l1": l1.item(),
            "feature_matching": fm.item(),
            "batch_size": int(cond.shape[0]),
        }
