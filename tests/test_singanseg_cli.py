"""``train-singanseg`` and ``generate`` as real subprocesses on a real BraTS case."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import assert_same_model, cli, kill_after_first_scale, run_cli
from helpers import train_args as train_command
from monai.data import load_decathlon_datalist

from monai_singanseg.data import load_image
from monai_singanseg.io.modelfile import load_model_file

#: the SinGAN-Seg model the bundle ships (a valid model file without training one).
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "bundles" / "singanseg" / "models" / "singanseg.pt"
TINY = ["--max-size", "32", "--min-size", "12", "--stages", "3", "--iters", "12", "--threads", "1", "--quiet"]


def train_args(item: dict, out: Path) -> list[str]:
    return train_command(item, out, TINY)


@pytest.fixture(scope="module")
def model(brats_item, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "model.pt"
    res = cli(*train_args(brats_item, out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def generated(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "samples"
    res = cli("generate", "--model", str(model), "--num", "4", "--out", str(out), "--seed", "3", "--sheet", "2")
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.slow
def test_generate_writes_brats_cases_datalist_and_sheet(generated, model):
    items = load_decathlon_datalist(str(generated / "datalist.json"), data_list_key="training")
    assert len(items) == 4
    assert (generated / "preview.png").stat().st_size > 0
    cfg = load_model_file(model).config
    for item in items:
        assert [Path(p).name.split("_")[-1] for p in item["image"]] == [
            "flair.nii.gz",
            "t1.nii.gz",
            "t1ce.nii.gz",
            "t2.nii.gz",
        ]
        seg = nib.load(item["label"])
        values = set(np.unique(np.asarray(seg.dataobj)).tolist())
        assert values <= {0, 1, 2, 4}  # BraTS values, never class indices 3
        flair = nib.load(item["image"][0])
        assert flair.get_data_dtype() == np.int16 and flair.shape == (32, 32, 1)
        reloaded = load_image(item["image"][0])
        np.testing.assert_allclose(np.asarray(reloaded.affine), np.asarray(cfg.source_affine), atol=1e-4)
        data = np.asarray(flair.dataobj)
        assert data.min() >= np.floor(min(cfg.intensity_stats["low"])) - 1
        assert data.max() <= np.ceil(max(cfg.intensity_stats["high"])) + 1


def test_same_seed_gives_identical_files(generated, model, tmp_path):
    res = cli("generate", "--model", str(model), "--num", "2", "--out", str(tmp_path), "--seed", "3", "--sheet", "0")
    assert res.returncode == 0, res.stderr
    for name in ("TCGA-FG-6692_syn0001_t1ce.nii.gz", "TCGA-FG-6692_syn0001_seg.nii.gz"):
        a = np.asarray(nib.load(generated / name).dataobj)
        b = np.asarray(nib.load(tmp_path / name).dataobj)
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_generate_with_style_changes_images_not_labels(generated, model, tmp_path):
    out = tmp_path / "styled"
    res = cli(
        "generate",
        "--model",
        str(model),
        "--num",
        "2",
        "--out",
        str(out),
        "--seed",
        "3",
        "--sheet",
        "0",
        "--style",
        "histogram+random",
        "--style-steps",
        "3",
    )
    assert res.returncode == 0, res.stderr
    changed = 0
    for i in range(2):
        stem = f"TCGA-FG-6692_syn{i:04d}"
        plain_seg = np.asarray(nib.load(generated / f"{stem}_seg.nii.gz").dataobj)
        assert np.array_equal(
            plain_seg, np.asarray(nib.load(out / f"{stem}_seg.nii.gz").dataobj)
        )  # same sample, same label
        plain = np.stack(
            [np.asarray(nib.load(generated / f"{stem}_{m}.nii.gz").dataobj) for m in ("flair", "t1", "t1ce", "t2")]
        )
        styled = np.stack(
            [np.asarray(nib.load(out / f"{stem}_{m}.nii.gz").dataobj) for m in ("flair", "t1", "t1ce", "t2")]
        )
        background = (plain == 0).all(axis=0)
        assert (
            background.any() and (styled[:, background] == 0).all()
        )  # the background around the brain stays background
        changed += sum(int(not np.array_equal(p, q)) for p, q in zip(plain, styled))
    assert changed >= 6  # the look of (nearly) every image channel moved


def test_generate_vgg_style_without_weights_is_refused_before_writing(tmp_path):
    res = run_cli(
        "generate", "--model", str(SHIPPED_MODEL), "--num", "1", "--out", str(tmp_path / "g"), "--style", "vgg19"
    )
    assert res.returncode == 1 and "VGG-19" in res.stderr and "--style-weights" in res.stderr
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_never_overwrites_without_flag(generated, model, brats_item):
    before = {p: p.stat().st_mtime_ns for p in generated.iterdir()}
    res = cli("generate", "--model", str(model), "--num", "4", "--out", str(generated))
    assert res.returncode == 1 and "already exists" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in generated.iterdir()} == before
    res = cli(*train_args(brats_item, model))
    assert res.returncode == 1 and "already exists" in res.stderr


@pytest.mark.slow
def test_resume_after_killed_run_gives_the_same_complete_model(brats_item, model, tmp_path):
    out = tmp_path / "resumed.pt"
    kill_after_first_scale(train_args(brats_item, out), out)
    res = cli("generate", "--model", str(out), "--num", "1", "--out", str(tmp_path / "g"))
    assert res.returncode == 1 and "interrupted" in res.stderr and not (tmp_path / "g").exists()
    res = cli(*train_args(brats_item, out), "--resume")
    assert res.returncode == 0, res.stderr
    assert_same_model(model, out)


@pytest.mark.slow
def test_2d_rgb_image_and_mask(shared_data, tmp_path):
    image = sorted((shared_data / "kvasir_seg" / "images").glob("*.jpg"))[0]
    mask = shared_data / "kvasir_seg" / "masks" / image.name
    out = tmp_path / "kvasir.pt"
    res = cli(
        "train-singanseg",
        "--image",
        str(image),
        "--label",
        str(mask),
        "--out",
        str(out),
        *TINY[:6],
        "--iters",
        "1",
        "--threads",
        "1",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert load_model_file(out).config.image_channels == ["red", "green", "blue"]
    res = cli("generate", "--model", str(out), "--num", "2", "--out", str(tmp_path / "g"))
    assert res.returncode == 0, res.stderr
    items = json.loads((tmp_path / "g" / "datalist.json").read_text(encoding="utf-8"))["training"]
    assert len(items) == 2 and all(i["image"].endswith(".png") and i["label"].endswith(".png") for i in items)


def _write_like(ref: Path, data: np.ndarray, path: Path) -> str:
    img = nib.load(ref)
    nib.save(nib.Nifti1Image(data, img.affine), str(path))
    return str(path)


def test_bad_inputs_fail_clearly_without_output(brats_item, tmp_path):
    flair, seg = Path(brats_item["image"][0]), Path(brats_item["label"])
    seg_data = np.asarray(nib.load(seg).dataobj)
    nan_flair = np.asarray(nib.load(flair).dataobj).astype(np.float32)
    nan_flair[100:110, 100:110, 80] = np.nan
    cases = {
        "no tumour": (brats_item["image"], str(seg), ["--slice", "3"]),
        "shape": ([str(flair)], _write_like(seg, seg_data[:200], tmp_path / "small_seg.nii.gz"), []),
        "NaN": ([_write_like(flair, nan_flair, tmp_path / "nan.nii.gz")], str(seg), []),
        "3": (
            [str(flair)],
            _write_like(seg, np.where(seg_data == 4, 3, seg_data).astype(np.uint8), tmp_path / "s3.nii.gz"),
            [],
        ),
    }
    for expected, (images, label, extra) in cases.items():
        out = tmp_path / "m.pt"
        res = run_cli("train-singanseg", "--image", *images, "--label", label, "--out", str(out), *TINY, *extra)
        assert res.returncode == 1, (expected, res.stderr)
        assert expected in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert not out.exists()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(SHIPPED_MODEL.read_bytes()[:1000])
    res = run_cli("generate", "--model", str(truncated), "--num", "1", "--out", str(tmp_path / "g"))
    assert res.returncode == 1 and "truncated" in res.stderr and not (tmp_path / "g").exists()
