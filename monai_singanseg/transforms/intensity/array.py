"""Intensity transforms: source units <-> the generators' [-1, 1] range, per channel, inside the foreground."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor, get_equivalent_dtype

from monai_singanseg.options import Settings
from monai_singanseg.transforms.containers import like_input

__all__ = [
    "ForegroundMask",
    "IntensityStats",
    "IntensityToTanhRange",
    "IntensityFromTanhRange",
    "foreground_mask",
    "background_values",
    "INTENSITY_STATS_KEY",
    "SOURCE_DTYPE_KEY",
]

#: metadata key under which :class:`IntensityToTanhRange` stores the statistics of a MetaTensor.
INTENSITY_STATS_KEY = "intensity_stats"
#: metadata key a loader sets to the dtype of the file on disk.
SOURCE_DTYPE_KEY = "source_dtype"


@dataclass
class IntensityStats(Settings):
    """Per-channel statistics that map source intensities to [-1, 1] and back.

    Args:
        low: source value mapped to -1, per channel.
        high: source value mapped to +1, per channel.
        dtype: the source dtype (``"int16"``, ``"float32"``, ``"uint8"`` ...); integer output is rounded
            and clipped to its range.
        background: value written outside the foreground, per channel.
    """

    low: list[float]
    high: list[float]
    dtype: str = "float32"
    background: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high):
            raise ValueError("low and high must have one value per channel")
        if not self.background:
            self.background = [0.0] * len(self.low)


def _border(t: torch.Tensor) -> torch.Tensor:
    """The voxels on the faces of a channel-first tensor's spatial box, ``(C, N)``."""
    faces = []
    for d in range(1, t.ndim):
        faces += [t.select(d, 0).reshape(t.shape[0], -1), t.select(d, t.shape[d] - 1).reshape(t.shape[0], -1)]
    return torch.cat(faces, dim=1)


def background_values(img: NdarrayOrTensor, min_share: float = 0.5) -> list[float]:
    """Each channel's background value: the most common value on the image's border when it covers at least
    ``min_share`` of the border (a skull-stripped case: 0; a case z-scored after skull stripping: ``-mean/std``),
    else 0.

    Args:
        img: channel-first image.
        min_share: share of the border voxels the most common value must hold.
    """
    border = _border(convert_to_tensor(img, track_meta=False)).cpu()
    values = []
    for channel in border:
        unique, counts = torch.unique(channel, return_counts=True)
        best = int(counts.argmax())
        values.append(float(unique[best]) if counts[best] >= min_share * channel.numel() else 0.0)
    return values


def foreground_mask(img: NdarrayOrTensor, background: Sequence[float] | None = None) -> NdarrayOrTensor:
    """Voxels where any channel differs from its background value (:func:`background_values`, 0 for a skull-stripped
    MR case): the brain, ``(1, *spatial)`` bool.

    Args:
        img: channel-first image, a torch tensor (any device) or a numpy array.
        background: each channel's background value, when already known (None: :func:`background_values`).

    Returns:
        A bool mask of the input's kind (numpy in, numpy out; a tensor stays on its device).
    """
    t = convert_to_tensor(img, track_meta=False)
    values = background_values(t) if background is None else list(background)
    bg = torch.tensor(values, dtype=t.dtype, device=t.device).view(-1, *([1] * (t.ndim - 1)))
    mask = (t != bg).any(dim=0, keepdim=True)
    return convert_to_numpy(mask) if isinstance(img, np.ndarray) else mask


class ForegroundMask(Transform):
    """``(C, *spatial)`` image -> ``(1, *spatial)`` uint8 mask of voxels where any channel is non-zero (the brain).

    Accepts numpy arrays and torch tensors on any device and returns the input's type (a MetaTensor keeps its
    metadata).
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args:
        img: channel-first image ``(C, *spatial)``.
        """
        mask = foreground_mask(convert_to_tensor(img, track_meta=False)).to(torch.uint8)
        return like_input(mask, img, keep_trace=False)


def _source_dtype(img: NdarrayOrTensor) -> str:
    """The dtype to restore: ``meta["source_dtype"]`` of a MetaTensor, else the image's own dtype."""
    if isinstance(img, MetaTensor) and SOURCE_DTYPE_KEY in img.meta:
        return str(img.meta[SOURCE_DTYPE_KEY])
    return str(img.dtype).replace("torch.", "")


