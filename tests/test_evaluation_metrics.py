"""Weight-free evaluation metrics on real BraTS and Kvasir images: SWD, diversity, memorisation, label statistics."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_DATA as DATA  # noqa: E402  (one place decides where the shared data is)
from monai.metrics import SSIMMetric
from monai.transforms import LoadImage
from monai.utils import convert_to_tensor

from monai_singanseg.evaluation import (
    compare_label_statistics,
    diversity,
    flag_memorised,
    label_statistics,
    laplacian_pyramid,
    memorisation_scores,
    pairwise_ssim,
    sliced_wasserstein_distance,
    sliced_wasserstein_distance_per_level,
)
from monai_singanseg.metrics import neighbour_slice_ssim, periodic_power
from monai_singanseg.transforms.intensity import IntensityToTanhRange
from monai_singanseg.transforms.labels import IndexToOneHot, LabelToIndex

BRATS = DATA / "brats_tcga"
KVASIR = DATA / "kvasir_seg" / "images"
MODALITIES = ("flair", "t1", "t1ce", "t2")
SIZE = 96
SWD_TEST_SETTINGS = {"num_projections": 128, "patches_per_image": 64}


def _square_resize(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """Crop ``(C, H, W)`` to the bounding box of its foreground (any channel > -1), pad square, resize."""
    fg = (x > -1).any(dim=0).nonzero()
    (y0, x0), (y1, x1) = fg.min(dim=0).values.tolist(), (fg.max(dim=0).values + 1).tolist()
    crop = x[:, y0:y1, x0:x1]
    side = max(crop.shape[1:])
    pad_h, pad_w = side - crop.shape[1], side - crop.shape[2]
    crop = F.pad(crop, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-1.0)
    return F.interpolate(crop[None], size=(size, size), mode="area")[0]


def _load_brats_case(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The tumour slab of a case: 4 MR volumes in [-1, 1] ``(4, H, W, D')`` and class indices ``(1, H, W, D')``."""
    loader = LoadImage(image_only=True)
    seg = convert_to_tensor(loader(BRATS / case / f"{case}_seg.nii.gz"), track_meta=False)
    slab = (seg > 0).any(dim=0).any(dim=0).nonzero()[:, 0]
    z0, z1 = int(slab.min()), int(slab.max()) + 1
    index = LabelToIndex()(seg[None, ..., z0:z1])
    mr = [convert_to_tensor(loader(BRATS / case / f"{case}_{m}.nii.gz"), track_meta=False) for m in MODALITIES]
    return IntensityToTanhRange()(torch.stack([m[..., z0:z1] for m in mr]).float()).float(), index


def _slice_channels(mr: torch.Tensor, index: torch.Tensor, z: int) -> torch.Tensor:
    """Axial slice ``z`` as the generators see it: 4 MR + 3 one-hot tumour channels in [-1, 1], resized."""
    onehot = IndexToOneHot(num_classes=4)(index[..., z]).float() * 2.0 - 1.0
    return _square_resize(torch.cat([mr[..., z], onehot]))


def _tumour_slices(index: torch.Tensor) -> list[int]:
    """Axial slices holding tumour, largest tumour first."""
    area = (index[0] > 0).sum(dim=(0, 1))
    return [int(z) for z in torch.argsort(area, descending=True) if area[z] > 0]


def _load_kvasir(index: int) -> torch.Tensor:
    """A Kvasir-SEG RGB image in [-1, 1], resized to ``SIZE``."""
    path = sorted(KVASIR.glob("*.jpg"))[index]
    img = convert_to_tensor(LoadImage(image_only=True, ensure_channel_first=True)(path), track_meta=False).float()
    img = img.permute(0, 2, 1)  # ITK/PIL reader gives (C, W, H)
    return F.interpolate(img[None], size=(SIZE, SIZE), mode="area")[0] / 127.5 - 1.0


