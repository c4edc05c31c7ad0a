from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_singanseg.data import load_case
from monai_singanseg.io.writers import write_nifti
from monai_singanseg.transforms import (
    ExtractSlice,
    ExtractTumourSlicesd,
    SlicesToVolume,
    SquareForegroundCropd,
    TumourSliceError,
    axial_axis,
    tumour_area_per_slice,
)


@pytest.fixture(scope="module")
def case(brats_item):
    return load_case(brats_item)


def _world_to_voxel(src_affine: np.ndarray, affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Source voxel indices of every voxel of an image with ``affine`` and ``shape``."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, len(shape))
    if grid.shape[1] == 2:
        grid = np.concatenate([grid, np.zeros((len(grid), 1))], axis=1)
    homog = np.concatenate([grid, np.ones((len(grid), 1))], axis=1)
    vox = (np.linalg.inv(src_affine) @ affine @ homog.T).T[:, :3]
    assert np.allclose(vox, np.round(vox), atol=1e-4), "slice voxels must fall on source voxel centres"
    return tuple(np.round(vox).astype(int).T)


def test_axial_axis_follows_the_affine():
    assert axial_axis(torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))) == 2
    sagittal_stack = torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])  # axis 1 is S-I
    assert axial_axis(sagittal_stack) == 1


def test_tumour_slices_are_ranked_by_area(case):
    slices = ExtractTumourSlicesd(num_slices=5)(case)
    area = tumour_area_per_slice(case["label"], 2)
    ranked = [s["slice_index"] for s in slices]
    assert ranked[0] == int(area.argmax()) == 87
    assert [int(area[k]) for k in ranked] == sorted((int(area[k]) for k in ranked), reverse=True)
    assert slices[0]["image"].shape == (4, 240, 240) and slices[0]["label"].shape == (1, 240, 240)
    above = ExtractTumourSlicesd(min_area=1000)(case)
    assert all(int(area[s["slice_index"]]) >= 1000 for s in above) and len(above) < len(slices) + 40


def test_slice_written_back_equals_source_voxels_at_same_world_coordinates(case, brats_case_dir, tmp_path):
    s = ExtractTumourSlicesd(num_slices=1)(case)[0]
    cropped = SquareForegroundCropd(spatial_size=None)(s)  # crop to the brain, no resampling
    path = write_nifti(tmp_path / "slice_flair.nii.gz", cropped["image"][0], cropped["image"].affine, "int16")
    written = nib.load(str(path))
    src = nib.load(str(brats_case_dir / "TCGA-FG-6692_flair.nii.gz"))
    data = np.asarray(written.dataobj)
    assert data.shape[2] == 1 and data.shape[:2] == tuple(cropped["image"].shape[1:])
    idx = _world_to_voxel(src.affine, written.affine, data.shape)
    assert np.array_equal(np.asarray(src.dataobj)[idx], data.reshape(-1))
    assert (idx[2] == s["slice_index"]).all()


def test_crop_resize_inverse_returns_to_the_slice_grid(case):
    s = ExtractTumourSlicesd(num_slices=1)(case)[0]
    t = SquareForegroundCropd(spatial_size=128)
    small = t(s)
    assert small["image"].shape == (4, 128, 128) and small["label"].shape == (1, 128, 128)
    assert set(torch.unique(small["label"]).tolist()) <= {0, 1, 2, 3}
    back = t.inverse(small)
    assert back["image"].shape == s["image"].shape
    assert torch.allclose(back["image"].affine, s["image"].affine, atol=1e-6)
    agree = (back["label"].as_tensor().round() == s["label"].as_tensor()).float().mean()
    assert agree > 0.98  # nearest-neighbour down/up sampling of the label


def test_slices_go_back_into_the_volume_where_they_came_from(case):
    img = case["image"]
    picks = [s for s in ExtractTumourSlicesd(num_slices=3)(case)]
    vol = SlicesToVolume(img.shape[1:], img.affine)([p["image"] for p in picks])
    assert vol.shape == img.shape
    for p in picks:
        k = p["slice_index"]
        assert torch.equal(vol[..., k], img.as_tensor()[..., k])
    untouched = [k for k in range(img.shape[-1]) if k not in {p["slice_index"] for p in picks}]
    assert bool((vol[..., untouched] == 0).all())


