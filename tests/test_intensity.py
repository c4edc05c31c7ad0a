from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_singanseg.data import load_case
from monai_singanseg.transforms import (
    IntensityFromTanhRange,
    IntensityFromTanhRanged,
    IntensityStats,
    IntensityToTanhRange,
    IntensityToTanhRanged,
    foreground_mask,
)


@pytest.fixture(scope="module")
def case(brats_item):
    return load_case(brats_item)


def test_scaling_spans_minus_one_to_one_inside_the_brain(case):
    img = case["image"]
    out = IntensityToTanhRange()(img)
    brain = foreground_mask(img.as_tensor())[0]
    assert out.shape == img.shape
    for c in range(4):
        assert float(out[c][brain].min()) == pytest.approx(-1.0) and float(out[c][brain].max()) == pytest.approx(1.0)
        assert bool((out[c][~brain] == -1.0).all())
    stats = IntensityStats.from_dict(out.meta["intensity_stats"])
    assert stats.dtype == "int16" and len(stats.low) == 4


def test_scaling_inverts_within_dtype_precision(case):
    img = case["image"]
    brain = foreground_mask(img.as_tensor())
    scaled = IntensityToTanhRange()(img)
    restored = IntensityFromTanhRange()(scaled, mask=brain)  # statistics from the MetaTensor's metadata
    assert restored.dtype == torch.int16
    assert torch.equal(restored.as_tensor().to(torch.int32), img.as_tensor().to(torch.int32))


def test_dictionary_inverse_restores_source_units(case):
    img = case["image"]
    mask = foreground_mask(img.as_tensor())
    t = IntensityToTanhRanged("image", mask_key="mask")
    d = t({"image": img, "mask": mask})
    back = t.inverse(d)["image"]
    assert torch.equal(back.as_tensor().to(torch.int32), img.as_tensor().to(torch.int32))
    stats = d["image"].meta["intensity_stats"]
    restored = IntensityFromTanhRanged("image", stats=stats, mask_key="mask")(d)["image"]
    assert torch.equal(restored.as_tensor().to(torch.int32), img.as_tensor().to(torch.int32))


def test_percentile_clipping_and_generated_values_stay_in_dtype_range(case):
    img = case["image"]
    scaled = IntensityToTanhRange(0.5, 99.5)(img)
    assert float(scaled.max()) <= 1.0 and float(scaled.min()) >= -1.0
    fake = torch.rand_like(scaled.as_tensor()) * 2 - 1
    out = IntensityFromTanhRange(scaled.meta["intensity_stats"])(fake)
    info = np.iinfo(np.int16)
    assert out.dtype == torch.int16 and int(out.min()) >= info.min and int(out.max()) <= info.max


def test_nan_is_rejected():
    img = torch.ones(1, 4, 4)
    img[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        IntensityToTanhRange()(img)


def test_channel_count_must_match_statistics():
    with pytest.raises(ValueError, match="channels"):
        IntensityFromTanhRange(IntensityStats([0.0], [1.0]))(torch.zeros(2, 3, 3))


def test_zscored_case_background_is_found_and_written_back(shared_data):
    """BRATS-2013 volumes are z-scored after skull stripping: their background is a constant -mean/std, not 0.
    The foreground is the brain (as the case's own brain mask says), and writing back restores that background."""
    from monai_singanseg.data import load_image

    folder = shared_data / "brats2013" / "brats_2013_pat0001_1"
    flair = load_image(folder / "Flair_subtrMeanDivStd.nii.gz", 3, "image")
    brain = load_image(folder / "brainmask.nii.gz", 3, "label").as_tensor() > 0
    assert bool((flair != 0).all())  # "non-zero" would call the whole volume brain
    mask = torch.as_tensor(foreground_mask(flair.as_tensor()))
    assert float((mask == brain).float().mean()) > 0.999
    scaler = IntensityToTanhRange()
    out = scaler(flair)
    background = float(flair[0, 0, 0, 0])
    assert scaler.last_stats.background == [pytest.approx(background)] and background < -1.0
    back = IntensityFromTanhRange(scaler.last_stats)(out, mask=mask)
    np.testing.assert_allclose(back.as_tensor()[~brain], background, atol=1e-5)
    inside = (mask & brain)[0]  # the few brain voxels at exactly the background value are background
    np.testing.assert_allclose(back.as_tensor()[0][inside], flair.as_tensor()[0][inside], atol=1e-4)


def test_a_border_without_one_dominant_value_means_a_zero_background():
    noise = torch.rand(2, 16, 16, 8) + 1.0  # nothing is background: every voxel is foreground
    assert bool(torch.as_tensor(foreground_mask(noise)).all())
    assert foreground_mask(noise.numpy()).dtype == np.bool_
