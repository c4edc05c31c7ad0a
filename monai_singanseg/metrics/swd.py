"""Multi-scale sliced Wasserstein distance (SWD) between patch distributions, ProGAN-style.

Karras et al. (ICLR 2018, "Progressive growing of GANs") compare the distributions of 7x7 patches
drawn from every level of a Laplacian pyramid of real and generated images: each patch becomes one
descriptor (channels x 7 x 7 values, normalised per channel), and the Wasserstein-1 distance between
the two descriptor clouds is approximated by averaging exact 1D Wasserstein distances along random
unit directions. Fine levels measure texture and edges, coarse levels layout and intensity.

Needs no pretrained network, works for any channel count (BraTS: 4 MR sequences + 3 tumour-class
channels; RGB: 3), and is deterministic under a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "sliced_wasserstein_distance",
    "sliced_wasserstein_distance_per_level",
    "sliced_wasserstein_distance_3d",
    "orthogonal_slices",
    "laplacian_pyramid",
]

#: 5-tap binomial filter of cv2.pyrDown / ProGAN's metric, normalised to sum 1.
_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)
_NORMALIZATIONS = ("pooled", "separate")


def _gaussian_kernel(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k1d = torch.tensor(_BINOMIAL_5, dtype=dtype, device=device)
    k2d = torch.outer(k1d, k1d)
    k2d = k2d / k2d.sum()
    return k2d.expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 5x5 binomial blur with mirror (reflect) borders, as ``scipy.ndimage.convolve(mode="mirror")``."""
    pad = [2, 2, 2, 2]
    if min(x.shape[-2:]) <= 2:  # reflect padding needs a side longer than the pad
        return F.conv2d(F.pad(x, pad, mode="replicate"), kernel, groups=x.shape[1])
    return F.conv2d(F.pad(x, pad, mode="reflect"), kernel, groups=x.shape[1])


