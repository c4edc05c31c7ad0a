from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from dicom_utils import write_dicom_series

from monai_singanseg.data import CaseError, dicom_datalist, load_case, load_image


def _sitk_ras_affine(img: sitk.Image) -> np.ndarray:
    """SimpleITK's LPS geometry as a RAS 4x4 affine (what MONAI and NIfTI use)."""
    d = np.array(img.GetDirection()).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = d @ np.diag(img.GetSpacing())
    aff[:3, 3] = img.GetOrigin()
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff


def _sitk_series(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_phantom_series_matches_simpleitk(shared_data, tmp_path):
    src = shared_data / "dicom_ge_phantom_t1"
    folder = tmp_path / "series"
    folder.mkdir()
    for f in src.glob("*.MRDC.*"):  # only the DICOM files, not the licence
        shutil.copy(f, folder / f.name)
    ours = load_image(folder)
    ref = _sitk_series(folder)
    assert tuple(ours.shape[1:]) == ref.GetSize() == (256, 256, 24)
    np.testing.assert_allclose(ours.affine.numpy(), _sitk_ras_affine(ref), atol=1e-4)
    spacing = np.linalg.norm(ours.affine.numpy()[:3, :3], axis=0)
    np.testing.assert_allclose(spacing, ref.GetSpacing(), atol=1e-4)
    # voxel order: SimpleITK's array is (z, y, x), MONAI's (x, y, z)
    assert np.array_equal(ours[0].numpy(), sitk.GetArrayFromImage(ref).transpose(2, 1, 0).astype(np.float32))


def test_brats_case_written_as_dicom_reads_back_like_the_nifti(brats_case_dir, tmp_path):
    nifti = brats_case_dir / "TCGA-FG-6692_t1.nii.gz"
    vol = sitk.ReadImage(str(nifti))[:, :, 80:88]  # a slab keeps the test quick
    slab_nii = tmp_path / "slab_t1.nii.gz"
    sitk.WriteImage(vol, str(slab_nii))
    write_dicom_series(sitk.Cast(vol, sitk.sitkInt16), tmp_path / "case" / "t1")
    from_dicom = load_image(tmp_path / "case" / "t1")
    from_nifti = load_image(slab_nii)
    assert from_dicom.shape == from_nifti.shape
    np.testing.assert_allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-3)
    assert torch.equal(from_dicom.as_tensor(), from_nifti.as_tensor())
    entries = dicom_datalist(tmp_path / "case", modalities=("t1",))
    assert entries == [{"image": [str(tmp_path / "case" / "t1")], "name": "case"}]


def test_folder_with_two_series_is_rejected(brats_case_dir, tmp_path):
    vol = sitk.Cast(sitk.ReadImage(str(brats_case_dir / "TCGA-FG-6692_t2.nii.gz"))[:, :, 80:83], sitk.sitkInt16)
    write_dicom_series(vol, tmp_path / "mixed" / "a", series_uid="1.2.3.4.5.1")
    write_dicom_series(vol, tmp_path / "mixed" / "b", series_uid="1.2.3.4.5.2")
    mixed = tmp_path / "both"
    mixed.mkdir()
    for i, f in enumerate(sorted((tmp_path / "mixed").rglob("*.dcm"))):
        shutil.copy(f, mixed / f"f{i}.dcm")
    with pytest.raises(CaseError, match="2 DICOM series"):
        load_image(mixed)
    with pytest.raises(CaseError, match="both"):
        load_case({"image": str(mixed)})
