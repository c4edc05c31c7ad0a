"""Dictionary twins of the condition transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from monai_singanseg.transforms.condition.array import BuildCondition, SplitCondition, TissueClasses, draw_do_transform
from monai_singanseg.transforms.condition.deform import RandDeformCondition, TumourTransplant
from monai_singanseg.transforms.labels.array import BRATS_LABEL_VALUES

__all__ = ["TissueClassesd", "BuildConditiond", "SplitConditiond", "RandDeformConditiond", "TumourTransplantd"]


class TissueClassesd(MapTransform):
    """Dictionary :class:`TissueClasses`: ``d[output_key]`` from channel ``channel`` of ``d[image_key]``.

    Args:
        image_key: the multi-channel image.
        brain_key: the brain mask.
        output_key: where to store the tissue map.
        channel: which image channel to cluster (1 = T1 in BraTS order flair, t1, t1ce, t2).
        label_key: optional label whose tumour voxels are excluded.
        num_classes: clusters.
    """

    backend = TissueClasses.backend

    def __init__(
        self,
        image_key: str = "image",
        brain_key: str = "brain_mask",
        output_key: str = "tissue",
        channel: int = 1,
        label_key: str | None = "label",
        num_classes: int = 3,
    ) -> None:
        super().__init__([image_key, brain_key])
        self.image_key, self.brain_key, self.output_key = image_key, brain_key, output_key
        self.channel, self.label_key = channel, label_key
        self.transform = TissueClasses(num_classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        exclude = d[self.label_key] > 0 if self.label_key and self.label_key in d else None
        img = d[self.image_key][self.channel : self.channel + 1]
        d[self.output_key] = self.transform(img, d[self.brain_key], exclude)
        return d


class BuildConditiond(MapTransform):
    """Dictionary :class:`BuildCondition`: ``d[output_key] = condition(d[label_key], d[brain_key], d[tissue_key])``.

    Args:
        label_key: class-index label.
        brain_key: brain mask.
        output_key: where to store the condition.
        tissue_key: tissue map key (used iff ``tissue_classes > 0``).
        num_label_classes: label classes including background.
        tissue_classes: tissue channels.
    """

    backend = BuildCondition.backend

    def __init__(
        self,
        label_key: str = "label",
        brain_key: str = "brain_mask",
        output_key: str = "condition",
        tissue_key: str = "tissue",
        num_label_classes: int = len(BRATS_LABEL_VALUES),
        tissue_classes: int = 0,
    ) -> None:
        super().__init__([label_key, brain_key])
        self.label_key, self.brain_key, self.output_key, self.tissue_key = label_key, brain_key, output_key, tissue_key
        self.transform = BuildCondition(num_label_classes, tissue_classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        tissue = d.get(self.tissue_key) if self.transform.tissue_classes else None
        d[self.output_key] = self.transform(d[self.label_key], d[self.brain_key], tissue)
        return d


class _SeedsItsTransform(RandomizableTransform):
    """Mixin of the random dictionary twins: a ``prob`` of their own (MONAI's dictionary convention; the
    wrapped array transform ``self.transform`` keeps ``prob=1.0``), and seeding the twin seeds ``self.transform``.
    """

    transform: RandomizableTransform

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> _SeedsItsTransform:
        """Seed this transform and the array transform it wraps."""
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw whether to apply the transform (``prob``); the wrapped transform draws the rest."""
        draw_do_transform(self)


class RandDeformConditiond(_SeedsItsTransform, MapTransform):
    """Dictionary :class:`RandDeformCondition` on ``keys`` (each a condition of the same spatial size).

    As MONAI's ``Rand2DElasticd``, the deformation is drawn once per call (from the first key's size) and the
    same one is applied to every key; a call that does not deform (probability ``1 - prob``) changes no key.

    Args:
        keys: condition keys.
        prob: probability of deforming (all keys or none).
        allow_missing_keys: don't raise if a key is missing.
        kwargs: passed to :class:`RandDeformCondition` (which then always deforms: ``prob`` is this transform's).
    """

    backend = RandDeformCondition.backend

    def __init__(
        self, keys: KeysCollection = "condition", prob: float = 1.0, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.transform = RandDeformCondition(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Deform every key with one draw."""
        d = dict(data)
        first_key = self.first_key(d)
        if first_key == ():
            return d
        self.randomize(None)
        if not self._do_transform:
            return d
        first = d[first_key]
        device = first.device if isinstance(first, torch.Tensor) else None
        self.transform.randomize(tuple(np.shape(first)[1:]), device=device)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], randomize=False)
        return d


class TumourTransplantd(_SeedsItsTransform, MapTransform):
    """Dictionary :class:`TumourTransplant`: put ``d[donor_key]``'s tumour into ``d[label_key]``'s brain.

    Args:
        label_key: recipient label (replaced by the new label).
        brain_key: recipient brain mask.
        donor_key: donor label.
        prob: probability of transplanting; otherwise ``d[label_key]`` is kept.
        kwargs: passed to :class:`TumourTransplant`.
    """

    backend = TumourTransplant.backend

    def __init__(
        self,
        label_key: str = "label",
        brain_key: str = "brain_mask",
        donor_key: str = "donor_label",
        prob: float = 1.0,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, [label_key, brain_key, donor_key])
        RandomizableTransform.__init__(self, prob)
        self.label_key, self.brain_key, self.donor_key = label_key, brain_key, donor_key
        self.transform = TumourTransplant(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replace ``d[label_key]`` by the recipient label with the donor's tumour."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        d[self.label_key] = self.transform(d[self.donor_key], d[self.label_key], d[self.brain_key])
        return d


class SplitConditiond(MapTransform):
    """Dictionary :class:`SplitCondition`: ``d[condition_key]`` -> ``d[label_key]``, ``d[brain_key]`` (and
    ``d[tissue_key]``).

    Args:
        condition_key: the condition.
        label_key: where to store the class-index label.
        brain_key: where to store the brain mask.
        tissue_key: where to store the tissue map (if the condition has tissue channels).
        num_label_classes: label classes including background.
        tissue_classes: tissue channels.
    """

    backend = SplitCondition.backend

    def __init__(
        self,
        condition_key: str = "condition",
        label_key: str = "label",
        brain_key: str = "brain_mask",
        tissue_key: str = "tissue",
        num_label_classes: int = len(BRATS_LABEL_VALUES),
        tissue_classes: int = 0,
    ) -> None:
        super().__init__([condition_key])
        self.condition_key, self.label_key, self.brain_key, self.tissue_key = (
            condition_key,
            label_key,
            brain_key,
            tissue_key,
        )
        self.transform = SplitCondition(num_label_classes, tissue_classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.label_key], d[self.brain_key], tissue = self.transform(d[self.condition_key])
        if tissue is not None:
            d[self.tissue_key] = tissue
        return d