class IntensityToTanhRange(Transform):
    """Scale each channel linearly so its foreground spans [-1, 1]; background becomes -1.

    The statistics are computed inside the foreground (non-zero voxels of any channel, i.e. the brain
    of a skull-stripped case, or a given mask) and returned via :attr:`last_stats`; for a MetaTensor
    they are also stored in ``meta["intensity_stats"]`` so that synthetic output can be written back
    in the source's range and dtype with :class:`IntensityFromTanhRange`.

    Args:
        lower_percentile: foreground percentile mapped to -1 (0 = minimum: exactly invertible).
        upper_percentile: foreground percentile mapped to +1 (100 = maximum).
        clip: clip to [-1, 1] (only matters with percentiles inside (0, 100)).
        use_foreground: compute statistics inside the foreground only and set background to -1; set
            False for images without a zero background (RGB endoscopy).

    Numpy arrays and torch tensors (CPU or CUDA) are accepted; the output has the input's type and device
    (float32; a MetaTensor keeps its metadata and gains ``meta["intensity_stats"]``).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        lower_percentile: float = 0.0,
        upper_percentile: float = 100.0,
        clip: bool = True,
        use_foreground: bool = True,
    ) -> None:
        if not 0.0 <= lower_percentile < upper_percentile <= 100.0:
            raise ValueError("need 0 <= lower_percentile < upper_percentile <= 100")
        self.lower_percentile = lower_percentile
        self.upper_percentile = upper_percentile
        self.clip = clip
        self.use_foreground = use_foreground
        self.last_stats: IntensityStats | None = None

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """Args:
        img: channel-first image.
        mask: optional foreground mask ``(1, *spatial)``; defaults to non-zero voxels.
        """
        t = convert_to_tensor(img, track_meta=False).float()
        if not torch.isfinite(t).all():
            raise ValueError("image holds NaN or infinite values")
        background = background_values(t) if self.use_foreground else None
        if self.use_foreground:
            fg = (
                foreground_mask(t, background)
                if mask is None
                else convert_to_tensor(mask, track_meta=False, device=t.device).bool()
            )
        else:
            fg = torch.ones_like(t[:1], dtype=torch.bool)
        if not fg.any():
            raise ValueError("image foreground is empty (all voxels are zero)")
        low, high = [], []
        out = torch.empty_like(t)
        for c in range(t.shape[0]):
            values = convert_to_numpy(t[c][fg[0]].double())  # numpy's percentile on the CPU, from any device
            lo = float(np.percentile(values, self.lower_percentile))
            hi = float(np.percentile(values, self.upper_percentile))
            if hi <= lo:
                hi = lo + 1.0
            low.append(lo)
            high.append(hi)
            out[c] = (2.0 * (t[c].double() - lo) / (hi - lo) - 1.0).float()
        if self.clip:
            out = out.clamp(-1.0, 1.0)
        if self.use_foreground:
            out = torch.where(fg, out, torch.full_like(out, -1.0))
        stats = IntensityStats(low=low, high=high, dtype=_source_dtype(img), background=background or [])
        self.last_stats = stats
        res = like_input(out, img)
        if isinstance(res, MetaTensor):
            res.meta[INTENSITY_STATS_KEY] = stats.to_dict()
        return res


class IntensityFromTanhRange(Transform):
    """Map [-1, 1] channels back to source units and dtype (inverse of :class:`IntensityToTanhRange`).

    Voxels outside the foreground get the background value. The foreground is a given mask, or else
    the voxels where any channel is above ``-1 + background_tolerance``.

    Args:
        stats: the statistics; if None they are taken from a MetaTensor's ``meta["intensity_stats"]``.
        background_tolerance: how far above -1 a voxel must be in some channel to count as foreground.

    Numpy arrays and torch tensors (CPU or CUDA) are accepted; the output has the input's type and device, in
    the source dtype.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, stats: IntensityStats | dict | None = None, background_tolerance: float = 1e-3) -> None:
        self.stats = IntensityStats.from_dict(stats) if isinstance(stats, dict) else stats
        self.background_tolerance = background_tolerance

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """Args:
        img: channel-first image in [-1, 1].
        mask: optional foreground mask ``(1, *spatial)``; defaults to voxels above ``-1 + background_tolerance``.

        Raises:
            ValueError: no statistics, or a channel count that differs from the statistics'.
        """
        stats = self.stats
        if stats is None and isinstance(img, MetaTensor) and INTENSITY_STATS_KEY in img.meta:
            stats = IntensityStats.from_dict(img.meta[INTENSITY_STATS_KEY])
        if stats is None:
            raise ValueError("no intensity statistics: pass stats= or a MetaTensor carrying meta['intensity_stats']")
        t = convert_to_tensor(img, track_meta=False).double()
        if t.shape[0] != len(stats.low):
            raise ValueError(f"image has {t.shape[0]} channels but the statistics describe {len(stats.low)}")
        low = torch.tensor(stats.low, dtype=torch.float64, device=t.device).view(-1, *([1] * (t.ndim - 1)))
        high = torch.tensor(stats.high, dtype=torch.float64, device=t.device).view_as(low)
        bg = torch.tensor(stats.background, dtype=torch.float64, device=t.device).view_as(low)
        out = low + (t.clamp(-1.0, 1.0) + 1.0) * 0.5 * (high - low)
        if mask is None:
            fg = (t > -1.0 + self.background_tolerance).any(dim=0, keepdim=True)
        else:
            fg = convert_to_tensor(mask, track_meta=False, device=t.device).bool()
        out = torch.where(fg, out, bg.expand_as(out))
        np_dtype = np.dtype(stats.dtype)
        if np.issubdtype(np_dtype, np.integer):
            info = np.iinfo(np_dtype)
            out = torch.round(out).clamp(info.min, info.max)
        if isinstance(img, np.ndarray):
            return convert_to_numpy(out).astype(np_dtype)
        return like_input(_cast(out, np_dtype), img)


def _cast(out: torch.Tensor, np_dtype: np.dtype) -> torch.Tensor:
    """``out`` (float64, already rounded and clipped for integer dtypes) in the torch equivalent of ``np_dtype``.

    Dtypes torch cannot hold (e.g. ``uint32`` in older releases) go through numpy on the CPU and come back
    to ``out``'s device.
    """
    try:
        torch_dtype = get_equivalent_dtype(np_dtype, torch.Tensor)
        if isinstance(torch_dtype, torch.dtype):
            return out.to(torch_dtype)
    except (KeyError, TypeError, ValueError):
        pass
    return torch.from_numpy(convert_to_numpy(out).astype(np_dtype)).to(out.device)
