"""MONAI Label integration without a server: datastore writing, the sample -> volume geometry, the model cache, CLIs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import cli, run_cli

from monai_singanseg.data import demo_case, load_case
from monai_singanseg.label import app_settings, slice_sample_to_volume, training_slice, write_datastore
from monai_singanseg.label.models import SinGANSegModelCache
from monai_singanseg.transforms.slices import axial_axis, rank_tumour_slices

DEMO = "TCGA-FG-6692"


@pytest.mark.slow
def test_label_datastore_cli_writes_4d_images_and_final_labels_and_never_overwrites(tmp_path):
    out = tmp_path / "studies"
    r = cli("label-datastore", "--out", str(out), "--demo", "--quiet")
    assert r.returncode == 0, r.stderr
    image, label = out / f"{DEMO}.nii.gz", out / "labels" / "final" / f"{DEMO}.nii.gz"
    demo = demo_case()
    sources = [nib.load(p) for p in demo["image"]]
    written = nib.load(str(image))
    assert written.shape == (*sources[0].shape, 4)  # channels last: flair, t1, t1ce, t2
    assert written.get_data_dtype() == np.int16
    assert np.allclose(written.affine, sources[0].affine)
    for k, src in enumerate(sources):
        assert np.array_equal(np.asanyarray(written.dataobj)[..., k], np.asanyarray(src.dataobj))
    seg = nib.load(demo["label"])
    assert np.array_equal(np.asanyarray(nib.load(str(label)).dataobj), np.asanyarray(seg.dataobj))
    assert np.allclose(nib.load(str(label)).affine, seg.affine)

    before = label.read_bytes()
    again = cli("label-datastore", "--out", str(out), "--demo", "--quiet")
    assert again.returncode == 1
    assert "already exists" in again.stderr and str(image) in again.stderr
    assert label.read_bytes() == before


def test_write_datastore_reads_back_through_load_case(tmp_path, brats_item):
    entries = write_datastore(tmp_path / "ds", [brats_item], progress=False)
    assert [e["id"] for e in entries] == [brats_item["name"]]
    original, written = load_case(brats_item), load_case({"image": entries[0]["image"], "label": entries[0]["label"]})
    assert torch.equal(original["image"].as_tensor(), written["image"].as_tensor())
    assert torch.equal(original["label"].as_tensor(), written["label"].as_tensor())
    assert torch.allclose(original["image"].affine, written["image"].affine)


def test_label_app_prints_the_app_folder():
    r = cli("label-app")
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip())
    assert (folder / "main.py").is_file()
    assert "class SinGANSegLabelApp(MONAILabelApp)" in (folder / "main.py").read_text(encoding="utf-8")


def test_label_serve_rejects_a_missing_datastore_and_unknown_settings(tmp_path):
    missing = run_cli("label-serve", "--studies", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "datastore folder not found" in missing.stderr
    bad = run_cli("label-serve", "--studies", str(tmp_path), "--conf", "singanseg_itres", "5")
    assert bad.returncode == 1 and "unknown --conf key 'singanseg_itres'" in bad.stderr
    value = run_cli("label-serve", "--studies", str(tmp_path), "--conf", "singanseg_iters", "many")
    assert value.returncode == 1 and "singanseg_iters" in value.stderr and "must be an integer in [1, " in value.stderr


def test_app_options_parse_conf_strings(tmp_path):
    o = app_settings(
        {"singanseg_iters": "7", "singanseg_max_size": "64", "label_values": "0,1", "other_app_key": "x"},
        str(tmp_path),
        "/app",
    )
    assert o.settings.iters == 7 and o.settings.coarsest_iters == 21
    assert o.max_size == 64 and o.label_values == (0, 1)
    assert o.model_dir == tmp_path / "singanseg_models"
    remote = app_settings({}, "http://pacs.example/dicomweb", "/app")
    assert remote.model_dir == Path("/app/model/singanseg") and remote.max_size == 128
    with pytest.raises(ValueError, match="label_values"):
        app_settings({"label_values": "1,2"}, str(tmp_path), "/app")


def test_slice_sample_maps_back_onto_the_source_slice_in_world_coordinates():
    case = load_case(demo_case())
    index = rank_tumour_slices(case["label"], axial_axis(case["label"].affine), 1)[0]
    ref, _ = training_slice(case, index, 128)
    # a "sample" whose content is the training slice itself must land on the source slice
    image, label = slice_sample_to_volume(
        ref["image"].as_tensor(), ref["label"].as_tensor().float(), case, index, ref["image"].affine
    )
    assert tuple(label.shape) == (1, *case["label"].shape[1:]) and tuple(image.shape) == tuple(case["image"].shape)
    assert torch.allclose(label.affine, case["label"].affine)
    off_slice = torch.ones(label.shape[-1], dtype=torch.bool)
    off_slice[index] = False
    assert not label[..., off_slice].any() and not image[..., off_slice].any()
    mapped, real = label[0, :, :, index] > 0, case["label"][0, :, :, index] > 0
    dice = 2 * float((mapped & real).sum()) / float(mapped.sum() + real.sum())
    assert dice > 0.95
    assert torch.equal(torch.unique(label), torch.unique(case["label"][..., index]))

    def world_centroid(mask: torch.Tensor, affine: torch.Tensor, k: int) -> torch.Tensor:
        ij = torch.nonzero(mask).double().mean(0)
        return (affine.double() @ torch.tensor([ij[0], ij[1], float(k), 1.0], dtype=torch.float64))[:3]

    sample_centre = world_centroid(ref["label"][0] > 0, ref["label"].affine, 0)  # the slice's own affine
    volume_centre = world_centroid(mapped, case["label"].affine, index)
    assert float((sample_centre - volume_centre).norm()) < 1.0  # mm

    wrong = ref["image"].affine.clone()
    wrong[0, 3] += 5.0
    with pytest.raises(ValueError, match="does not match this image"):
        slice_sample_to_volume(ref["image"].as_tensor(), ref["label"].as_tensor(), case, index, wrong)
    with pytest.raises(ValueError, match="square"):
        slice_sample_to_volume(ref["image"].as_tensor()[:, :, :100], ref["label"].as_tensor(), case, index)


def test_model_cache_trains_once_and_retrains_when_the_label_is_edited(tmp_path):
    entry = write_datastore(tmp_path / "ds", [demo_case()], progress=False)[0]
    options = app_settings(
        {"singanseg_iters": "2", "singanseg_max_size": "32", "singanseg_min_size": "8", "singanseg_stages": "2"},
        str(tmp_path / "ds"),
        "/app",
    )
    cache = SinGANSegModelCache(options)
    first, trained = cache.ensure(DEMO, entry["image"], entry["label"])
    assert trained and cache.is_complete(first) and first.parent == options.model_dir / DEMO
    again, trained_again = cache.ensure(DEMO, entry["image"], entry["label"])
    assert again == first and not trained_again

    label = nib.load(entry["label"])  # the annotator edits the label: one more edema voxel
    data = np.asanyarray(label.dataobj).copy()
    data[0, 0, 0] = 2
    nib.save(nib.Nifti1Image(data, label.affine, label.header), entry["label"])
    edited, retrained = cache.ensure(DEMO, entry["image"], entry["label"])
    assert retrained and edited != first and cache.is_complete(edited)
    assert not first.exists()  # the superseded model is removed


@pytest.mark.slow
def test_singanseg_volume_conf_trains_a_3d_model_whose_sample_is_a_whole_volume_in_the_image_grid(tmp_path, brats_item):
    from monai_singanseg.label.synthesis import singanseg_volume

    entries = write_datastore(tmp_path / "ds", [brats_item], progress=False)  # the whole real case (the demo is a slab)
    conf = {
        "singanseg_volume": "true",
        "singanseg_iters": "2",
        "singanseg_max_size": "20",
        "singanseg_min_size": "8",
        "singanseg_stages": "2",
    }
    options = app_settings(conf, str(tmp_path / "ds"), "/app")
    assert options.volume and options.settings.base_features == 16  # the 3D defaults where --conf says nothing
    assert app_settings({"singanseg_volume": "true"}, str(tmp_path / "ds"), "/app").max_size == 48
    with pytest.raises(ValueError, match="singanseg_volume"):
        app_settings({"singanseg_volume": "maybe"}, str(tmp_path / "ds"), "/app")
    entry = entries[0]
    model, trained = SinGANSegModelCache(options).ensure(DEMO, entry["image"], entry["label"])
    assert trained
    slice_options = app_settings(
        {k: v for k, v in conf.items() if k != "singanseg_volume"}, str(tmp_path / "ds"), "/app"
    )
    assert SinGANSegModelCache(slice_options).model_path(DEMO, entry["image"], entry["label"]) != model  # other key
    volume = singanseg_volume(model, entry["image"], entry["label"], options.label_values, seed=3, device="cpu")
    source = load_case({"image": entry["image"], "label": entry["label"]})
    assert volume.slice_index is None and volume.image.shape == tuple(source["image"].shape)
    assert volume.label.shape == (1, *source["label"].shape[1:])
    np.testing.assert_allclose(volume.affine, source["image"].affine.numpy(), atol=1e-6)
    assert set(np.unique(volume.label).tolist()) <= {0, 1, 2, 4}
    brain = np.abs(volume.image).sum(0) > 0
    assert 0.01 < brain.mean() < 0.5  # the model's box (the tumour's, by default), background around it
    moved = {}
    for key in ("image", "label"):  # the same data 5 mm away: another grid
        img = nib.load(entry[key])
        affine = img.affine.copy()
        affine[0, 3] += 5.0
        moved[key] = str(tmp_path / f"moved_{key}.nii.gz")
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), affine, img.header), moved[key])
    with pytest.raises(ValueError, match="trained on another volume"):
        singanseg_volume(model, moved["image"], moved["label"], options.label_values, seed=3, device="cpu")
