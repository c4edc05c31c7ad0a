"""Fine detail: the share of an image's spectral power at high spatial frequencies, per channel.

A renderer that blurs (an L1 loss pulls every pixel to the conditional mean) keeps the coarse anatomy and loses the
sulci, CSF lines and sharp grey/white borders; their power sits at high frequencies. :func:`fine_detail_share` is
the share of the power (mean removed, inside a mask) above ``cutoff`` cycles per pixel; compare a synthetic set
with real slices of the same size and mask through :func:`fine_detail_ratio` (1: as much fine detail as the real
images, below 1: blurrier, above 1: noisier or grid-like; look at the images too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["fine_detail_share", "fine_detail_ratio", "FINE_DETAIL_CUTOFF"]

#: the default frequency above which power counts as fine detail (cycles per pixel; Nyquist is 0.5).
FINE_DETAIL_CUTOFF = 0.2


def _window(inside: torch.Tensor, taper: float) -> torch.Tensor:
    """``inside`` ``(N, 1, H, W)`` in {0, 1}, tapered to 0 at its edge: Gaussian-smoothed, then times itself."""
    if taper <= 0:
        return inside
    radius = int(3 * taper + 0.5)
    grid = torch.arange(-radius, radius + 1, dtype=torch.double)
    kernel = torch.exp(-0.5 * (grid / taper) ** 2)
    kernel = kernel / kernel.sum()
    smooth = F.conv2d(F.pad(inside, (radius,) * 4), kernel.view(1, 1, 1, -1))
    smooth = F.conv2d(smooth, kernel.view(1, 1, -1, 1))
    return smooth * inside


def fine_detail_share(
    images: torch.Tensor, masks: torch.Tensor | None = None, cutoff: float = FINE_DETAIL_CUTOFF, taper: float = 2.0
) -> torch.Tensor:
    """Per channel: spectral power above ``cutoff`` cycles/pixel over all power except the mean, pooled over images.

    Each image channel has its mean inside the mask removed and is weighted by a soft window: the mask, eroded and
    smoothed by a Gaussian of ``taper`` pixels, so only the masked region (e.g. the brain) counts and the mask's own
    edge adds little power. Give real and synthetic images the same masks.

    Args:
        images: ``(N, C, H, W)`` images (any range).
        masks: ``(N, H, W)`` regions to score (non-zero inside; None: the whole image).
        cutoff: frequency in cycles per pixel, in (0, 0.5 * sqrt(2)).
        taper: the window's Gaussian sigma in pixels (0: the mask as it is).

    Returns:
        ``(C,)`` shares in [0, 1] (0 where a channel holds no power).

    Raises:
        ValueError: not 4D images, masks of another shape, or a cutoff outside its range.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    if not 0.0 < cutoff < 0.5 * 2**0.5:
        raise ValueError(f"cutoff must be in (0, 0.707) cycles per pixel, got {cutoff}")
    x = images.double()
    if masks is None:
        inside = torch.ones(x.shape[0], 1, *x.shape[2:], dtype=torch.double)
    else:
        if tuple(masks.shape) != (x.shape[0], *x.shape[2:]):
            raise ValueError(f"masks must have shape {(x.shape[0], *x.shape[2:])}, got {tuple(masks.shape)}")
        inside = (masks != 0).double()[:, None]
    count = inside.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
    x = (x - (x * inside).sum(dim=(-2, -1), keepdim=True) / count) * _window(inside, taper)
    power = torch.fft.fft2(x).abs().square().sum(dim=0)  # (C, H, W), pooled over images
    fy = torch.fft.fftfreq(x.shape[-2], dtype=torch.double)
    fx = torch.fft.fftfreq(x.shape[-1], dtype=torch.double)
    radius = (fy[:, None].square() + fx[None, :].square()).sqrt()
    total = power[:, radius > 0].sum(dim=-1)
    high = power[:, radius > cutoff].sum(dim=-1)
    return torch.where(total > 0, high / total.clamp(min=1e-300), torch.zeros_like(total)).float()


def fine_detail_ratio(
    synthetic: torch.Tensor,
    real: torch.Tensor,
    synthetic_masks: torch.Tensor | None = None,
    real_masks: torch.Tensor | None = None,
    cutoff: float = FINE_DETAIL_CUTOFF,
) -> torch.Tensor:
    """Per channel: :func:`fine_detail_share` of ``synthetic`` over that of ``real`` (``(C,)``; NaN where the real
    images hold no power)."""
    ours, theirs = fine_detail_share(synthetic, synthetic_masks, cutoff), fine_detail_share(real, real_masks, cutoff)
    return torch.where(theirs > 0, ours / theirs.clamp(min=1e-30), torch.full_like(ours, float("nan")))
