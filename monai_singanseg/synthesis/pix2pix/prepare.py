"""pix2pix's prepare step: every case's condition and image, cut to the renderer's slice grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from monai_singanseg.data import check_distinct_cases, load_case
from monai_singanseg.engines.pix2pix import PairedSlices, Pix2PixSettings, Pix2PixSlices
from monai_singanseg.io.writers import BRATS_MODALITIES
from monai_singanseg.transforms.condition.array import BuildCondition, TissueClasses
from monai_singanseg.transforms.intensity import IntensityToTanhRange
from monai_singanseg.transforms.intensity.array import IntensityStats, foreground_mask
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES
from monai_singanseg.transforms.slices import (
    AxialSliceGrid,
    rank_tumour_slices,
)

__all__ = ["pix2pix_case_slices", "pix2pix_training_slices", "Pix2PixTrainingSet"]


def pix2pix_case_slices(
    case: Mapping[str, Any], settings: Pix2PixSettings, modalities: Sequence[str] = BRATS_MODALITIES
) -> tuple[torch.Tensor, torch.Tensor, IntensityStats]:
    """One loaded case (:func:`load_case` output) -> ``(condition slices, image slices, intensity stats)``."""
    image, label = case["image"], case["label"]
    name = case.get("name", "case")
    if image.shape[0] != len(modalities):
        raise ValueError(
            f"{name}: image has {image.shape[0]} channels, expected {len(modalities)} ({', '.join(modalities)})"
        )
    brain = foreground_mask(image.as_tensor()) | (label.as_tensor() > 0)
    scaler = IntensityToTanhRange()
    normalised = scaler(image.as_tensor(), mask=brain)
    stats = scaler.last_stats
    stats.dtype = str(image.meta.get("source_dtype", "float32"))
    tissue = None
    if settings.tissue_classes:
        if settings.tissue_modality not in modalities:
            raise ValueError(
                f"tissue_modality {settings.tissue_modality!r} is not one of the modalities {list(modalities)}"
            )
        channel = list(modalities).index(settings.tissue_modality)
        tissue = TissueClasses(settings.tissue_classes)(
            image[channel : channel + 1].as_tensor(), brain, label.as_tensor() > 0
        )
    num_classes = len(case.get("label_values", BRATS_LABEL_VALUES))
    condition = BuildCondition(num_classes, settings.tissue_classes)(label.as_tensor(), brain, tissue)
    grid = AxialSliceGrid(brain, image.affine, settings.size, settings.margin)
    if settings.all_brain_slices:
        area = brain[0].movedim(grid.axis, 0).flatten(1).sum(1)
        indices = [i for i in grid.brain_slices if area[i] >= settings.min_brain_fraction * area.max()]
    else:
        indices = sorted(rank_tumour_slices(label, grid.axis))
    cond = grid.extract_with_context(condition, indices, settings.context_slices)
    img = grid.extract(normalised, indices, mode="area", pad_value=-1.0).clamp(-1.0, 1.0)
    return cond, img, stats


def pix2pix_training_slices(
    items: Sequence[Mapping[str, Any]],
    settings: Pix2PixSettings,
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    modalities: Sequence[str] = BRATS_MODALITIES,
    progress: bool = True,
    label_map: Mapping[int, int] | None = None,
) -> Pix2PixSlices:
    """Load every case of a datalist and cut its training pairs (errors name the case's files).

    Args:
        items: datalist entries ``{"image": [flair, t1, t1ce, t2], "label": seg}``.
        settings: slice settings (size, margin, which slices, tissue classes).
        label_values: label values of the cases.
        modalities: image channel names.
        progress: show a progress bar.
        label_map: label values replaced on load (e.g. ``{3: 1}``).
    """
    if not items:
        raise ValueError("no training cases given")
    check_distinct_cases(items, "pix2pix training cases")
    conds, imgs, stats, names, dtypes = [], [], [], [], []
    for item in tqdm(items, desc="loading cases", leave=False, disable=not progress):
        case = load_case(item, label_values=label_values, spatial_ndim=3, label_map=label_map)
        if "label" not in case:
            raise ValueError(f"{case['name']}: pix2pix training needs a label for every case")
        cond, img, st = pix2pix_case_slices(case, settings, modalities)
        conds.append(cond)
        imgs.append(img)
        stats.append(st)
        names.append(case["name"])
        dtypes.append(st.dtype)
    return Pix2PixSlices(
        torch.cat(conds),
        torch.cat(imgs),
        stats,
        names,
        dtypes[0] if len(set(dtypes)) == 1 else "float32",
        tuple(int(v) for v in label_values),
        tuple(modalities),
        settings,
    )


class Pix2PixTrainingSet(PairedSlices):
    """A datalist's pix2pix training pairs as a dataset of ``{"condition", "image"}`` slices (bundles'
    ``train#dataset``).

    Args:
        data: datalist entries ``{"image": [one path per sequence], "label": path}`` (kept as ``self.data``).
        settings: slice settings (size, margin, which slices, tissue classes, 2.5D context).
        label_values: label values of the cases.
        modalities: image channel names.
        label_map: label values replaced on load (e.g. ``{3: 1}``).
        progress: show a progress bar while loading.

    Attributes:
        slices: the prepared :class:`Pix2PixSlices` (what :func:`~monai_singanseg.engines.pix2pix.pix2pix_trainer`
        takes).
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        settings: Pix2PixSettings,
        label_values: Sequence[int] = BRATS_LABEL_VALUES,
        modalities: Sequence[str] = BRATS_MODALITIES,
        label_map: Mapping[int, int] | None = None,
        progress: bool = True,
    ) -> None:
        self.data = list(data)
        self.slices = pix2pix_training_slices(self.data, settings, label_values, modalities, progress, label_map)
        super().__init__(self.slices.condition, self.slices.image)
