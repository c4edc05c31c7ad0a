"""Every bad input of the foundation issue gives an error naming the file and the problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_singanseg.data import CaseError, load_case, load_image


def _item(folder: Path, name: str = "TCGA-FG-6692") -> dict:
    return {
        "image": [str(folder / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")],
        "label": str(folder / f"{name}_seg.nii.gz"),
    }


@pytest.fixture()
def slab(brats_case_dir, tmp_path) -> Path:
    """A small copy of the case (8 slices) that each test may spoil."""
    for f in brats_case_dir.glob("*.nii.gz"):
        img = nib.load(str(f))
        nib.save(img.slicer[:, :, 80:88], str(tmp_path / f.name))
    return tmp_path


def _replace(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    old = nib.load(str(path))
    nib.save(nib.Nifti1Image(data, old.affine if affine is None else affine), str(path))


def test_valid_slab_loads(slab):
    case = load_case(_item(slab))
    assert case["image"].shape == (4, 240, 240, 8)


def test_shape_mismatch(slab):
    p = slab / "TCGA-FG-6692_t1.nii.gz"
    _replace(p, np.asarray(nib.load(str(p)).dataobj)[:, :, :6])
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_t1\.nii\.gz: shape"):
        load_case(_item(slab))


def test_affine_mismatch(slab):
    p = slab / "TCGA-FG-6692_seg.nii.gz"
    img = nib.load(str(p))
    aff = img.affine.copy()
    aff[0, 3] += 2.0
    _replace(p, np.asarray(img.dataobj), aff)
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_seg\.nii\.gz: affine differs"):
        load_case(_item(slab))


def test_missing_modality_file(slab):
    (slab / "TCGA-FG-6692_t1ce.nii.gz").unlink()
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_t1ce\.nii\.gz: image file not found"):
        load_case(_item(slab))


def test_label_values_outside_the_set(slab):
    p = slab / "TCGA-FG-6692_seg.nii.gz"
    data = np.asarray(nib.load(str(p)).dataobj).copy()
    data[100, 100, 2] = 3
    _replace(p, data)
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_seg\.nii\.gz: .*\[3\]"):
        load_case(_item(slab))


def test_nan_intensities(slab):
    p = slab / "TCGA-FG-6692_flair.nii.gz"
    data = np.asarray(nib.load(str(p)).dataobj).astype(np.float32)
    data[120, 120, 3] = np.nan
    _replace(p, data)
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_flair\.nii\.gz: image holds NaN"):
        load_case(_item(slab))


def test_2d_file_where_volume_expected_and_vice_versa(shared_data, slab):
    jpg = next((shared_data / "kvasir_seg" / "images").glob("*.jpg"))
    with pytest.raises(CaseError, match="is a 2D image but a 3D volume is expected"):
        load_image(jpg, spatial_ndim=3)
    with pytest.raises(CaseError, match="is a 3D volume but a 2D image is expected"):
        load_image(slab / "TCGA-FG-6692_t2.nii.gz", spatial_ndim=2)


def test_truncated_file(slab):
    p = slab / "TCGA-FG-6692_t2.nii.gz"
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CaseError, match=r"TCGA-FG-6692_t2\.nii\.gz: cannot read"):
        load_case(_item(slab))


def test_not_an_image_at_all(tmp_path):
    p = tmp_path / "notes_flair.nii.gz"
    p.write_bytes(gzip.compress(b"this is not a NIfTI file"))
    with pytest.raises(CaseError, match="cannot read"):
        load_image(p)