def _mild_augmentations(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Horizontal flip, small shifts and a small intensity jitter of one ``(C, H, W)`` image -> ``(4, C, H, W)``."""
    g = torch.Generator().manual_seed(seed)
    jitter = (x * 1.03 + 0.02 + 0.01 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return torch.stack([x.flip(-1), torch.roll(x, (2, -3), (-2, -1)), torch.roll(x, (-3, 1), (-2, -1)), jitter])


@pytest.fixture(scope="module")
def brats() -> dict:
    fg_mr, fg_index = _load_brats_case("TCGA-FG-6692")
    du_mr, du_index = _load_brats_case("TCGA-DU-7294")
    fg_slices = _tumour_slices(fg_index)
    z = fg_slices[0]
    return {
        "fg": _slice_channels(fg_mr, fg_index, z),
        "fg_label": fg_index[..., z],
        "fg_training": torch.stack([_slice_channels(fg_mr, fg_index, k) for k in fg_slices]),
        "du": _slice_channels(du_mr, du_index, _tumour_slices(du_index)[0]),
    }


def test_swd_ranks_own_augmentations_closer_than_unrelated_brats(brats):
    real = brats["fg"][None]
    assert real.shape == (1, 7, SIZE, SIZE)
    own = sliced_wasserstein_distance(real, _mild_augmentations(brats["fg"]), **SWD_TEST_SETTINGS)
    other = sliced_wasserstein_distance(real, _mild_augmentations(brats["du"]), **SWD_TEST_SETTINGS)
    assert own < 0.6 * other  # measured: 0.10 vs 0.25


def test_swd_ranks_own_augmentations_closer_than_unrelated_rgb():
    polyp, other_polyp = _load_kvasir(0), _load_kvasir(1)
    real = polyp[None]
    own = sliced_wasserstein_distance(real, _mild_augmentations(polyp), **SWD_TEST_SETTINGS)
    other = sliced_wasserstein_distance(real, _mild_augmentations(other_polyp), **SWD_TEST_SETTINGS)
    assert own < 0.6 * other  # measured: 0.10 vs 0.49


def test_swd_of_identical_sets_is_zero_and_symmetric(brats):
    real, other = brats["fg"][None], brats["du"][None]
    assert sliced_wasserstein_distance_per_level(real, real, num_projections=64) == [0.0, 0.0, 0.0]  # 96, 48, 24 px
    ab = sliced_wasserstein_distance(real, other, num_projections=128, patches_per_image=256)
    ba = sliced_wasserstein_distance(other, real, num_projections=128, patches_per_image=256)
    assert ab > 0.1
    assert ba == pytest.approx(ab, rel=1e-5)  # pooled normalisation and shared patch positions


def test_swd_is_deterministic_under_a_seed(brats):
    real, fake = brats["fg"][None], _mild_augmentations(brats["du"])
    kwargs = {"num_projections": 64, "patches_per_image": 32}
    first = sliced_wasserstein_distance_per_level(real, fake, seed=3, **kwargs)
    assert sliced_wasserstein_distance_per_level(real, fake, seed=3, **kwargs) == first
    assert sliced_wasserstein_distance_per_level(real, fake, seed=4, **kwargs) != first
    assert sliced_wasserstein_distance(real, fake, seed=3, **kwargs) == pytest.approx(float(np.mean(first)))


def test_swd_pooled_normalisation_sees_contrast_changes_separate_does_not(brats):
    real = brats["fg"][None]
    dimmed = real * 0.5 + 0.1  # a per-channel affine intensity change
    kwargs = {"num_projections": 64, "patches_per_image": 64}
    assert sliced_wasserstein_distance(real, dimmed, normalization="separate", **kwargs) < 1e-4
    assert sliced_wasserstein_distance(real, dimmed, normalization="pooled", **kwargs) > 0.05


def test_laplacian_pyramid_adds_back_up_to_the_image(brats):
    x = brats["fg"][None]
    pyramid = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyramid] == [96, 48, 24]
    down = pyramid[2]
    for level in (1, 0):  # collapse: up-sample the coarser Gaussian level and add the band
        up = torch.zeros(1, 7, down.shape[-2] * 2, down.shape[-1] * 2)
        up[..., ::2, ::2] = down
        kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        kernel = (torch.outer(kernel, kernel) / 64.0).expand(7, 1, 5, 5)
        down = pyramid[level] + F.conv2d(F.pad(up, [2, 2, 2, 2], mode="reflect"), kernel, groups=7)
    assert torch.allclose(down, x, atol=1e-5)


def test_swd_rejects_bad_input(brats):
    real = brats["fg"][None]
    with pytest.raises(ValueError, match="same channels"):
        sliced_wasserstein_distance(real, real[:, :3])
    with pytest.raises(ValueError, match="at least 16 px"):
        sliced_wasserstein_distance(real[..., :12, :12], real[..., :12, :12])
    with pytest.raises(ValueError, match="NaN"):
        sliced_wasserstein_distance(real, torch.full_like(real, float("nan")))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        sliced_wasserstein_distance(real[0], real[0])
    with pytest.raises(ValueError, match="normalization"):
        sliced_wasserstein_distance(real, real, normalization="real")


def test_diversity_zero_for_identical_samples_positive_for_different(brats):
    same = brats["fg"][None].repeat(3, 1, 1, 1)
    assert diversity(same) == pytest.approx(0.0, abs=1e-6)
    mild = diversity(torch.stack([brats["fg"], torch.roll(brats["fg"], (2, -3), (-2, -1))]))
    unrelated = diversity(torch.stack([brats["fg"], brats["du"]]))
    assert 0.0 < mild < unrelated
    with pytest.raises(ValueError, match="at least 2 samples"):
        diversity(brats["fg"][None])


def test_pairwise_ssim_equals_monai_ssim_metric(brats):
    samples = torch.cat([brats["fg_training"][:4], _mild_augmentations(brats["du"])[:2]])
    pairs = list(itertools.combinations(range(samples.shape[0]), 2))
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    expected = SSIMMetric(spatial_dims=2, data_range=2.0)(samples[first], samples[second]).flatten()
    assert torch.allclose(pairwise_ssim(samples, batch_size=3), expected, atol=1e-5)


def test_memorisation_flags_an_exact_copy_of_a_training_slice_only(brats):
    training = brats["fg_training"]  # every tumour slice of the training case
    assert training.shape[0] > 20
    k = 5
    samples = torch.stack([training[k], training[k] * 0.8 - 0.1, brats["du"]])
    result = memorisation_scores(samples, training, batch_size=8)  # several reference batches
    assert result.scores[0] == pytest.approx(1.0, abs=1e-5) and int(result.indices[0]) == k
    assert result.scores[1] == pytest.approx(1.0, abs=1e-5)  # correlation ignores a global gain/offset
    assert result.scores[2] < 0.95
    assert flag_memorised(result).tolist() == [True, True, False]
    assert flag_memorised(result.scores, threshold=1.0).tolist() == [False, False, False]
    with pytest.raises(ValueError, match="same"):
        memorisation_scores(samples, training[..., :48, :48])


def test_label_statistics_on_known_masks():
    labels = torch.zeros(3, 1, 10, 10, dtype=torch.long)
    labels[0, 0, :2, :2] = 1  # 4 px of class 1
    labels[0, 0, 5, :2] = 3  # 2 px of class 3
    labels[2, 0, 3, 2:8] = 2  # 6 px of class 2; map 1 stays empty
    stats = label_statistics(labels, num_classes=4, class_names=("core", "oedema", "enhancing"))
    assert stats["num_samples"] == 3
    assert stats["tumour_area_mean"] == pytest.approx(4.0)
    assert stats["tumour_area_sd"] == pytest.approx(8.0**0.5)  # population sd of [6, 0, 6]
    assert stats["class_area_mean"] == pytest.approx({"core": 4 / 3, "oedema": 2.0, "enhancing": 2 / 3})
    assert stats["class_proportions"] == pytest.approx({"core": 4 / 12, "oedema": 6 / 12, "enhancing": 2 / 12})
    assert stats["empty_fraction"] == pytest.approx(1 / 3)

    real = labels[:1]  # areas [6]: 4 core, 2 enhancing
    comparison = compare_label_statistics(labels, real, num_classes=4)
    assert comparison["tumour_area_ratio"] == pytest.approx(4.0 / 6.0)
    expected_difference = {"1": 4 / 12 - 4 / 6, "2": 0.5, "3": 2 / 12 - 2 / 6}
    assert comparison["class_proportion_difference"] == pytest.approx(expected_difference)
    assert comparison["class_proportion_tv"] == pytest.approx(0.5)
    assert comparison["empty_fraction_difference"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        label_statistics(labels + 1, num_classes=4)
    with pytest.raises(ValueError, match=r"\(N, 1, \*spatial\)"):
        label_statistics(labels[:, 0], num_classes=4)


def test_label_statistics_match_the_real_brats_label_file(brats):
    seg = np.asanyarray(nib.load(BRATS / "TCGA-FG-6692" / "TCGA-FG-6692_seg.nii.gz").dataobj)
    seg = seg[..., int((seg > 0).sum(axis=(0, 1)).argmax())]  # the fixture's slice: largest tumour area
    counts = {value: int((seg == value).sum()) for value in (1, 2, 4)}
    stats = label_statistics(brats["fg_label"][None], num_classes=4)
    assert stats["tumour_area_mean"] == sum(counts.values()) > 0
    total = sum(counts.values())
    expected = {"1": counts[1] / total, "2": counts[2] / total, "3": counts[4] / total}  # BraTS 4 is class 3
    assert stats["class_proportions"] == pytest.approx(expected)
    assert stats["empty_fraction"] == 0.0


def test_periodic_power_finds_a_stride_2_grid_added_to_a_real_slice(brats):
    slices = brats["fg_training"][:4]  # (N, 4, 96, 96) real tumour slices in [-1, 1]
    grid = torch.zeros(1, 1, SIZE, SIZE)
    grid[..., ::2, ::2] = 1.0
    clean = periodic_power(slices)
    gridded = periodic_power(slices + 0.1 * grid)
    assert clean < 0.01  # real anatomy holds little power at the Nyquist frequency
    assert gridded > 5 * clean
    assert periodic_power(grid) == pytest.approx(1.0)
    assert periodic_power(slices, period=4) >= clean  # the period-4 lines include the period-2 ones
    with pytest.raises(ValueError, match="period must be >= 2"):
        periodic_power(slices, period=5)
    with pytest.raises(ValueError, match="expected"):
        periodic_power(slices[0])


@pytest.mark.slow
def test_neighbour_slice_ssim_of_a_real_volume_drops_when_its_slices_are_shuffled():
    mr, index = _load_brats_case("TCGA-FG-6692")  # (4, X, Y, Z) in [-1, 1]
    volume = (mr + 1) / 2
    brain = (mr > -1).any(0)
    real = neighbour_slice_ssim(volume, brain, axis=2)
    order = torch.randperm(volume.shape[-1], generator=torch.Generator().manual_seed(0))
    shuffled = neighbour_slice_ssim(volume[..., order], brain[..., order], axis=2)
    assert 0.5 < real < 1.0
    assert shuffled < real - 0.2
    middle = volume.shape[-1] // 2
    repeated = volume[..., middle : middle + 1].expand_as(volume).clone()
    assert neighbour_slice_ssim(repeated, brain[..., middle : middle + 1].expand_as(brain), axis=2) == pytest.approx(
        1.0, abs=1e-4
    )
    with pytest.raises(ValueError, match="no two consecutive slices"):
        neighbour_slice_ssim(volume, torch.zeros_like(brain), axis=2)
