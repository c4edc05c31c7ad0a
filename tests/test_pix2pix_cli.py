"""``train-pix2pix`` and ``render`` as real subprocesses on real data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import cli, run_cli
from monai.data import load_decathlon_datalist
from PIL import Image

from monai_singanseg.data import demo_case

#: the pix2pix model the bundle ships.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "bundles" / "pix2pix" / "models" / "pix2pix.pt"
DEMO_DIR = Path(demo_case()["label"]).parent
DEMO_LABEL = Path(demo_case()["label"])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "p2p.pt"
    tiny = ["--size", "32", "--epochs", "1", "--generator-channels", "8", "--critic-channels", "8", "--quiet"]
    res = cli("train-pix2pix", "--data", str(DEMO_DIR), "--out", str(out), *tiny)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and out.is_file()
    again = cli("train-pix2pix", "--data", str(DEMO_DIR), "--out", str(out), *tiny)
    assert again.returncode == 1 and "already exists" in again.stderr
    return out


@pytest.mark.slow
def test_render_writes_brats_case_datalist_and_preview(model, tmp_path):
    out = tmp_path / "render"
    res = cli(
        "render", "--model", str(model), "--label", str(DEMO_LABEL), "--out", str(out), "--deform", "1", "--seed", "3"
    )
    assert res.returncode == 0, res.stderr
    entries = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="training", base_dir=str(out))
    assert len(entries) == 1 and entries[0]["name"] == "TCGA-FG-6692_p2p_def000"
    src = nib.load(str(DEMO_LABEL))
    seg = nib.load(entries[0]["label"])
    np.testing.assert_allclose(seg.affine, src.affine)
    seg_arr = np.asarray(seg.dataobj)
    assert seg_arr.shape == src.shape and set(np.unique(seg_arr)) <= {0, 1, 2, 4}
    assert not np.array_equal(seg_arr, np.asarray(src.dataobj))  # deformed
    flair = nib.load(entries[0]["image"][0])
    assert flair.get_data_dtype() == np.int16 and flair.shape == src.shape
    np.testing.assert_allclose(flair.affine, src.affine)
    images = np.stack([np.asarray(nib.load(p).dataobj) for p in entries[0]["image"]])
    assert (images != 0).any(0)[seg_arr > 0].all()  # every label voxel lies inside the rendered brain
    assert Image.open(out / "preview.png").size[0] > 4 * 32
    # same seed -> same files
    out2 = tmp_path / "render2"
    assert (
        cli(
            "render",
            "--model",
            str(model),
            "--label",
            str(DEMO_LABEL),
            "--out",
            str(out2),
            "--deform",
            "1",
            "--seed",
            "3",
        ).returncode
        == 0
    )
    for name in ("flair", "seg"):
        f1, f2 = out / f"TCGA-FG-6692_p2p_def000_{name}.nii.gz", out2 / f"TCGA-FG-6692_p2p_def000_{name}.nii.gz"
        assert np.array_equal(np.asarray(nib.load(str(f1)).dataobj), np.asarray(nib.load(str(f2)).dataobj))
    # never overwrite without --overwrite, and nothing is touched
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = cli("render", "--model", str(model), "--label", str(DEMO_LABEL), "--out", str(out), "--deform", "1")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_render_bad_inputs_write_nothing(tmp_path):
    model = SHIPPED_MODEL  # a valid model file: the inputs are what is refused
    src = nib.load(str(DEMO_LABEL))
    arr = np.asarray(src.dataobj)
    bad_values = tmp_path / "bad_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.where(arr == 4, 3, arr).astype(np.uint8), src.affine), str(bad_values))
    small_mask = tmp_path / "small_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(arr.shape[:2] + (5,), np.uint8), src.affine), str(small_mask))
    empty_mask = tmp_path / "empty_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(arr.shape, np.uint8), src.affine), str(empty_mask))
    cases = [
        (
            ["--label", str(bad_values), "--brain-mask", str(DEMO_DIR / "TCGA-FG-6692_t1.nii.gz")],
            "outside the expected set",
        ),
        (["--label", str(DEMO_LABEL), "--brain-mask", str(small_mask)], "shape"),
        (["--label", str(DEMO_LABEL), "--brain-mask", str(empty_mask)], "empty"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        res = run_cli("render", "--model", str(model), "--out", str(out), *args)
        assert res.returncode == 1 and message in res.stderr, res.stderr
        assert not out.exists() or not any(out.iterdir())
    # a label with no images beside it and no --brain-mask: a clear error naming the option
    lonely = tmp_path / "lonely" / "case_seg.nii.gz"
    lonely.parent.mkdir()
    lonely.write_bytes(DEMO_LABEL.read_bytes())
    res = run_cli("render", "--model", str(model), "--label", str(lonely), "--out", str(tmp_path / "o"))
    assert res.returncode == 1 and "--brain-mask" in res.stderr
    assert not (tmp_path / "o").exists()
