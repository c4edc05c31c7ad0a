"""Augmentation of the segmentation networks' training slices, on real BRATS-2013 slices."""

from __future__ import annotations

import pytest
import torch
from helpers import brats2013_item
from monai.data import get_track_meta

from monai_singanseg.data import load_case
from monai_singanseg.evaluation.augmentation import SliceAugmentation
from monai_singanseg.evaluation.segmentation import SegmentationSettings, train_segmentation
from monai_singanseg.evaluation.volumes import case_slices


@pytest.fixture(scope="module")
def tumour_slices() -> tuple[torch.Tensor, torch.Tensor]:
    """Eight tumour slices of a BRATS-2013 case at 64 px: FLAIR + T1c in [-1, 1], labels 0/1/2/4 as indices 0-4."""
    case = load_case(brats2013_item("brats_2013_pat0001_1"), label_map={3: 1})
    cs = case_slices(case, 64)
    picks = cs.tumour()[:: max(1, len(cs.tumour()) // 8)][:8]
    return cs.images[picks], cs.labels[picks]


def test_augmentation_moves_image_and_label_together_and_keeps_the_classes(tumour_slices):
    images, labels = tumour_slices
    out_images, out_labels = SliceAugmentation(seed=0, spatial_prob=1.0)(images, labels)
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert out_images.dtype == images.dtype and out_labels.dtype == labels.dtype
    assert type(out_images) is torch.Tensor and type(out_labels) is torch.Tensor and get_track_meta()
    assert set(out_labels.unique().tolist()) <= set(labels.unique().tolist())
    assert not torch.equal(out_labels, labels)  # every slice was rotated/zoomed (prob 1)
    # an image that is its own label: after the move, the image still marks the moved label's tumour
    marker = torch.where(labels > 0, 1.0, -1.0)
    augment = SliceAugmentation(seed=1, spatial_prob=1.0, contrast_prob=0.0, noise_prob=0.0, blur_prob=0.0)
    moved_marker, moved_labels = augment(marker, labels)
    tumour = moved_labels > 0
    assert ((moved_marker > 0) == tumour).float().mean() > 0.98
    assert ((moved_marker > 0) == tumour).float().mean() > ((moved_marker > 0) == (labels > 0)).float().mean() + 0.01


def test_augmentation_repeats_under_a_seed_and_changes_with_it(tumour_slices):
    images, labels = tumour_slices
    first = SliceAugmentation(seed=3)(images, labels)
    again = SliceAugmentation(seed=3)(images, labels)
    other = SliceAugmentation(seed=4)(images, labels)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_contrast_changes_each_channel_on_its_own_and_keeps_its_range(tumour_slices):
    images, labels = tumour_slices
    augment = SliceAugmentation(seed=0, spatial_prob=0.0, contrast_prob=1.0, noise_prob=0.0, blur_prob=0.0)
    out, out_labels = augment(images, labels)
    assert torch.equal(out_labels, labels)  # no spatial change at prob 0
    for c in range(images.shape[1]):  # gamma keeps each channel's min and max (background stays -1)
        assert torch.allclose(out[:, c].amin((1, 2)), images[:, c].amin((1, 2)), atol=1e-5)
        assert torch.allclose(out[:, c].amax((1, 2)), images[:, c].amax((1, 2)), atol=1e-5)
    ratios = [(out[i, 0] - images[i, 0]).abs().mean() / (out[i, 1] - images[i, 1]).abs().mean() for i in range(8)]
    assert max(ratios) / min(ratios) > 1.5  # FLAIR and T1c got different exponents


def test_segmentation_training_with_augmentation_is_deterministic_and_differs_from_without(tumour_slices):
    images, labels = tumour_slices
    labels = (labels > 0).long()
    settings = SegmentationSettings(network="basicunet", features=4, steps=6, batch_size=4, augment=True)
    kwargs = dict(seed=0, device="cpu", progress=False)
    _, first = train_segmentation(images, labels, 2, settings, **kwargs)
    _, again = train_segmentation(images, labels, 2, settings, **kwargs)
    _, plain = train_segmentation(
        images, labels, 2, SegmentationSettings(**{**settings.to_dict(), "augment": False}), **kwargs
    )
    assert first["losses"] == again["losses"]
    assert first["losses"] != plain["losses"]
    assert (
        SegmentationSettings.from_dict({k: v for k, v in settings.to_dict().items() if k != "augment"}).augment is False
    )
