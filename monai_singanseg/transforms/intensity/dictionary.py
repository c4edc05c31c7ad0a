"""Dictionary versions of the intensity transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_singanseg.transforms.intensity.array import (
    ForegroundMask,
    IntensityFromTanhRange,
    IntensityStats,
    IntensityToTanhRange,
)

__all__ = ["ForegroundMaskd", "IntensityToTanhRanged", "IntensityFromTanhRanged"]


class IntensityToTanhRanged(MapTransform):
    """Dictionary version of :class:`IntensityToTanhRange`.

    The statistics go into each MetaTensor's ``meta["intensity_stats"]`` and are kept on the transform
    (:attr:`stats`); ``inverse`` maps back using them (the inverse of a GAN's output
    is the whole point: writing synthetic images in the source's units).

    Args:
        keys: keys of the images.
        mask_key: optional key of a foreground mask; default: non-zero voxels.
        lower_percentile: foreground percentile mapped to -1.
        upper_percentile: foreground percentile mapped to +1.
        clip: clip to [-1, 1].
        use_foreground: statistics inside the foreground only, background -> -1.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str | None = None,
        lower_percentile: float = 0.0,
        upper_percentile: float = 100.0,
        clip: bool = True,
        use_foreground: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.scaler = IntensityToTanhRange(lower_percentile, upper_percentile, clip, use_foreground)
        self.stats: dict[Hashable, IntensityStats] = {}

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key], mask)
            self.stats[key] = self.scaler.last_stats  # type: ignore[assignment]
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = IntensityFromTanhRange(self.stats.get(key))(d[key], mask)
        return d


class IntensityFromTanhRanged(MapTransform):
    """Dictionary version of :class:`IntensityFromTanhRange`.

    Args:
        keys: keys of the [-1, 1] images.
        stats: statistics (dict or :class:`IntensityStats`); default: each MetaTensor's own metadata.
        mask_key: optional key of a foreground mask.
        background_tolerance: see :class:`IntensityFromTanhRange`.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        stats: IntensityStats | dict | None = None,
        mask_key: str | None = None,
        background_tolerance: float = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.restore = IntensityFromTanhRange(stats, background_tolerance)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.restore(d[key], mask)
        return d


class ForegroundMaskd(MapTransform):
    """Dictionary version of :class:`ForegroundMask`: ``d[output_key]`` = non-zero voxels of ``d[key]``.

    Args:
        keys: the image key (one).
        output_key: where to store the mask.
        allow_missing_keys: don't raise if the key is missing.
    """

    def __init__(self, keys: KeysCollection = "image", output_key: str = "brain_mask", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key
        self.transform = ForegroundMask()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.output_key] = self.transform(d[key])
        return d
