"""The label-to-image losses: over pix2pixHD's multi-scale critics, adversarial (pix2pix's BCE on patch logits or
SPADE's hinge) and feature matching; and pix2pixHD's / SPADE's VGG-19 perceptual term, from a weights file the user
gives."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_singanseg.networks.vgg import VGG19Features, VGG19StyleExtractor, load_vgg19_features

__all__ = [
    "GAN_LOSSES",
    "ITERATION_LOSSES",
    "PERCEPTUAL_LAYERS",
    "critic_loss",
    "generator_adversarial_loss",
    "feature_matching_loss",
    "PerceptualLoss",
    "perceptual_loss",
]

#: the adversarial losses: pix2pix's binary cross-entropy, SPADE's (and pix2pixHD's successors') hinge.
GAN_LOSSES = ("bce", "hinge")
#: the scalar losses each iteration reports (and each epoch's history record averages).
ITERATION_LOSSES = ("loss_g", "loss_d", "l1", "feature_matching", "kl", "perceptual")
#: pix2pixHD's (and SPADE's) perceptual layers of VGG-19 and their weights: the deeper, the heavier.
PERCEPTUAL_LAYERS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8, "relu4_1": 1 / 4, "relu5_1": 1.0}


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


class PerceptualLoss(nn.Module):
    """pix2pixHD's perceptual term: the weighted L1 distance between VGG-19 activations of the generated and the real
    image, each MR channel seen as one grey image (ImageNet-normalised, as
    :class:`~monai_singanseg.networks.VGG19StyleExtractor` sees it). The network is frozen.

    Args:
        features: VGG-19's feature stack (:func:`~monai_singanseg.networks.load_vgg19_features`).
        layers: layer -> weight (default :data:`PERCEPTUAL_LAYERS`).
    """

    def __init__(self, features: VGG19Features, layers: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.layers = dict(PERCEPTUAL_LAYERS if layers is None else layers)
        self.extractor = VGG19StyleExtractor(features, style_layers=self.layers, content_layer=next(iter(self.layers)))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` generated and real images in [-1, 1] -> the scalar loss."""
        fake_act = self.extractor(fake.flatten(0, 1).unsqueeze(1))
        with torch.no_grad():
            real_act = self.extractor(real.flatten(0, 1).unsqueeze(1))
        terms = [w * F.l1_loss(fake_act[name], real_act[name]) for name, w in self.layers.items()]
        return torch.stack(terms).sum()


def perceptual_loss(
    weights_file: str | os.PathLike | None, device: str | torch.device = "cpu"
) -> PerceptualLoss | None:
    """The perceptual term of a training run: :class:`PerceptualLoss` over the VGG-19 weights in ``weights_file``,
    or None without a file.

    Raises:
        FileNotFoundError: the file does not exist (the message says how to make one).
        ValueError: the file is not VGG-19 weights (naming what is wrong).
    """
    if weights_file is None:
        return None
    return PerceptualLoss(load_vgg19_features(weights_file, map_location="cpu")).to(device)
