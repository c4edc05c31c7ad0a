"""The inputs a pix2pix condition is built from: a brain mask and, for models that use them, tissue classes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import MapTransform
from monai.utils import TransformBackends, convert_to_tensor

from monai_singanseg.transforms.condition.array import ConditionError, TissueClasses, check_same_grid
from monai_singanseg.transforms.intensity.array import ForegroundMask

__all__ = ["ConditionInputsd"]


class ConditionInputsd(MapTransform):
    """Complete a case with ``d[brain_key]`` and (if ``tissue_classes``) ``d[tissue_key]`` for :class:`BuildConditiond`.

    The brain mask is ``d[brain_key]`` if the case has one (non-zero = brain), else the voxels where any channel
    of ``d[image_key]`` is non-zero (a skull-stripped case). Tissue classes cluster ``d[tissue_image_key]`` if
    present, else channel ``tissue_channel`` of ``d[image_key]``, inside the brain with the tumour excluded.
    Every volume must lie on the label's grid.

    Args:
        label_key: the label (class indices or values; non-zero = tumour).
        image_key: the case's image (any channels).
        brain_key: the brain mask (read if present, else written).
        tissue_key: where the tissue map goes.
        tissue_image_key: an optional one-channel volume to cluster instead of an image channel.
        tissue_classes: tissue classes of the model's condition (0: none).
        tissue_channel: the image channel clustered into tissue classes.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        label_key: str = "label",
        image_key: str = "image",
        brain_key: str = "brain_mask",
        tissue_key: str = "tissue",
        tissue_image_key: str = "tissue_image",
        tissue_classes: int = 0,
        tissue_channel: int | None = None,
    ) -> None:
        super().__init__([label_key], allow_missing_keys=True)
        self.label_key, self.image_key, self.brain_key = label_key, image_key, brain_key
        self.tissue_key, self.tissue_image_key = tissue_key, tissue_image_key
        self.tissue = TissueClasses(tissue_classes) if tissue_classes else None
        self.tissue_channel = tissue_channel

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = d[self.label_key]
        if d.get(self.brain_key) is not None:
            check_same_grid(label, d[self.brain_key], "brain mask")
            brain = d[self.brain_key]
        elif d.get(self.image_key) is not None:
            check_same_grid(label, d[self.image_key], "image")
            brain = ForegroundMask()(d[self.image_key])
        else:
            raise ConditionError(
                f"no brain mask: the case needs '{self.brain_key}' or an '{self.image_key}' to take it from"
            )
        brain_t = convert_to_tensor(brain, track_meta=False) != 0
        if not brain_t.any():
            raise ConditionError("the brain mask is empty (no non-zero voxel)")
        d[self.brain_key] = brain
        if self.tissue is not None:
            d[self.tissue_key] = self.tissue(
                self._tissue_source(d), brain_t, convert_to_tensor(label, track_meta=False) > 0
            )
        return d

    def _tissue_source(self, d: Mapping[Hashable, Any]) -> torch.Tensor:
        label = d[self.label_key]
        if d.get(self.tissue_image_key) is not None:
            source = d[self.tissue_image_key]
            check_same_grid(label, source, "tissue image")
            return convert_to_tensor(source, track_meta=False)[:1]
        image = d.get(self.image_key)
        if image is None or self.tissue_channel is None or self.tissue_channel >= image.shape[0]:
            raise ConditionError(
                f"this model's condition holds tissue classes: the case needs '{self.tissue_image_key}' (one volume) "
                "or "
                f"an '{self.image_key}' with channel {self.tissue_channel}"
            )
        return convert_to_tensor(image, track_meta=False)[self.tissue_channel : self.tissue_channel + 1]
