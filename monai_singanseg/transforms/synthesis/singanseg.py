"""Randomizable MONAI transforms that draw synthetic (image, label) pairs from a trained SinGAN-Seg model.

Drop :class:`SinGANSegSampled` into any MONAI pipeline to train on synthetic pairs drawn online; the pair
carries the source slice's affine and metadata, so it can be written or resampled like the real slice.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable, Transform

from monai_singanseg.io.modelfile import ModelFile
from monai_singanseg.transforms.intensity.array import INTENSITY_STATS_KEY

if TYPE_CHECKING:  # the engines import this package, so the sampler is imported when first needed
    from monai_singanseg.engines.singan_sampler import SinGANSegSampler

__all__ = ["SinGANSegSample", "SinGANSegSampled"]


class SinGANSegSample(Randomizable, Transform):
    """Draw one synthetic ``(image, label)`` pair of MetaTensors from a SinGAN-Seg model.

    The image is ``(Ci, *sp)`` in [-1, 1] (or the source units and dtype with ``source_units=True``), the
    label ``(1, *sp)`` class indices ``0..K-1`` (or label values, e.g. BraTS 0/1/2/4, with
    ``label_values=True``). Both carry the source slice's affine and ``meta["source_name"]``,
    ``meta["synthetic"] = True``, ``meta["label_values"]`` and ``meta["intensity_stats"]``.

    Args:
        model: model file path, a loaded :class:`ModelFile` or a :class:`SinGANSegSampler`.
        start_scale: scale where random noise starts (higher = closer to the training slice).
        size: output spatial size (None: the training size); the pixel spacing of the affine is scaled to match.
        threshold: background unless the largest label channel exceeds it.
        min_component: remove tumour components smaller than this many pixels.
        source_units: image in source units/dtype instead of [-1, 1].
        label_values: label values instead of class indices.
        device: device to run the generator on.
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile | SinGANSegSampler,
        start_scale: int = 0,
        size: Sequence[int] | None = None,
        threshold: float = 0.5,
        min_component: int = 0,
        source_units: bool = False,
        label_values: bool = False,
        device: str | torch.device | None = "cpu",
    ) -> None:
        from monai_singanseg.engines.singan_sampler import SinGANSegSampler

        self.sampler = model if isinstance(model, SinGANSegSampler) else SinGANSegSampler(model, device=device)
        if not 0 <= start_scale < self.sampler.num_scales:
            raise ValueError(f"start_scale must lie in [0, {self.sampler.num_scales - 1}], got {start_scale}")
        self.start_scale = start_scale
        self.size = None if size is None else [int(v) for v in size]
        self.sampler.scaled_sizes(self.size)  # validates the size
        self.threshold = threshold
        self.min_component = min_component
        self.source_units = source_units
        self.label_values = label_values
        self._seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw the seed of the next sample from this transform's random state (``set_random_state``)."""
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def _meta(self) -> dict[str, Any]:
        cfg = self.sampler.config
        return {
            "affine": self.sampler.affine_for(self.size),
            "source_name": cfg.get("source_name"),
            "source_slice_index": cfg.get("source_slice_index"),
            "filename_or_obj": f"{cfg.get('source_name', 'singanseg')}_synthetic_{self._seed}",
            "synthetic": True,
            "sample_seed": self._seed,
            "label_values": list(self.sampler.label_values),
            "image_channels": list(cfg.get("image_channels", [])),
            INTENSITY_STATS_KEY: self.sampler.stats.to_dict(),
        }

    def __call__(self, data: Any = None, randomize: bool = True) -> tuple[MetaTensor, MetaTensor]:
        """Return a new synthetic ``(image, label)`` pair (``data`` is ignored)."""
        if randomize:
            self.randomize()
        x = self.sampler.sample(1, start_scale=self.start_scale, size=self.size, seed=self._seed)
        image, label = self.sampler.split(x, self.threshold, self.min_component)
        image, label = image[0].cpu(), label[0].cpu()
        if self.source_units or self.label_values:
            src_image, src_label = self.sampler.to_source(image, label)
            if self.source_units:
                image = torch.from_numpy(src_image)
            if self.label_values:
                label = torch.from_numpy(src_label)
        meta = self._meta()
        return MetaTensor(image, meta=dict(meta)), MetaTensor(label, meta=dict(meta))


class SinGANSegSampled(Randomizable, MapTransform):
    """Dictionary form of :class:`SinGANSegSample`: sets ``keys = (image_key, label_key)`` to a synthetic pair.

    Other entries of the dictionary are kept, so it can replace (or stand beside) a real-data loader.

    Args:
        keys: the image key and the label key, in that order.
        model: model file path, :class:`ModelFile` or :class:`SinGANSegSampler`.
        kwargs: the other arguments of :class:`SinGANSegSample`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        model: str | os.PathLike | ModelFile | SinGANSegSampler,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {self.keys}")
        self.sample = SinGANSegSample(model, **kwargs)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> SinGANSegSampled:
        super().set_random_state(seed, state)
        self.sample.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.sample.randomize()

    def __call__(self, data: Mapping[Hashable, Any] | None = None) -> dict[Hashable, Any]:
        d = dict(data or {})
        self.randomize()
        image, label = self.sample(randomize=False)
        image_key, label_key = self.keys
        d[image_key], d[label_key] = image, label
        return d

