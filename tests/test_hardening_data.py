"""Hardening of the data layer: every bad input is refused with a message naming the file (and the entry)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from dicom_utils import write_dicom_series
from PIL import Image

from monai_singanseg.data import CaseError, LoadCased, load_case, load_datalist, load_image

NAME = "TCGA-FG-6692"
MODALITIES = ("flair", "t1", "t1ce", "t2")


@pytest.fixture()
def slab(brats_case_dir, tmp_path) -> Path:
    """An 8-slice copy of the case that each test may spoil."""
    for f in brats_case_dir.glob("*.nii.gz"):
        nib.save(nib.load(str(f)).slicer[:, :, 80:88], str(tmp_path / f.name))
    return tmp_path


def _item(folder: Path) -> dict:
    return {
        "image": [str(folder / f"{NAME}_{m}.nii.gz") for m in MODALITIES],
        "label": str(folder / f"{NAME}_seg.nii.gz"),
    }


def _four_d(slab: Path, out: Path) -> Path:
    """The 4 modalities stacked into one 4D NIfTI (X, Y, Z, 4), as the MONAI Label datastore writes them."""
    imgs = [nib.load(str(slab / f"{NAME}_{m}.nii.gz")) for m in MODALITIES]
    data = np.stack([np.asarray(i.dataobj) for i in imgs], axis=-1)
    nib.save(nib.Nifti1Image(data, imgs[0].affine), str(out))
    return out


# 1a: a 4D file given as one modality of a multi-file case ------------------------------------------------------------


def test_4d_file_as_one_modality_is_refused_naming_file_and_shape(slab):
    four_d = _four_d(slab, slab / "stack.nii.gz")
    item = _item(slab)
    item["image"][1] = str(four_d)
    with pytest.raises(
        CaseError,
        match=r"stack\.nii\.gz: a 4D file of shape \(240, 240, 8, 4\) \(4 channels\) is given as "
        r"one of the case's 4 modality files",
    ):
        load_case(item)
    with pytest.raises(CaseError, match=r"stack\.nii\.gz: a 4D file"):
        LoadCased(("image", "label"))(item)


def test_a_single_4d_file_alone_is_still_the_whole_image(slab):
    four_d = _four_d(slab, slab / "stack.nii.gz")
    label = str(slab / f"{NAME}_seg.nii.gz")
    for image in (str(four_d), [str(four_d)]):  # one path, or a list of one path
        case = load_case({"image": image, "label": label})
        assert case["image"].shape == (4, 240, 240, 8) and case["label"].shape == (1, 240, 240, 8)
    d = LoadCased(("image", "label"))({"image": str(four_d), "label": label})
    assert d["image"].shape == (4, 240, 240, 8)


# 1b: a truncated/corrupt or missing file inside a DICOM series


@pytest.fixture()
def series(brats_case_dir, tmp_path) -> list[Path]:
    vol = sitk.Cast(sitk.ReadImage(str(brats_case_dir / f"{NAME}_t1.nii.gz"))[:, :, 80:86], sitk.sitkInt16)
    return write_dicom_series(vol, tmp_path / "case" / "t1")


def test_truncated_file_in_a_dicom_series_is_refused_naming_folder_and_file(series):
    folder = series[0].parent
    assert load_image(folder).shape == (1, 240, 240, 6)  # intact: reads
    victim = series[2]
    raw = victim.read_bytes()
    victim.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CaseError) as err:
        load_image(folder)
    msg = str(err.value)
    assert msg.startswith(f"{folder}: DICOM file {victim.name} cannot be read as part of the series")
    assert "5 of 6 DICOM files readable" in msg
    with pytest.raises(CaseError, match=victim.name):
        load_case({"image": [str(folder)]})


def test_missing_slice_in_a_dicom_series_is_refused(series):
    folder = series[0].parent
    series[3].unlink()  # the 4th slice (file names are shuffled, the list is in slice order)
    with pytest.raises(
        CaseError,
        match=rf"{folder}: DICOM slices are not evenly spaced: {series[2].name} and "
        rf"{series[4].name} are 2 mm apart, the other slices 1 mm",
    ):
        load_image(folder)


def test_non_dicom_files_beside_a_series_are_ignored(series):
    folder = series[0].parent
    (folder / "LICENSE.txt").write_text("not DICOM")
    assert load_image(folder).shape == (1, 240, 240, 6)


# 1c: load_datalist ----------------------------------------------------------------------------------------------------


def _write(path: Path, payload) -> Path:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


def test_load_datalist_resolves_relative_paths_and_keeps_names(slab):
    entry = {"image": [f"{NAME}_{m}.nii.gz" for m in MODALITIES], "label": f"{NAME}_seg.nii.gz", "name": NAME}
    (slab / NAME).mkdir()  # a folder named like the case: MONAI would turn "name" into its path
    dl = _write(slab / "datalist.json", {"description": "x", "training": [entry]})
    entries = load_datalist(dl)
    assert entries == [
        {
            "image": [str(slab / f"{NAME}_{m}.nii.gz") for m in MODALITIES],
            "label": str(slab / f"{NAME}_seg.nii.gz"),
            "name": NAME,
        }
    ]
    assert load_case(entries[0])["image"].shape == (4, 240, 240, 8)
    test_list = _write(slab / "test.json", {"test": [f"{NAME}_flair.nii.gz"]})
    assert load_datalist(test_list, key="test", require_label=False) == [{"image": str(slab / f"{NAME}_flair.nii.gz")}]
    # several keys: the first the file has is read (evaluate --test-datalist reads "testing", else "training")
    assert load_datalist(dl, key=("testing", "training")) == entries
    other = {**entry, "name": "held-out"}
    both = _write(slab / "both.json", {"training": [entry], "testing": [other]})
    assert [e["name"] for e in load_datalist(both, key=("testing", "training"))] == ["held-out"]
    with pytest.raises(
        CaseError, match=r"test\.json: datalist has no 'testing' or 'training' list \(its keys: \['test'\]\)"
    ):
        load_datalist(test_list, key=("testing", "training"))


@pytest.mark.parametrize(
    "payload, message",
    [
        (
            '{"training": [{"image": "a.nii.gz",}]}',
            r"datalist is not valid JSON \(line 1, column 36: Expecting property name",
        ),
        ("[]", r"datalist must be a JSON object with a 'training' list, not a JSON list"),
        ({"validation": []}, r"datalist has no 'training' list \(its keys: \['validation'\]\)"),
        ({"training": []}, r"datalist's 'training' must be a non-empty list of entries, found an empty list"),
        (
            {"training": ["a.nii.gz"]},
            r"entry training\[0\] must be an object with 'image' and 'label', found a JSON str",
        ),
        ({"training": [{"label": "seg.nii.gz", "name": "c1"}]}, r"entry training\[0\] \('c1'\) has no 'image'"),
        ({"training": [{"image": "", "label": "seg.nii.gz"}]}, r"entry training\[0\] has no 'image'"),
        ({"training": [{"image": "img.nii.gz"}]}, r"entry training\[0\] has no 'label' \(a label file path\)"),
        (
            {"training": [{"image": "img.nii.gz", "label": ["a", "b"]}]},
            r"entry training\[0\]: 'label' must be one file path, found \[\"a\", \"b\"\]",
        ),
    ],
)
def test_malformed_datalists_name_the_file_and_the_entry(tmp_path, payload, message):
    dl = _write(tmp_path / "my_datalist.json", payload)
    with pytest.raises(CaseError, match=rf"^{tmp_path / 'my_datalist.json'}: {message}"):
        load_datalist(dl)


def test_datalist_pointing_to_missing_files(slab, tmp_path):
    with pytest.raises(CaseError, match=r"no_such\.json: datalist file not found"):
        load_datalist(tmp_path / "no_such.json")
    with pytest.raises(CaseError, match=r"datalist is a folder"):
        load_datalist(tmp_path)
    entries = [
        {"image": f"{NAME}_flair.nii.gz", "label": f"{NAME}_seg.nii.gz", "name": "ok"},
        {"image": [f"{NAME}_flair.nii.gz", "gone_t1.nii.gz"], "label": f"{NAME}_seg.nii.gz", "name": "broken"},
    ]
    dl = _write(slab / "dl.json", {"training": entries})
    with pytest.raises(
        CaseError, match=rf"dl\.json: entry training\[1\] \('broken'\): image file {slab / 'gone_t1.nii.gz'} not found"
    ):
        load_datalist(dl)
    entries[1] = {"image": f"{NAME}_flair.nii.gz", "label": "gone_seg.nii.gz"}
    _write(dl, {"training": entries})
    with pytest.raises(CaseError, match=r"entry training\[1\]: label file .*gone_seg\.nii\.gz not found"):
        load_datalist(dl)
    assert len(load_datalist(dl, check_files=False)) == 2
    binary = slab / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CaseError, match=r"binary\.json: datalist is not a UTF-8 JSON text file"):
        load_datalist(binary)


# 1d: degenerate volumes -----------------------------------------------------------------------------------------------


def test_degenerate_volume_is_refused_naming_file_shape_and_minimum(tmp_path):
    line = tmp_path / "line_flair.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(10000, dtype=np.int16).reshape(1, 1, 10000), np.eye(4)), str(line))
    with pytest.raises(
        CaseError,
        match=r"line_flair\.nii\.gz: image of shape \(1, 1, 10000\) is too small: its in-plane "
        r"\(axial slice\) size is 1 x 1 voxels, at least 8 x 8 is needed",
    ):
        load_image(line)
    with pytest.raises(CaseError, match=r"line_flair\.nii\.gz: image of shape"):
        load_case({"image": str(line)})
    thin = tmp_path / "thin_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((240, 5, 20), np.uint8), np.eye(4)), str(thin))
    with pytest.raises(
        CaseError,
        match=r"thin_seg\.nii\.gz: label of shape \(240, 5, 20\) is too small: its in-plane "
        r"\(axial slice\) size is 240 x 5 voxels",
    ):
        load_image(thin, what="label")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((4, 100, 3), np.uint8)).save(small)
    with pytest.raises(CaseError, match=r"small\.png: image of shape \(100, 4\) is too small"):
        load_image(small, spatial_ndim=2)


def test_one_slice_and_small_volumes_above_the_minimum_still_load(tmp_path):
    one = tmp_path / "one_slice.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((240, 240, 1), np.int16), np.eye(4)), str(one))
    assert load_image(one).shape == (1, 240, 240, 1)
    small = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 3), np.int16), np.eye(4)), str(small))
    assert load_image(small).shape == (1, 8, 8, 3)
