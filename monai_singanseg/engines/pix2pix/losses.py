"""pix2pix's losses over pix2pixHD's multi-scale critics: adversarial (BCE on patch logits) and feature matching."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["ITERATION_LOSSES", "critic_loss", "generator_adversarial_loss", "feature_matching_loss"]

#: the scalar losses each iteration reports (and each epoch's history record averages).
ITERATION_LOSSES = ("loss_g", "loss_d", "l1", "feature_matching")


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