def test_off_grid_slice_is_rejected(case):
    img = case["image"]
    s = ExtractSlice()(img, 80)
    s.affine = s.affine.clone()
    s.affine[0, 3] += 0.5
    with pytest.raises(ValueError, match="grid"):
        SlicesToVolume(img.shape[1:], img.affine)([s])


def test_empty_label_has_no_tumour_slices(case):
    empty = dict(case)
    empty["label"] = case["label"].clone()
    empty["label"].zero_()
    with pytest.raises(TumourSliceError, match="TCGA-FG-6692_seg"):
        ExtractTumourSlicesd(num_slices=1)(empty)


def test_context_slices_stack_each_slices_neighbours_in_order(case):
    from monai_singanseg.transforms.intensity import foreground_mask
    from monai_singanseg.transforms.slices import AxialSliceGrid

    brain = foreground_mask(case["image"].as_tensor())
    grid = AxialSliceGrid(brain, case["image"].affine, 64)
    label = case["label"].as_tensor().float()
    last = label.shape[1 + grid.axis] - 1
    indices = [0, grid.brain_slices[len(grid.brain_slices) // 2], last]
    stacked = grid.extract_with_context(label, indices, context=2)
    assert stacked.shape == (3, 5, 64, 64)
    for j, offset in enumerate(range(-2, 3)):  # slice z-2 first ... z+2 last; the volume's ends repeat
        expected = grid.extract(label, [min(max(i + offset, 0), last) for i in indices], mode="nearest-exact")
        assert torch.equal(stacked[:, j : j + 1], expected)
    middle = stacked[1]
    assert not torch.equal(middle[0], middle[4])  # the neighbours differ from each other in the tumour
    assert torch.equal(
        grid.extract_with_context(label, indices, context=0), grid.extract(label, indices, mode="nearest-exact")
    )
    with pytest.raises(ValueError, match="context slices must be >= 0"):
        grid.extract_with_context(label, indices, context=-1)


def test_bicubic_paste_keeps_more_of_a_real_volume_s_fine_detail_than_bilinear(case):
    """The real FLAIR volume through the 128 px grid and back: pasted bicubically, more of its power above 0.2
    cycles/px survives (the renders are pasted so); probabilities keep the bilinear paste, which stays in range."""
    from monai_singanseg.metrics import fine_detail_share
    from monai_singanseg.transforms.intensity import foreground_mask
    from monai_singanseg.transforms.slices import AxialSliceGrid

    flair = case["image"].as_tensor()[:1].float()
    brain = foreground_mask(case["image"].as_tensor())
    grid = AxialSliceGrid(brain, case["image"].affine, 128)
    assert grid.side > 128  # the box is downsampled, so the way back matters
    slices = grid.extract(flair, grid.brain_slices, mode="area")
    shares = {}
    for mode in ("bilinear", "bicubic"):
        back = grid.paste(slices, grid.brain_slices, torch.zeros_like(flair), mode=mode)
        planes = back.movedim(1 + grid.axis, 0)[grid.brain_slices]  # (N, 1, A, B)
        masks = torch.as_tensor(brain)[0].movedim(grid.axis, 0)[grid.brain_slices]
        shares[mode] = float(fine_detail_share(planes, masks)[0])
    real = float(fine_detail_share(flair.movedim(1 + grid.axis, 0)[grid.brain_slices], masks)[0])
    assert shares["bilinear"] < shares["bicubic"] < real
    assert shares["bicubic"] > 1.1 * shares["bilinear"]
    probabilities = torch.softmax(torch.randn(4, 3, 128, 128), dim=1)
    pasted = grid.paste(probabilities, grid.brain_slices[:4], torch.zeros(3, *flair.shape[1:]))
    assert float(pasted.min()) >= 0.0 and float(pasted.max()) <= 1.0
    with pytest.raises(ValueError, match="paste mode must be 'bilinear' or 'bicubic', got 'area'"):
        grid.paste(slices, grid.brain_slices, torch.zeros_like(flair), mode="area")
