"""The MONAI bundles, run as users run them: ``python -m monai.bundle ...`` in a subprocess from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import load_decathlon_datalist

from monai_singanseg.data import demo_case
from monai_singanseg.io.modelfile import load_model_file

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "bundles" / "meta_schema_20240725.json"
BUNDLES = ["singanseg", "pix2pix"]


def bundle(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=REPO, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout, env=env)


def config(name: str, which: str) -> str:
    return f"bundles/{name}/configs/{which}.json"


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_verifies_offline_against_the_shipped_schema(name, tmp_path):
    res = bundle("verify_metadata", "--meta_file", config(name, "metadata"), "--filepath", str(SCHEMA))
    assert res.returncode == 0 and "metadata is verified with no error" in res.stdout + res.stderr, res.stderr[-2000:]
    broken = json.loads((REPO / config(name, "metadata")).read_text(encoding="utf-8"))
    del broken["task"]
    (tmp_path / "metadata.json").write_text(json.dumps(broken), encoding="utf-8")
    res = bundle("verify_metadata", "--meta_file", str(tmp_path / "metadata.json"), "--filepath", str(SCHEMA))
    assert res.returncode != 0 and "task" in res.stdout + res.stderr


def test_pix2pix_network_matches_its_metadata():
    res = bundle("verify_net_in_out", "network_def", "--meta_file", config("pix2pix", "metadata"),
                 "--config_file", config("pix2pix", "inference"))
    assert res.returncode == 0 and "verified with no error" in res.stdout + res.stderr, res.stderr[-2000:]


def _check_synthetic_cases(out: Path, source_affine: np.ndarray | None) -> list[dict]:
    entries = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="training")
    assert entries and (out / "preview.png").stat().st_size > 0
    for entry in entries:
        seg = nib.load(entry["label"])
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1, 2, 4}
        for path in entry["image"]:
            img = nib.load(path)
            assert img.get_data_dtype() == np.int16 and img.shape == seg.shape
            np.testing.assert_allclose(img.affine, seg.affine)
        if source_affine is not None:
            np.testing.assert_allclose(seg.affine, source_affine)
    return entries


def test_pix2pix_training_writes_a_loadable_model(tmp_path):
    model, checkpoint = tmp_path / "model.pt", tmp_path / "checkpoint.pt"
    res = bundle("run", "training", "--config_file", config("pix2pix", "train"), "--epochs", "1", "--size", "32",
                 "--generator_channels", "4", "--critic_channels", "4", "--model_file", str(model),
                 "--checkpoint_file", str(checkpoint))
    assert res.returncode == 0, res.stderr[-3000:]
    shipped = load_model_file(model, expected_kind="pix2pix")
    assert shipped.config.inference_only and list(shipped.state) == ["generator"]
    assert set(load_model_file(checkpoint).state) == {"generator", "critic"}


def test_pix2pix_inference_renders_volumes_with_the_source_geometry(tmp_path):
    out = tmp_path / "p2p"
    res = bundle("run", "--config_file", config("pix2pix", "inference"), "--output_dir", str(out), "--num_samples", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    entries = _check_synthetic_cases(out, nib.load(demo_case()["label"]).affine)
    assert len(entries) == 2
    # deformed label maps differ from each other and from the source
    a, b = (np.asarray(nib.load(e["label"]).dataobj) for e in entries)
    assert not np.array_equal(a, b)
    # a second run refuses to overwrite
    again = bundle("run", "--config_file", config("pix2pix", "inference"), "--output_dir", str(out), "--num_samples", "2")
    assert again.returncode != 0 and "already exists" in again.stderr


def test_pix2pix_generator_exports_to_torchscript(tmp_path):
    ts = tmp_path / "model.ts"
    res = bundle("run", "export", "--config_file", config("pix2pix", "inference"), "--torchscript_file", str(ts))
    assert res.returncode == 0, res.stderr[-3000:]
    scripted = torch.jit.load(str(ts))
    from monai_singanseg.inferers.pix2pix import load_pix2pix

    generator, cfg = load_pix2pix(str(REPO / "bundles/pix2pix/models/model.pt"), torch.device("cpu"))
    x = torch.rand(1, cfg.generator_in_channels, cfg.size, cfg.size)
    with torch.no_grad():
        assert torch.allclose(scripted(x), generator(x), atol=1e-5)


@pytest.mark.parametrize("name", BUNDLES)
def test_a_missing_dataset_folder_is_a_clear_error(name, tmp_path):
    missing = tmp_path / "no_such_folder"
    res = bundle("run", "training", "--config_file", config(name, "train"), "--dataset_dir", str(missing),
                 "--model_file", str(tmp_path / "m.pt"), "--checkpoint_file", str(tmp_path / "c.pt"))
    assert res.returncode != 0
    assert f"{missing}: not a folder" in res.stderr
    assert not (tmp_path / "m.pt").exists()


def test_singanseg_network_matches_its_metadata():
    res = bundle("verify_net_in_out", "network_def", "--meta_file", config("singanseg", "metadata"),
                 "--config_file", config("singanseg", "inference"))
    assert res.returncode == 0 and "verified with no error" in res.stdout + res.stderr, res.stderr[-2000:]


def test_singanseg_training_writes_a_loadable_model(tmp_path):
    model, checkpoint = tmp_path / "model.pt", tmp_path / "checkpoint.pt"
    tiny = ["--max_size", "32", "--num_stages", "3", "--iters", "4", "--coarsest_iters", "4",
            "--settings#min_size", "12", "--settings#critic_steps", "1", "--settings#base_features", "8"]
    res = bundle("run", "training", "--config_file", config("singanseg", "train"), *tiny,
                 "--model_file", str(model), "--checkpoint_file", str(checkpoint))
    assert res.returncode == 0, res.stderr[-3000:]
    shipped = load_model_file(model, expected_kind="singanseg")
    assert shipped.config.inference_only and list(shipped.state) == ["generator"]
    assert list(shipped.tensors) == ["reconstruction_noise"]
    out = tmp_path / "samples"
    res = bundle("run", "--config_file", config("singanseg", "inference"), "--model_file", str(model),
                 "--output_dir", str(out), "--num_samples", "3")
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(_check_synthetic_cases(out, None)) == 3


def test_singanseg_inference_with_the_shipped_model_keeps_the_source_slice_geometry(tmp_path):
    out = tmp_path / "singan"
    res = bundle("run", "--config_file", config("singanseg", "inference"), "--output_dir", str(out), "--num_samples", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_model_file(REPO / "bundles/singanseg/models/model.pt").config
    entries = _check_synthetic_cases(out, np.asarray(cfg.source_affine))
    assert len(entries) == 4 and nib.load(entries[0]["label"]).shape[2] == 1  # one-slice volumes


def test_singanseg_inference_style_option_changes_the_images_never_the_labels(tmp_path):
    runs = {}
    for style in ("none", "histogram"):
        out = tmp_path / style
        res = bundle("run", "--config_file", config("singanseg", "inference"), "--output_dir", str(out),
                     "--num_samples", "2", "--style", style)
        assert res.returncode == 0, res.stderr[-3000:]
        runs[style] = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="training")
    for plain, styled in zip(runs["none"], runs["histogram"]):
        seg_plain, seg_styled = nib.load(plain["label"]), nib.load(styled["label"])
        assert np.array_equal(np.asarray(seg_plain.dataobj), np.asarray(seg_styled.dataobj))
        np.testing.assert_allclose(seg_plain.affine, seg_styled.affine)
        t2_plain = np.asarray(nib.load(plain["image"][3]).dataobj)
        t2_styled = np.asarray(nib.load(styled["image"][3]).dataobj)
        assert not np.array_equal(t2_plain, t2_styled) and (t2_styled[t2_plain == 0] == 0).mean() > 0.95
