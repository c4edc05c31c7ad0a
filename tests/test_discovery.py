from __future__ import annotations

import shutil

import pytest
from monai.data import load_decathlon_datalist

from monai_singanseg.data import (
    CaseError,
    brats_datalist,
    demo_case,
    demo_kvasir,
    find_cases,
    image_mask_datalist,
    load_case,
)
from monai_singanseg.io.writers import write_datalist


def test_brats_folders_become_a_decathlon_datalist(shared_data, tmp_path):
    entries = brats_datalist(shared_data / "brats_tcga")
    assert [e["name"] for e in entries] == ["TCGA-DU-7294", "TCGA-FG-6692"]
    for e in entries:
        assert [p.rsplit("_", 1)[1] for p in e["image"]] == ["flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"]
        assert e["label"].endswith("_seg.nii.gz")
    path = write_datalist(tmp_path / "datalist.json", entries)
    loaded = load_decathlon_datalist(str(path), is_segmentation=True, data_list_key="training")
    assert [e["image"] for e in loaded] == [e["image"] for e in entries]
    assert find_cases(shared_data / "brats_tcga") == entries


def test_brats_2023_names_map_to_the_same_channels(brats_case_dir, tmp_path):
    names = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}
    for old, new in names.items():
        (tmp_path / f"BraTS-GLI-00001-000-{new}.nii.gz").symlink_to(brats_case_dir / f"TCGA-FG-6692_{old}.nii.gz")
    (entry,) = brats_datalist(tmp_path)
    assert entry["name"] == "BraTS-GLI-00001-000"
    assert [p.rsplit("-", 1)[1] for p in entry["image"]] == ["t2f.nii.gz", "t1n.nii.gz", "t1c.nii.gz", "t2w.nii.gz"]


def test_a_folder_of_links_to_case_folders_says_that_links_are_not_searched(brats_case_dir, tmp_path):
    (tmp_path / "TCGA-FG-6692").symlink_to(brats_case_dir)  # symlinked files work (above); linked folders do not
    with pytest.raises(CaseError, match=r"TCGA-FG-6692 link\(s\) to folders elsewhere, which are not searched"):
        find_cases(tmp_path)


def test_missing_modality_names_case_and_modality(brats_case_dir, tmp_path):
    for m in ("flair", "t1", "t2", "seg"):
        shutil.copy(brats_case_dir / f"TCGA-FG-6692_{m}.nii.gz", tmp_path)
    with pytest.raises(CaseError, match=r"TCGA-FG-6692.*missing modality \['t1ce'\]"):
        brats_datalist(tmp_path)


def test_kvasir_pairs_images_and_masks(shared_data, tmp_path):
    entries = image_mask_datalist(shared_data / "kvasir_seg")
    assert len(entries) == 5 and all(e["image"].endswith(".jpg") and "/masks/" in e["label"] for e in entries)
    case = load_case(entries[0], label_values=(0, 1), spatial_ndim=2)
    assert case["image"].shape[0] == 3 and case["label"].shape[0] == 1
    assert set(case["label"].unique().tolist()) == {0, 1}
    shutil.copytree(shared_data / "kvasir_seg", tmp_path / "k")
    next((tmp_path / "k" / "masks").glob("*.jpg")).unlink()
    with pytest.raises(CaseError, match="no mask"):
        image_mask_datalist(tmp_path / "k")


def test_embedded_demo_data_loads():
    case = load_case(demo_case())
    assert case["image"].shape == (4, 149, 175, 20) and case["image"].meta["source_dtype"] == "int16"
    assert set(case["label"].unique().tolist()) == {0, 1, 2, 3}
    assert len(demo_kvasir()) == 5


def test_one_case_name_for_every_entry_point(shared_data):
    # a BRATS-2013 datalist without names: the label file is OTMultiClass in every case, so the folder names the case,
    # and the dataset farm (file names) and the data path (logs, reports) agree
    from monai_singanseg.data import case_name, load_case
    from monai_singanseg.farm.plan import plan_work

    case_dir = next(p for p in sorted((shared_data / "brats2013").iterdir()) if p.is_dir())
    images = [str(case_dir / f"{m}_subtrMeanDivStd.nii.gz") for m in ("Flair", "T1c")]
    item = {"image": images, "label": str(case_dir / "OTMultiClass.nii.gz")}
    assert case_name(item) == case_dir.name
    assert case_name({"label": "x/BraTS_001_seg.nii.gz"}) == "BraTS_001"
    assert case_name({"name": "given", "label": "x/seg.nii.gz"}) == "given"
    assert case_name({"label": "pat7/seg.nii.gz"}) == "pat7"
    (entry,) = plan_work([item], slices_per_case=1, label_map={3: 1})
    assert entry.case == case_dir.name == load_case(item, label_map={3: 1})["name"]
