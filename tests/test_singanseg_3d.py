"""3D SinGAN-Seg: a whole-brain model of one real BraTS volume, trained and sampled through the command line."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import assert_same_model, cli, kill_after_first_scale
from helpers import train_args as train_command
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing

from monai_singanseg.io.model_config import ModelConfigError, SinGANSegModelConfig
from monai_singanseg.io.modelfile import load_model_file
from monai_singanseg.synthesis import TUMOUR_BOX_MARGIN
from monai_singanseg.transforms.slices import IsotropicForegroundCropd, ResampleToGridd

TINY_3D = [
    "--volume",
    "--max-size",
    "20",
    "--min-size",
    "8",
    "--stages",
    "3",
    "--iters",
    "3",
    "--threads",
    "1",
    "--quiet",
]


def voxel_spacing_of(affine) -> list[float]:
    return affine_to_spacing(torch.as_tensor(affine, dtype=torch.float64), r=3).tolist()


def train_args(item: dict, out: Path, box: str = "brain") -> list[str]:
    """``train-singanseg --volume`` of ``item`` with tiny settings; the module's model learns the whole brain."""
    return [*train_command(item, out, TINY_3D), "--box", box]


@pytest.fixture(scope="module")
def model3d(brats_item, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vol") / "model3d.pt"
    res = cli(*train_args(brats_item, out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "volume" in res.stdout
    return out


def _box_corners(path: str, margin: int = 2) -> np.ndarray:
    """World coordinates of the outer corners of the bounding box (+ margin) of a source volume's non-zero voxels
    (an image: the brain; a label: the tumour)."""
    img = nib.load(path)
    voxels = np.argwhere(np.asarray(img.dataobj) != 0)
    lo = np.maximum(voxels.min(0) - margin, 0) - 0.5
    hi = np.minimum(voxels.max(0) + margin, np.array(img.shape) - 1) + 0.5
    return np.stack([(img.affine @ np.r_[c, 1.0])[:3] for c in (lo, hi)])


@pytest.mark.slow
def test_3d_model_learns_the_whole_brain_at_isotropic_voxels(model3d, brats_item):
    cfg = load_model_file(model3d, expected_kind="singanseg").config
    assert cfg.complete and cfg.spatial_dims == 3 and cfg.source_slice_index is None
    assert max(cfg.scale_sizes[-1]) == 20 and len(cfg.scale_sizes[-1]) == 3
    assert min(cfg.scale_sizes[0]) == 8
    spacing = voxel_spacing_of(cfg.source_affine)
    assert max(spacing) / min(spacing) < 1.06  # isotropic up to rounding of the box to whole voxels
    src = nib.load(brats_item["label"])
    assert cfg.source_grid_shape == list(src.shape)
    np.testing.assert_allclose(cfg.source_grid_affine, src.affine, atol=1e-6)


def test_generated_volumes_keep_the_world_geometry_of_the_brain_box(model3d, brats_item, tmp_path):
    out = tmp_path / "syn"
    res = cli("generate", "--model", str(model3d), "--num", "2", "--out", str(out), "--seed", "3")
    assert res.returncode == 0, res.stderr[-3000:]
    corners = _box_corners(brats_item["image"][0])
    cfg = load_model_file(model3d).config
    for i in range(2):
        seg = nib.load(out / f"TCGA-FG-6692_syn000{i}_seg.nii.gz")
        flair = nib.load(out / f"TCGA-FG-6692_syn000{i}_flair.nii.gz")
        assert seg.shape == flair.shape == tuple(cfg.scale_sizes[-1])
        np.testing.assert_allclose(flair.affine, seg.affine)
        assert flair.get_data_dtype() == np.int16
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1, 2, 4}
        n = np.array(seg.shape)
        written = np.stack([(seg.affine @ np.r_[c, 1.0])[:3] for c in (np.full(3, -0.5), n - 0.5)])
        np.testing.assert_allclose(written, corners, atol=1e-3)  # the corners of the crop, in millimetres
    assert (out / "preview.png").stat().st_size > 0


@pytest.mark.slow
def test_a_tumour_box_model_works_on_the_tumour_and_its_margin(model3d, brats_item, tmp_path):
    model = tmp_path / "tumour_box.pt"
    res = cli(*train_command(brats_item, model, TINY_3D))  # no --box: the tumour box is a 3D model's default
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "syn"
    res = cli("generate", "--model", str(model), "--num", "1", "--out", str(out), "--sheet", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    seg = nib.load(out / "TCGA-FG-6692_syn0000_seg.nii.gz")
    n = np.array(seg.shape)
    written = np.stack([(seg.affine @ np.r_[c, 1.0])[:3] for c in (np.full(3, -0.5), n - 0.5)])
    np.testing.assert_allclose(written, _box_corners(brats_item["label"], TUMOUR_BOX_MARGIN), atol=1e-3)
    voxel = {m: max(voxel_spacing_of(load_model_file(m).config.source_affine)) for m in (model, model3d)}
    assert voxel[model] < 0.75 * voxel[model3d]  # same working size on a smaller box: finer voxels on the tumour
    slice_args = [a for a in train_args(brats_item, tmp_path / "m.pt") if a != "--volume"]
    res = cli(*slice_args, "--box", "tumour")
    assert res.returncode != 0 and "--box tumour" in res.stderr and not (tmp_path / "m.pt").exists()


def test_paste_writes_samples_into_the_whole_source_grid(model3d, brats_item, tmp_path):
    out = tmp_path / "pasted"
    res = cli("generate", "--model", str(model3d), "--num", "1", "--out", str(out), "--paste", "--sheet", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    src = nib.load(brats_item["image"][0])
    flair = nib.load(out / "TCGA-FG-6692_syn0000_flair.nii.gz")
    assert flair.shape == src.shape
    np.testing.assert_allclose(flair.affine, src.affine, atol=1e-6)
    data = np.asarray(flair.dataobj)
    inside = np.argwhere(data != 0)
    assert len(inside) > 0.5 * np.count_nonzero(np.asarray(src.dataobj))  # a whole brain, not a speck
    box = np.argwhere(np.asarray(src.dataobj) != 0)
    # inside the brain box (+ its margin of 2 and half a working voxel of trilinear reach, in 1 mm source voxels)
    reach = 2 + int(np.ceil(max(voxel_spacing_of(load_model_file(model3d).config.source_affine)) / 2)) + 1
    assert (inside.min(0) >= box.min(0) - reach).all() and (inside.max(0) <= box.max(0) + reach).all()


@pytest.mark.slow
def test_a_killed_3d_training_resumes_to_the_uninterrupted_model(model3d, brats_item, tmp_path):
    out = tmp_path / "resumed.pt"
    kill_after_first_scale(train_args(brats_item, out), out)
    res = cli(*train_args(brats_item, out), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_same_model(model3d, out)


@pytest.mark.slow
def test_volume_training_refuses_a_2d_picture_and_a_slice_index(brats_item, shared_data, tmp_path):
    picture = sorted((shared_data / "kvasir_seg" / "images").glob("*.jpg"))[0]
    mask = shared_data / "kvasir_seg" / "masks" / picture.name
    res = cli(
        "train-singanseg", "--volume", "--image", str(picture), "--label", str(mask), "--out", str(tmp_path / "m.pt")
    )
    assert res.returncode != 0 and "needs a volume" in res.stderr and str(picture) in res.stderr
    res = cli(*train_args(brats_item, tmp_path / "m.pt"), "--slice", "80")
    assert res.returncode != 0 and "--slice 80" in res.stderr and "whole volume" in res.stderr
    assert not (tmp_path / "m.pt").exists()
    res = cli(
        "generate",
        "--model",
        str(Path(__file__).resolve().parents[1] / "bundles/singanseg/models/singanseg.pt"),
        "--num",
        "1",
        "--out",
        str(tmp_path / "g"),
        "--paste",
    )
    assert res.returncode != 0 and "no source volume grid" in res.stderr and not (tmp_path / "g").exists()


def test_isotropic_crop_of_an_anisotropic_volume_and_its_inverse():
    """1 x 1 x 3 mm voxels: the working grid has equal voxels in mm, the long physical side gets max_size voxels."""
    image = torch.zeros(1, 60, 50, 20)
    image[0, 10:50, 5:45, 2:18] = torch.rand(40, 40, 16) + 1.0  # a 40 x 40 x 48 mm "brain"
    label = torch.zeros(1, 60, 50, 20)
    label[0, 20:30, 20:30, 8:12] = 1
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64))
    data = {"image": MetaTensor(image, affine=affine), "label": MetaTensor(label, affine=affine)}
    crop = IsotropicForegroundCropd(max_size=24, margin=0)
    out = crop(data)
    assert tuple(out["image"].shape[1:]) == (20, 20, 24)  # 40, 40, 48 mm at 2 mm
    assert voxel_spacing_of(out["image"].affine) == pytest.approx([2.0, 2.0, 2.0])
    assert set(out["label"].unique().tolist()) == {0.0, 1.0}
    back = crop.inverse(out)
    assert back["label"].shape == label.shape
    np.testing.assert_allclose(back["label"].affine, affine)
    assert float(((back["label"] > 0) & (label > 0)).sum()) / float((label > 0).sum()) > 0.8
    # the geometric route back (what --paste does) lands on the same voxels
    pasted = ResampleToGridd(("image", "label"), affine, label.shape[1:])(dict(out))
    assert torch.equal(pasted["label"] > 0, back["label"] > 0)
    with pytest.raises(ValueError, match="works on volumes"):
        crop({"image": MetaTensor(torch.rand(1, 8, 8)), "label": MetaTensor(torch.zeros(1, 8, 8))})


def test_a_model_config_needs_both_or_neither_of_the_source_grid_fields(model3d):
    cfg = load_model_file(model3d).config.to_dict()
    cfg.pop("source_grid_affine")
    with pytest.raises(ModelConfigError, match="both or neither"):
        SinGANSegModelConfig.from_dict(cfg)


def test_orthogonal_preview_planes_cross_at_the_tumour():
    from monai_singanseg.synthesis.runner import orthogonal_planes

    image = torch.zeros(2, 10, 12, 8)
    index = torch.zeros(1, 10, 12, 8, dtype=torch.int64)
    index[0, 6, 3, 5] = 2
    image[:, 6, 3, 5] = 1.0
    planes, labels = orthogonal_planes(image, index)
    # sagittal (12 x 8), coronal (10 x 8), axial (10 x 12) side by side with 2-pixel gaps, padded to height 12
    assert planes.shape == (2, 12 + 2 + 10 + 2 + 10, 12) and labels.shape == (1, 36, 12)
    # every plane passes through the tumour voxel
    assert labels[0, 3, 5] == 2 and labels[0, 14 + 6, 5] == 2 and labels[0, 26 + 6, 3] == 2
    assert int((labels > 0).sum()) == 3