def _pyr_down(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return _blur(x, kernel)[..., ::2, ::2]


def _pyr_up(x: torch.Tensor, kernel: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    return (_blur(up, kernel) * 4.0)[..., : size[0], : size[1]]


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of a batch, finest level first; the last level is the low-pass residual.

    Args:
        images: ``(N, C, H, W)`` float tensor.
        num_levels: number of levels (1 = the image itself).

    Returns:
        ``num_levels`` tensors; level ``i`` has about ``H / 2**i`` x ``W / 2**i`` pixels, and the
        levels add back up to the image (``level_i + up(gaussian_{i+1})``).
    """
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    kernel = _gaussian_kernel(images.shape[1], images.dtype, images.device)
    pyramid = [images]
    for _ in range(1, num_levels):
        down = _pyr_down(pyramid[-1], kernel)
        pyramid[-1] = pyramid[-1] - _pyr_up(down, kernel, pyramid[-1].shape[-2:])
        pyramid.append(down)
    return pyramid


def _num_levels(shapes: Sequence[Sequence[int]], min_resolution: int) -> int:
    """ProGAN's rule: one level per halving while the shortest side stays >= ``min_resolution``."""
    size = min(min(s[-2:]) for s in shapes)
    levels = 0
    while size >= min_resolution:
        levels += 1
        size //= 2
    return levels


def _check_images(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a batch of 2D images (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")


def _patch_descriptors(
    level: torch.Tensor, num_patches: int, patch_size: int, rng: np.random.Generator
) -> torch.Tensor:
    """``num_patches`` random ``patch_size`` x ``patch_size`` patches, ``(num_patches, C, p, p)``.

    Images are used in turn (patch ``i`` comes from image ``i % N``) so that every image contributes
    equally, and positions are drawn uniformly among the fully-inside ones.
    """
    n, c, h, w = level.shape
    image_index = torch.arange(num_patches) % n
    top = torch.from_numpy(rng.integers(0, h - patch_size + 1, size=num_patches))
    left = torch.from_numpy(rng.integers(0, w - patch_size + 1, size=num_patches))
    offsets = torch.arange(patch_size)
    rows = (top[:, None] + offsets)[:, None, :, None]  # (P, 1, p, 1)
    cols = (left[:, None] + offsets)[:, None, None, :]  # (P, 1, 1, p)
    chans = torch.arange(c)[None, :, None, None]  # (1, C, 1, 1)
    dev = level.device
    return level[image_index.to(dev)[:, None, None, None], chans.to(dev), rows.to(dev), cols.to(dev)]


def _channel_stats(desc: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    # a channel that is constant at this level (e.g. an absent tumour class) is centred but not scaled
    return mean, torch.where(std > eps, std, torch.ones_like(std))


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, num_projections: int, rng: np.random.Generator) -> float:
    """Mean over random unit directions of the exact 1D Wasserstein-1 distance of the projections."""
    directions = torch.from_numpy(rng.standard_normal((a.shape[1], num_projections))).to(a)
    directions = directions / directions.norm(dim=0, keepdim=True)
    # (direction, descriptor): sorting along the contiguous last dimension is much faster on CPU
    proj_a = torch.sort((directions.T @ a.T).contiguous(), dim=1).values
    proj_b = torch.sort((directions.T @ b.T).contiguous(), dim=1).values
    return float((proj_a - proj_b).abs().mean())


def sliced_wasserstein_distance_per_level(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_projections: int = 512,
    patches_per_image: int = 128,
    seed: int = 0,
    patch_size: int = 7,
    min_resolution: int = 16,
    normalization: str = "pooled",
    eps: float = 1e-6,
) -> list[float]:
    """Sliced Wasserstein distance between the patch distributions of two image sets, per pyramid level.

    Both sets are decomposed into Laplacian pyramids (ProGAN: levels down to a side of
    ``min_resolution``, e.g. 128, 64, 32, 16 for 128 px images). At every level the same number of
    random ``patch_size`` x ``patch_size`` patches, ``patches_per_image x max(N_real, N_fake)``, is
    drawn from each set (patch positions come from the same seeded stream for both sets, so identical
    inputs give exactly 0), each patch is normalised per channel, flattened into a descriptor of
    ``C x patch_size**2`` values, and the distance is the mean, over ``num_projections`` random unit
    directions, of the 1D Wasserstein-1 distance between the projected descriptors.

    Args:
        real: reference images ``(N, C, H, W)``, e.g. the training slice(s), in the generator's range.
        fake: synthetic images ``(M, C, H', W')``, same channel count; ``N`` and ``M`` may differ.
        num_projections: random directions per level (ProGAN: 4 x 128 = 512).
        patches_per_image: patches per image of the larger set, per level (ProGAN: 128).
        seed: seed of patch positions and directions; the result is deterministic under it.
        patch_size: side of the square patches (ProGAN: 7).
        min_resolution: coarsest level's shortest side (ProGAN: 16); images must be at least this big.
        normalization: ``"pooled"`` (default) standardises both descriptor sets per channel with the
            statistics of their union: the distance is symmetric and global intensity or contrast
            shifts of the synthetic images count. ``"separate"`` standardises each set by its own
            statistics as in ProGAN's code, which makes the metric blind to per-channel affine
            intensity changes.
        eps: standard deviations below this are treated as a constant channel (centred, not scaled).

    Returns:
        One distance per level, finest level first (lower is closer; 0 for identical sets).

    Raises:
        ValueError: inputs not ``(N, C, H, W)``, channel counts differ, NaN/Inf, images smaller than
            ``min_resolution`` or ``patch_size``, or an unknown ``normalization``.
    """
    _check_images("real", real)
    _check_images("fake", fake)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same channels, got {real.shape[1]} and {fake.shape[1]}")
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
    if num_projections < 1 or patches_per_image < 1 or patch_size < 1:
        raise ValueError("num_projections, patches_per_image and patch_size must be >= 1")
    if min_resolution < patch_size:
        raise ValueError(f"min_resolution ({min_resolution}) must be >= patch_size ({patch_size})")
    num_levels = _num_levels([real.shape, fake.shape], min_resolution)
    if num_levels == 0:
        raise ValueError(
            f"images must be at least {min_resolution} px on each side for the SWD, got real "
            f"{tuple(real.shape[-2:])} and fake {tuple(fake.shape[-2:])}"
        )
    num_patches = patches_per_image * max(real.shape[0], fake.shape[0])
    with torch.no_grad():
        pyr_real = laplacian_pyramid(real.float(), num_levels)
        pyr_fake = laplacian_pyramid(fake.float().to(real.device), num_levels)
        distances = []
        for level, (lr, lf) in enumerate(zip(pyr_real, pyr_fake)):
            desc_real = _patch_descriptors(lr, num_patches, patch_size, np.random.default_rng([seed, level, 0]))
            desc_fake = _patch_descriptors(lf, num_patches, patch_size, np.random.default_rng([seed, level, 0]))
            if normalization == "pooled":
                mean_r, std_r = _channel_stats(torch.cat([desc_real, desc_fake]), eps)
                mean_f, std_f = mean_r, std_r
            else:
                mean_r, std_r = _channel_stats(desc_real, eps)
                mean_f, std_f = _channel_stats(desc_fake, eps)
            desc_real = ((desc_real - mean_r) / std_r).flatten(1)
            desc_fake = ((desc_fake - mean_f) / std_f).flatten(1)
            rng_dirs = np.random.default_rng([seed, level, 1])
            distances.append(_sliced_wasserstein(desc_real, desc_fake, num_projections, rng_dirs))
    return distances


def sliced_wasserstein_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_projections: int = 512,
    patches_per_image: int = 128,
    seed: int = 0,
    patch_size: int = 7,
    min_resolution: int = 16,
    normalization: str = "pooled",
) -> float:
    """Multi-scale sliced Wasserstein distance: the mean over pyramid levels.

    See :func:`sliced_wasserstein_distance_per_level` for the method and the arguments.

    Args:
        real: reference images ``(N, C, H, W)``.
        fake: synthetic images ``(M, C, H', W')``.
        num_projections: random directions per level.
        patches_per_image: patches per image of the larger set, per level.
        seed: seed of patch positions and directions.
        patch_size: side of the square patches.
        min_resolution: coarsest level's shortest side.
        normalization: ``"pooled"`` (default) or ``"separate"`` (ProGAN).

    Returns:
        The average of the per-level distances (lower is closer; 0 for identical sets).
    """
    per_level = sliced_wasserstein_distance_per_level(
        real,
        fake,
        num_projections=num_projections,
        patches_per_image=patches_per_image,
        seed=seed,
        patch_size=patch_size,
        min_resolution=min_resolution,
        normalization=normalization,
    )
    return float(np.mean(per_level))


def orthogonal_slices(
    volumes: torch.Tensor, axis: int, min_foreground: float = 0.05, background: float = -1.0, tolerance: float = 0.1
) -> torch.Tensor:
    """The 2D slices along one spatial axis of a batch of volumes, keeping those with enough foreground.

    Args:
        volumes: ``(N, C, X, Y, Z)`` images in the generator's range.
        axis: spatial axis the slices are taken along (0, 1 or 2).
        min_foreground: least share of foreground pixels a slice needs (drops the empty slices around a brain).
        background: image value of the background.
        tolerance: a pixel is foreground when any channel exceeds ``background + tolerance``.

    Returns:
        ``(M, C, h, w)``: the kept slices of all volumes.
    """
    if not isinstance(volumes, torch.Tensor) or volumes.ndim != 5:
        shape = tuple(volumes.shape) if isinstance(volumes, torch.Tensor) else type(volumes).__name__
        raise ValueError(f"volumes must be a batch of 3D images (N, C, X, Y, Z), got {shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be a spatial axis 0, 1 or 2, got {axis}")
    slices = volumes.movedim(axis + 2, 1).flatten(0, 1)  # (N * n, C, h, w)
    foreground = (slices > background + tolerance).any(1).flatten(1).float().mean(1)
    return slices[foreground >= min_foreground]


def sliced_wasserstein_distance_3d(
    real: torch.Tensor, fake: torch.Tensor, min_foreground: float = 0.05, background: float = -1.0, **kwargs
) -> list[float]:
    """SWD of two sets of volumes on their slices of each orientation (the three orthogonal planes).

    The slices along each spatial axis with at least ``min_foreground`` foreground (:func:`orthogonal_slices`) of
    ``real`` and of ``fake`` are compared with :func:`sliced_wasserstein_distance`, so texture and layout count in
    every plane (a model can look right axially and wrong sagittally).

    Args:
        real: reference volumes ``(N, C, X, Y, Z)``, e.g. the training volume.
        fake: synthetic volumes ``(M, C, X', Y', Z')``, same channel count.
        min_foreground: least share of foreground pixels a slice needs.
        background: image value of the background.
        kwargs: passed to :func:`sliced_wasserstein_distance` (``num_projections``, ``seed``, ``min_resolution``...).

    Returns:
        Three distances, one per spatial axis the slices are taken along (lower is closer; 0 for identical sets).

    Raises:
        ValueError: not 5D, or an orientation with no slice of enough foreground.
    """
    distances = []
    for axis in range(3):
        pair = [orthogonal_slices(v, axis, min_foreground, background) for v in (real, fake)]
        for name, slices in zip(("real", "fake"), pair):
            if not len(slices):
                raise ValueError(f"{name} has no slice along axis {axis} with >= {min_foreground:.0%} foreground")
        distances.append(sliced_wasserstein_distance(*pair, **kwargs))
    return distances
