"""Gatys style and content losses with the SinGAN-Seg reference's normalisation, and a style distance.

Reference (singan_seg_polyp/style_transfer.py): ``G = F F^T`` summed over positions, the style term of a
layer is ``weight * mean((G_pred - G_style)^2) / (n * c * h * w)`` and the content term is the MSE of
the activations. Here every batch item is its own image (an MR channel), so the terms are computed per
item and summed: optimising a batch is then the same as optimising each item alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["gram_matrix", "style_grams", "style_loss", "content_loss", "style_distance"]


def gram_matrix(x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Per-item Gram matrices ``(N, C, C)`` of activations ``(N, C, *spatial)``, summed over positions.

    Args:
        x: activations.
        normalize: divide by the number of positions (a size-independent "Gram per position").
    """
    f = x.reshape(x.shape[0], x.shape[1], -1)
    gram = f @ f.transpose(1, 2)
    return gram / f.shape[-1] if normalize else gram


def style_grams(features: Mapping[str, torch.Tensor], layers: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """The style targets: per-position Gram matrices of the style image's activations at ``layers``."""
    return {layer: gram_matrix(features[layer], normalize=True) for layer in layers}


def style_loss(
    features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> torch.Tensor:
    """Weighted Gram MSE per item ``(N,)``, normalised by ``c * h * w`` of each layer as in the reference.

    The target Gram (per position, from :func:`style_grams`) is scaled to the prediction's number of
    positions, so a style image of another size gives the reference's loss for a same-size one.

    Args:
        features: activations of the image being optimised.
        targets: per-position Gram matrices of the style image (``(N, C, C)`` or ``(1, C, C)``).
        weights: layer -> weight.
    """
    total = None
    for layer, weight in weights.items():
        f = features[layer]
        positions = f[0, 0].numel()
        diff = gram_matrix(f) - targets[layer] * positions
        term = weight * diff.pow(2).mean(dim=(1, 2)) / (f.shape[1] * positions)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no style layers given")
    return total


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of the content-layer activations per item ``(N,)``."""
    return (features - target).pow(2).flatten(1).mean(dim=1)


@torch.no_grad()
def style_distance(
    image: torch.Tensor, reference: torch.Tensor, extractor: nn.Module, weights: Mapping[str, float] | None = None
) -> float:
    """Style (texture) distance between two channel-first images: the Gatys style term, mean over channels.

    Each channel is a grey image compared with the same channel of the reference (as the style transfer
    does). Lower is closer; 0 for identical images.

    Args:
        image: ``(C, *spatial)`` in [-1, 1].
        reference: ``(C, *spatial')`` in [-1, 1], same channel count.
        extractor: maps ``(N, 1, *spatial)`` to named activations (e.g.
            :class:`~monai_singanseg.networks.RandomFeatures`); use another one than the style transfer's to
            avoid measuring exactly what was optimised.
        weights: layer -> weight (default: the extractor's ``style_layers``, else every layer with weight 1).
    """
    if image.shape[0] != reference.shape[0]:
        raise ValueError(f"image has {image.shape[0]} channels, the reference {reference.shape[0]}")
    param = next(extractor.parameters(), None)
    device = param.device if param is not None else image.device
    feats = extractor(image.float()[:, None].to(device))
    ref_feats = extractor(reference.float()[:, None].to(device))
    if weights is None:
        weights = getattr(extractor, "style_layers", None) or {name: 1.0 for name in feats}
    return float(style_loss(feats, style_grams(ref_feats, weights), weights).mean())
