from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers import cli
from PIL import Image

from monai_singanseg.data import demo_case


@pytest.mark.slow
def test_demo_writes_preview_slices_and_datalist_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "demo"
    small = ["--num-slices", "2", "--singanseg-samples", "2", "--pix2pix-samples", "1"]
    res = cli("demo", "--out", str(out), *small)
    assert res.returncode == 0, res.stderr
    for name, count in (("singanseg", 2), ("pix2pix", 1)):
        cases = json.loads((out / name / "datalist.json").read_text(encoding="utf-8"))["training"]
        assert len(cases) == count and (out / name / "preview.png").stat().st_size > 0
        seg = np.asarray(nib.load(str(out / name / cases[0]["label"])).dataobj)
        assert set(np.unique(seg)) <= {0, 1, 2, 4} and (seg > 0).any()
    preview = Image.open(out / "tumour_slices_preview.png")
    assert preview.size[0] > 5 * 128 and preview.size[1] >= 2 * 128
    datalist = json.loads((out / "tumour_slices.json").read_text(encoding="utf-8"))["training"]
    assert len(datalist) == 2
    src = nib.load(demo_case()["image"][0])
    for entry in datalist:
        written = nib.load(str(out / entry["image"][0]))
        k = int(entry["name"][-3:])
        expected = src.affine.copy()
        expected[:3, 3] += src.affine[:3, 2] * k
        np.testing.assert_allclose(written.affine, expected)
        assert np.array_equal(np.asarray(written.dataobj)[..., 0], np.asarray(src.dataobj)[..., k])
        seg = np.asarray(nib.load(str(out / entry["label"])).dataobj)
        assert set(np.unique(seg)) <= {0, 1, 2, 4}
    before = (out / "tumour_slices_preview.png").stat().st_mtime_ns
    again = cli("demo", "--out", str(out), *small)
    assert again.returncode == 1 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert (out / "tumour_slices_preview.png").stat().st_mtime_ns == before
    assert cli("demo", "--out", str(out), "--num-slices", "2", "--data-only", "--overwrite").returncode == 0
