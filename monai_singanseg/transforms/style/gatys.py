"""Gatys et al. neural style transfer as SinGAN-Seg runs it: optimise the image itself, starting from the content."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from tqdm import trange

from monai_singanseg.transforms.style.losses import content_loss, style_grams, style_loss

__all__ = ["optimise_style", "extractor_layers"]


def extractor_layers(
    extractor: nn.Module, style_layers: Mapping[str, float] | None = None, content_layer: str | None = None
) -> tuple[dict[str, float], str | None]:
    """Style layers/weights and content layer: the given ones, else the extractor's ``style_layers`` /
    ``content_layer`` attributes; None where neither says (resolved from the first output by :func:`optimise_style`).
    """
    layers = style_layers if style_layers is not None else getattr(extractor, "style_layers", None)
    content = content_layer if content_layer is not None else getattr(extractor, "content_layer", None)
    return (dict(layers) if layers is not None else {}), content


def optimise_style(
    content: torch.Tensor,
    style: torch.Tensor,
    extractor: nn.Module,
    foreground: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    content_weight: float = 1.0,
    style_weight: float = 1000.0,
    style_layers: Mapping[str, float] | None = None,
    content_layer: str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Gatys style transfer of every channel of ``content`` towards the same channel of ``style``.

    Each channel is one grey image (an MR modality; batch item ``(C, 1, *spatial)`` for the extractor),
    optimised with Adam from the content itself to minimise ``content_weight * content_loss +
    style_weight * style_loss``. Outside ``foreground`` the image is held at the content's values during the
    optimisation and in the result; inside it is clamped to [-1, 1].

    Args:
        content: ``(C, *spatial)`` in [-1, 1], on the extractor's device.
        style: ``(C, *spatial')`` in [-1, 1], same device.
        extractor: frozen module mapping ``(N, 1, *spatial)`` to ``{layer: activation}``.
        foreground: ``(1, *spatial)`` bool, the pixels that may change.
        steps: Adam steps (the reference: 1000).
        lr: Adam learning rate, in the [-1, 1] units of the image.
        content_weight: weight of the content term (reference: 1).
        style_weight: weight of the style term (reference: 1000).
        style_layers: layer -> weight (default: the extractor's ``style_layers``, else all its layers, weight 1).
        content_layer: content layer (default: the extractor's ``content_layer``, else its last output).
        progress: show a tqdm bar.

    Returns:
        The styled image ``(C, *spatial)`` (detached).
    """
    if style.shape[0] != content.shape[0]:
        raise ValueError(f"the style image has {style.shape[0]} channels, the content {content.shape[0]}")
    fixed = content.detach()[:, None].float()
    keep = foreground.bool()[None].expand_as(fixed)
    weights, content_name = extractor_layers(extractor, style_layers, content_layer)
    with torch.no_grad():
        content_feats = extractor(fixed)
        style_feats = extractor(style.detach()[:, None].float())
        if not weights:
            weights = {name: 1.0 for name in content_feats}
        if content_name is None:
            content_name = list(content_feats)[-1]
        targets = style_grams(style_feats, weights)
        content_target = content_feats[content_name]
    image = fixed.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=lr)
    for _ in trange(steps, desc="style transfer", disable=not progress, leave=False):
        optimiser.zero_grad(set_to_none=True)
        current = torch.where(keep, image.clamp(-1.0, 1.0), fixed)
        feats = extractor(current)
        loss = content_weight * content_loss(feats[content_name], content_target) + style_weight * style_loss(
            feats, targets, weights
        )
        loss.sum().backward()
        optimiser.step()
    with torch.no_grad():
        return torch.where(keep, image.clamp(-1.0, 1.0), fixed)[:, 0]
