"""Dictionary versions of the intensity transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys

from monai_singanseg.transforms.intensity.array import (
    INTENSITY_STATS_KEY,
    ForegroundMask,
    IntensityFromTanhRange,
    IntensityStats,
    IntensityToTanhRange,
)
from monai_singanseg.transforms.labels.dictionary import pop_trace_entry

__all__ = ["ForegroundMaskd", "IntensityToTanhRanged", "IntensityFromTanhRanged"]


class IntensityToTanhRanged(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`IntensityToTanhRange`, invertible in a ``monai.transforms.Compose``.

    The statistics of each item go into its MetaTensor's ``meta["intensity_stats"]`` and into the item's
    transform trace (MONAI's ``applied_operations``, or ``d["<key>_transforms"]`` for plain arrays, via
    ``push_transform``). ``inverse`` maps each item back to source units and dtype with *that item's own*
    statistics (the inverse of a GAN's output is the whole point: writing synthetic images in the source's
    units), so one instance can scale many cases and still invert every one of them. :attr:`stats` holds the
    statistics of the last call per key, for information only.

    Args:
        keys: keys of the images.
        mask_key: optional key of a foreground mask; default: non-zero voxels.
        lower_percentile: foreground percentile mapped to -1.
        upper_percentile: foreground percentile mapped to +1.
        clip: clip to [-1, 1].
        use_foreground: statistics inside the foreground only, background -> -1.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = IntensityToTanhRange.backend

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

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Scale every key to [-1, 1] and record its statistics in its metadata and transform trace."""
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key], mask)
            stats: IntensityStats = self.scaler.last_stats  # type: ignore[assignment]
            self.stats[key] = stats
            self.push_transform(d, key, extra_info={INTENSITY_STATS_KEY: stats.to_dict()})
        return d

    def _item_stats(self, d: dict[Hashable, Any], key: Hashable) -> IntensityStats:
        """The statistics ``key``'s item was scaled with: from its trace entry (popped), else its metadata.

        Raises:
            ValueError: the item carries neither.
        """
        xform = pop_trace_entry(self, d, key)
        info = (xform or {}).get(TraceKeys.EXTRA_INFO) or {}
        if INTENSITY_STATS_KEY in info:
            return IntensityStats.from_dict(info[INTENSITY_STATS_KEY])
        item = d[key]
        if isinstance(item, MetaTensor) and INTENSITY_STATS_KEY in item.meta:
            return IntensityStats.from_dict(item.meta[INTENSITY_STATS_KEY])
        raise ValueError(
            f"{key!r}: no intensity statistics to invert with (neither a trace of {type(self).__name__} "
            f"nor meta['{INTENSITY_STATS_KEY}'])"
        )

    def inverse(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Map every key back to source units and dtype with the item's own statistics."""
        d = dict(data)
        mask = d[self.mask_key] if self.mask_key is not None else None
        for key in self.key_iterator(d):
            d[key] = IntensityFromTanhRange(self._item_stats(d, key))(d[key], mask)
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

    backend = IntensityFromTanhRange.backend

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

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Map every key back to source units."""
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

    backend = ForegroundMask.backend

    def __init__(
        self, keys: KeysCollection = "image", output_key: str = "brain_mask", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key
        self.transform = ForegroundMask()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Store the mask of the image key under ``output_key``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.output_key] = self.transform(d[key])
        return d
