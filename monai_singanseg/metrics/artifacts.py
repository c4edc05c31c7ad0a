"""Generator artefacts: periodic (checkerboard) spectral power and the agreement of neighbouring slices.

- :func:`periodic_power`: the share of an image's spectral power (mean removed) on the frequency lines of a
  pattern repeating every ``period`` pixels. A stride-2 transposed convolution prints a 2-pixel grid, which
  puts power on the Nyquist row and column; compare a generator's output with real slices of the same size.
- :func:`neighbour_slice_ssim`: mean SSIM between consecutive axial slices of a volume inside a mask. A
  slice-by-slice renderer whose neighbouring slices disagree scores lower than the real volume does.
"""

from __future__ import annotations

import torch
from monai.metrics.regression import compute_ssim_and_cs

__all__ = ["periodic_power", "neighbour_slice_ssim"]


def periodic_power(images: torch.Tensor, period: int = 2) -> float:
    """Share of spectral power on the lines of a ``period``-pixel pattern, over every image and channel.

    Args:
        images: ``(N, C, H, W)`` images (any range); H and W must be multiples of ``period``.
        period: the pattern's period in pixels (2: a stride-2 checkerboard).

    Returns:
        Power on the frequencies whose row OR column index is a non-zero multiple of ``size / period``,
        divided by all power except the mean (a 2-pixel grid on an image scores near 1, smooth images near 0).

    Raises:
        ValueError: not 4D, or a side not a multiple of ``period``.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if period < 2 or h % period or w % period:
        raise ValueError(f"period must be >= 2 and divide the image size {h}x{w}, got {period}")
    x = images.double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().square().sum(dim=(0, 1))
    rows = torch.arange(h) % (h // period) == 0
    cols = torch.arange(w) % (w // period) == 0
    rows[0], cols[0] = False, False
    on_lines = rows[:, None] | cols[None, :]
    total = float(power.sum())
    return float(power[on_lines].sum()) / total if total > 0 else 0.0


def neighbour_slice_ssim(volume: torch.Tensor, mask: torch.Tensor, axis: int, data_range: float = 1.0) -> float:
    """Mean SSIM of every pair of consecutive slices along ``axis`` where both hold mask, inside the mask.

    Args:
        volume: ``(C, X, Y, Z)`` intensities (scaled to ``data_range``).
        mask: ``(X, Y, Z)`` region to score (e.g. the brain); window centres inside it in either slice count.
        axis: the slicing axis among the spatial axes (0, 1 or 2).
        data_range: the intensity range of ``volume``.

    Returns:
        The mean over channels and slice pairs of the mean SSIM map (7x7 Gaussian window) inside the mask.

    Raises:
        ValueError: shapes that do not match, or fewer than two consecutive slices holding mask.
    """
    if volume.ndim != 4 or tuple(mask.shape) != tuple(volume.shape[1:]):
        raise ValueError(
            f"expected a (C, X, Y, Z) volume and an (X, Y, Z) mask, got {tuple(volume.shape)} and {tuple(mask.shape)}"
        )
    planes = volume.float().movedim(1 + axis, 0)  # (S, C, A, B)
    inside = mask.bool().movedim(axis, 0)
    held = inside.flatten(1).any(1)
    pairs = [i for i in range(planes.shape[0] - 1) if held[i] and held[i + 1]]
    if not pairs:
        raise ValueError("no two consecutive slices hold mask")
    first, second = torch.tensor(pairs), torch.tensor(pairs) + 1
    scores = []
    for c in range(planes.shape[1]):
        ssim_map, _ = compute_ssim_and_cs(
            planes[first, c : c + 1],
            planes[second, c : c + 1],
            spatial_dims=2,
            kernel_size=(7, 7),
            kernel_sigma=(1.5, 1.5),
            data_range=data_range,
        )
        centres = (inside[first] | inside[second])[:, None, 3:-3, 3:-3]  # valid convolution: window centres
        scores.append(ssim_map[centres].mean())
    return float(torch.stack(scores).mean())
