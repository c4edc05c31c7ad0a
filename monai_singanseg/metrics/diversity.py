"""Sample diversity: mean pairwise structural dissimilarity (1 - SSIM), SSIM as MONAI computes it."""

from __future__ import annotations

import torch

__all__ = ["diversity", "pairwise_ssim"]


def _gaussian_1d(win_size: int, sigma: float) -> torch.Tensor:
    """The 1D factor of MONAI's SSIM window (``monai.metrics.regression._gaussian_kernel``)."""
    dist = torch.arange(start=(1 - win_size) / 2, end=(1 + win_size) / 2, step=1, dtype=torch.float)
    gauss = torch.exp(-torch.pow(dist / sigma, 2) / 2)
    return gauss / gauss.sum()


class _GaussianWindow:
    """Unpadded Gaussian local mean per channel: MONAI's SSIM window applied as one banded matrix per axis.

    Equal to MONAI's depthwise convolution with the full Gaussian kernel (which is separable), but
    computed as matrix products, which are several times faster on CPU.
    """

    def __init__(self, spatial_shape: tuple[int, ...], win_size: int, sigma: float, like: torch.Tensor) -> None:
        g = _gaussian_1d(win_size, sigma).to(like)
        self.bands = []
        for size in spatial_shape:
            band = like.new_zeros(size, size - win_size + 1)
            for k in range(size - win_size + 1):
                band[k : k + win_size, k] = g
            self.bands.append(band)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for axis, band in enumerate(self.bands, start=2):
            x = (x.movedim(axis, -1) @ band).movedim(-1, axis)
        return x


def pairwise_ssim(
    samples: torch.Tensor,
    data_range: float = 2.0,
    win_size: int = 11,
    kernel_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    batch_size: int = 32,
) -> torch.Tensor:
    """SSIM of every unordered pair of samples, equal to MONAI's :class:`~monai.metrics.SSIMMetric` (to 1e-6).

    Same definition as ``SSIMMetric(spatial_dims, data_range, win_size=win_size, kernel_sigma=kernel_sigma)``
    (Gaussian window, no padding, per channel, averaged over channels and window positions), computed
    for all ``N (N - 1) / 2`` pairs at once: the local means and variances of each sample are computed
    once, only the local covariance per pair, with MONAI's Gaussian window in separable form.

    Args:
        samples: ``(N, C, *spatial)`` with 2 or 3 spatial dimensions, ``N >= 2``.
        data_range: value range of the images (2.0 for the generators' [-1, 1] range, 255 for uint8).
        win_size: side of the SSIM window; every spatial side must be at least this long.
        kernel_sigma: standard deviation of the Gaussian window.
        k1: luminance stability constant.
        k2: contrast stability constant.
        batch_size: pairs evaluated at once (memory vs speed).

    Returns:
        ``(N * (N - 1) / 2,)`` SSIM values, pairs in ``itertools.combinations(range(N), 2)`` order.

    Raises:
        ValueError: fewer than 2 samples, not 2D/3D, NaN/Inf, or images smaller than the window.
    """
    if not isinstance(samples, torch.Tensor) or samples.ndim not in (4, 5):
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"samples must be a tensor (N, C, H, W) or (N, C, H, W, D), got {shape}")
    if samples.shape[0] < 2:
        raise ValueError(f"diversity needs at least 2 samples, got {samples.shape[0]}")
    if min(samples.shape[2:]) < win_size:
        raise ValueError(f"samples {tuple(samples.shape[2:])} are smaller than the SSIM window ({win_size})")
    if not torch.isfinite(samples).all():
        raise ValueError("samples hold NaN or infinite values")
    x = samples.float()
    window = _GaussianWindow(tuple(x.shape[2:]), win_size, kernel_sigma, like=x)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    with torch.no_grad():
        mu = window(x)
        half_den_luminance = mu * mu + c1 / 2  # (mu_i^2 + mu_j^2 + c1) = sum of the two
        half_den_contrast = window(x * x) - mu * mu + c2 / 2  # (var_i + var_j + c2) = sum of the two
        for i in range(x.shape[0] - 1):
            for start in range(i + 1, x.shape[0], batch_size):
                j = slice(start, start + batch_size)
                mu_ij = mu[j] * mu[i]
                num_contrast = window(x[j] * x[i]).sub_(mu_ij).mul_(2).add_(c2)  # 2 cov_ij + c2
                num = mu_ij.mul_(2).add_(c1).mul_(num_contrast)  # (2 mu_i mu_j + c1)(2 cov_ij + c2)
                den = (half_den_luminance[j] + half_den_luminance[i]).mul_(half_den_contrast[j] + half_den_contrast[i])
                values.append(num.div_(den).flatten(1).mean(1))
    return torch.cat(values)


def diversity(
    samples: torch.Tensor,
    data_range: float = 2.0,
    win_size: int = 11,
    kernel_sigma: float = 1.5,
    batch_size: int = 32,
) -> float:
    """Mean pairwise ``1 - SSIM`` of a set of samples: 0 when all are identical, higher = more diverse.

    Args:
        samples: ``(N, C, *spatial)`` with 2 or 3 spatial dimensions, ``N >= 2``.
        data_range: value range of the images (2.0 for [-1, 1]).
        win_size: side of the SSIM window.
        kernel_sigma: standard deviation of the Gaussian window.
        batch_size: pairs evaluated at once.

    Returns:
        ``mean over pairs (i < j) of 1 - SSIM(x_i, x_j)``; SSIM can be negative, so values may exceed 1.
    """
    ssim = pairwise_ssim(
        samples, data_range=data_range, win_size=win_size, kernel_sigma=kernel_sigma, batch_size=batch_size
    )
    return float((1.0 - ssim).mean())
