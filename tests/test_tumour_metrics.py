"""Tumour fidelity metrics and the three-plane SWD on a real BraTS volume (the 3D model's working grid)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_singanseg.metrics import (
    core_background_contact,
    orthogonal_slices,
    outer_ring,
    sliced_wasserstein_distance_3d,
    tumour_components,
    tumour_kept,
    tumour_size_ratio,
)
from monai_singanseg.synthesis import singanseg_training_input

SWD_FAST = {"num_projections": 64, "patches_per_image": 32}
#: class indices of the BraTS tumour core (labels 1 and 4 after LabelToIndex: 1 and 3); 2 is the oedema.
CORE = (1, 3)


@pytest.fixture(scope="module")
def real_volume(brats_case_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """FLAIR + T2 ``(1, 2, X, Y, Z)`` in [-1, 1] and the class-index label ``(1, 1, X, Y, Z)`` of a real case, as
    ``train-singanseg --volume`` sees it (whole brain box, long side 48)."""
    name = brats_case_dir.name
    images = [str(brats_case_dir / f"{name}_{m}.nii.gz") for m in ("flair", "t2")]
    label = str(brats_case_dir / f"{name}_seg.nii.gz")
    gan, _ = singanseg_training_input(images, label, max_size=48, volume=True, box="brain")
    one_hot = gan[2:] > 0
    label = torch.where(one_hot.any(0), gan[2:].argmax(0) + 1, 0)
    return gan[None, :2], label[None, None]


def test_outer_ring_is_the_fully_connected_neighbourhood():
    for ndim, neighbours in ((1, 2), (2, 8), (3, 26)):
        mask = torch.zeros((5,) * ndim, dtype=torch.bool)
        mask[(2,) * ndim] = True
        ring = outer_ring(mask)
        assert int(ring.sum()) == neighbours and not bool(ring[(2,) * ndim])
    corner = torch.zeros(4, 4, dtype=torch.bool)
    corner[0, 0] = True
    assert int(outer_ring(corner).sum()) == 3  # nothing beyond the border
    with pytest.raises(ValueError, match="1-3 spatial"):
        outer_ring(torch.zeros(2, 2, 2, 2, dtype=torch.bool))


def test_real_glioma_is_one_component_with_its_core_inside_the_oedema(real_volume):
    _, label = real_volume
    assert set(label.unique().tolist()) == {0, 1, 2, 3}
    assert tumour_components(label).tolist() == [1]
    real_contact = float(core_background_contact(label, CORE)[0])
    assert 0.0 < real_contact < 0.5  # most of the core's ring is oedema
    no_oedema = torch.where(label == 2, 0, label)  # a generator that drew the classes apart
    assert float(core_background_contact(no_oedema, CORE)[0]) == 1.0
    no_core = torch.where(torch.isin(label, torch.tensor(CORE)), 2, label)
    assert core_background_contact(no_core, CORE).isnan().all()
    with pytest.raises(ValueError, match="core_classes"):
        core_background_contact(label, ())


def test_tumour_components_count_fragments_and_skip_specks(real_volume):
    _, label = real_volume
    tumour = (label[0, 0] > 0).nonzero()
    centre = int(tumour[:, 0].float().median())
    split = label.clone()
    split[..., centre - 1 : centre + 2, :, :] = 0  # a 3-voxel slab through the tumour
    speck = split.clone()
    speck[0, 0, 0, 0, 0] = 2
    whole, pieces, with_speck = tumour_components(torch.cat([label, split, speck])).tolist()
    assert whole == 1 and pieces >= 2 and with_speck == pieces + 1
    assert tumour_components(speck, min_size=2).tolist() == tumour_components(split, min_size=2).tolist()
    diagonal = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    diagonal[0, 0, [0, 1, 2], [0, 1, 2]] = 1  # 8-connected in 2D: one component
    assert tumour_components(diagonal).tolist() == [1]
    assert tumour_components(torch.zeros_like(label)).tolist() == [0]


def test_tumour_kept_is_the_size_within_a_quarter_and_four_times(real_volume):
    _, label = real_volume
    tumour = (label > 0).float()
    small = torch.where(F.max_pool3d(-tumour[0], 5, stride=1, padding=2)[None] < 0, label, 0)  # eroded by 2 voxels
    big = torch.where(F.max_pool3d(tumour[0], 9, stride=1, padding=4)[None] > 0, 2, label)  # dilated by 4 voxels
    samples = torch.cat([label, small, big, torch.zeros_like(label)])
    ratio = tumour_size_ratio(samples, label)
    assert ratio[0] == 1.0 and ratio[1] < 0.25 and ratio[2] > 4.0 and ratio[3] == 0.0
    assert tumour_kept(samples, label).tolist() == [True, False, False, False]
    assert tumour_kept(samples, label, low=0.0, high=100.0).tolist() == [True, True, True, True]
    empty = torch.zeros_like(label)
    assert tumour_size_ratio(torch.cat([label, empty]), empty).tolist()[0] == float("inf")
    assert tumour_size_ratio(empty, empty).isnan().all()
    with pytest.raises(ValueError, match="low <= high"):
        tumour_kept(samples, label, low=2.0, high=1.0)
    with pytest.raises(ValueError, match=r"\(N, 1, \*spatial\)"):
        tumour_kept(label[0], label)


def test_swd_3d_sees_each_orientation(real_volume):
    image, _ = real_volume
    assert sliced_wasserstein_distance_3d(image, image, **SWD_FAST) == [0.0, 0.0, 0.0]
    # shuffling the axial slices keeps every axial slice but breaks the sagittal and coronal ones
    shuffled = image[..., torch.randperm(image.shape[-1], generator=torch.Generator().manual_seed(0))]
    sagittal, coronal, axial = sliced_wasserstein_distance_3d(image, shuffled, **SWD_FAST)
    assert axial < 0.2 * min(sagittal, coronal)
    slices = orthogonal_slices(image, 2)
    assert slices.shape[1:] == (2, *image.shape[2:4]) and 0 < len(slices) <= image.shape[-1]
    assert len(orthogonal_slices(image, 2, min_foreground=0.0)) == image.shape[-1]
    with pytest.raises(ValueError, match="3D images"):
        sliced_wasserstein_distance_3d(image[..., 0], image[..., 0])
    with pytest.raises(ValueError, match="axis 0"):
        sliced_wasserstein_distance_3d(image, torch.full_like(image, -1.0))
    with pytest.raises(ValueError, match="spatial axis"):
        orthogonal_slices(image, 3)
