"""The label-to-image losses over pix2pixHD's multi-scale critics: adversarial (pix2pix's BCE on patch logits or
SPADE's hinge) and feature matching."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["GAN_LOSSES", "ITERATION_LOSSES", "critic_loss", "generator_adversarial_loss", "feature_matching_loss"]

#: the adversarial losses: pix2pix's binary cross-entropy, SPADE's (and pix2pixHD's successors') hinge.
GAN_LOSSES = ("bce", "hinge")
#: the scalar losses each iteration reports (and each epoch's history record averages).
ITERATION_LOSSES = ("loss_g", "loss_d", "l1", "feature_matching", "kl")


def _bce(outputs: Sequence[Sequence[torch.Tensor]], real: bool) -> torch.Tensor:
    """BCE of every critic's patch logits (the last of its outputs) against 1 (real) or 0, averaged over critics."""
    losses = [F.binary_cross_entropy_with_logits(o[-1], torch.full_like(o[-1], float(real))) for o in outputs]
    return torch.stack(losses).mean()


def generator_adversarial_loss(fake_outputs: Sequence[Sequence[torch.Tensor]], kind: str = "bce") -> torch.Tensor:
    """The generator's adversarial loss: the critics should call the generated pairs real (hinge: raise their
    logits)."""
    if kind == "hinge":
        return torch.stack([-o[-1].mean() for o in fake_outputs]).mean()
    return _bce(fake_outputs, True)


def critic_loss(
    real_outputs: Sequence[Sequence[torch.Tensor]], fake_outputs: Sequence[Sequence[torch.Tensor]], kind: str = "bce"
) -> torch.Tensor:
    """The critics' loss: real pairs -> 1, generated pairs -> 0 (hinge: real logits above 1, generated below -1)."""
    if kind == "hinge":
        real = [F.relu(1 - o[-1]).mean() for o in real_outputs]
        fake = [F.relu(1 + o[-1]).mean() for o in fake_outputs]
        return 0.5 * (torch.stack(real).mean() + torch.stack(fake).mean())
    return 0.5 * (_bce(real_outputs, True) + _bce(fake_outputs, False))


def feature_matching_loss(
    fake: Sequence[Sequence[torch.Tensor]], real: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between the critics' hidden features of the generated and the real pair."""
    terms = [F.l1_loss(f, r.detach()) for fo, ro in zip(fake, real) for f, r in zip(fo[:-1], ro[:-1])]
    return torch.stack(terms).mean()
