"""SinGAN-Seg's losses: the WGAN-GP gradient penalty and the label-area loss.

Every tensor here carries a leading model dimension ``M`` (the batched trainer runs M models as one, a single model
is ``M = 1``), and every loss is returned per model, ``(M,)``, so that each model's gradient is its own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["gradient_penalty", "label_area_loss", "per_model_mean"]


def per_model_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of each model's slice: ``(M, ...) -> (M,)``."""
    return x.flatten(1).mean(1)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: ``(||grad critic(x_hat)||_2 - 1)^2`` per location, on interpolates ``x_hat`` between real and fake.

    The gradient norm runs over the channels at each location (SinGAN's patch critic scores every location), and the
    penalty is averaged per model.

    Args:
        critic: the M critics as one callable, ``(M, N, C, *spatial) -> (M, N, 1, *spatial)`` (e.g.
            :class:`~monai_singanseg.engines.singanseg.stacked.StackedModules`).
        real: the real tensors ``(M, N, C, *spatial)``.
        fake: generated tensors of the same shape.
        alpha: the interpolation weights ``(M, N, 1, ...)`` in [0, 1] (drawn by the caller from each model's stream).

    Returns:
        The penalty of each model, ``(M,)``, differentiable with respect to the critic's parameters.
    """
    interp = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    score = critic(interp)
    (grads,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
    return per_model_mean((grads.norm(2, dim=2) - 1.0) ** 2)


def label_area_loss(fake: torch.Tensor, real: torch.Tensor, sharpness: float = 10.0) -> torch.Tensor:
    """L1 distance between per-class label areas of ``fake`` samples and ``real``, relative to real's total.

    A pixel counts as ``sigmoid(sharpness * x)`` (x in [-1, 1], 0.5 at the 0.5 threshold of ``(x + 1) / 2``),
    a differentiable stand-in for thresholding, so faint diffuse label values do not count as tumour.

    Args:
        fake: label channels ``(N, K, *spatial)`` in [-1, 1].
        real: label channels ``(1, K, *spatial)`` in [-1, 1].
        sharpness: slope of the soft threshold.

    Returns:
        Mean over samples of ``sum_c |area_c(fake) - area_c(real)| / sum_c area_c(real)`` (areas as fractions).
    """
    area_fake = torch.sigmoid(sharpness * fake).flatten(2).mean(2)
    area_real = torch.sigmoid(sharpness * real).flatten(2).mean(2)
    return ((area_fake - area_real).abs().sum(1) / area_real.sum(1).clamp_min(1e-6)).mean()
