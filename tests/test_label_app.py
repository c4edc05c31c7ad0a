"""The real MONAI Label server with the package's app, on a free loopback port, over a temporary datastore.

The datastore holds the cropped demo case with its final label (written by ``label-datastore --demo``), a copy of
it under another id (for the train task) and an unlabelled image. Training settings are tiny (``--conf``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
from label_server import demo_studies, label_server, log_tail

from monai_singanseg.io.provenance import read_provenance

DEMO = "TCGA-FG-6692"
COPY = "TCGA-FG-6692-copy"
UNLABELLED = "unlabelled"
TINY = {"singanseg_iters": "10", "singanseg_max_size": "48", "singanseg_min_size": "12", "singanseg_stages": "3"}


@dataclass
class Server:
    url: str
    studies: Path
    log: Path

    def log_tail(self) -> str:
        return log_tail(self.log)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("monailabel")
    studies = root / "studies"
    demo_studies(studies)
    shutil.copyfile(studies / f"{DEMO}.nii.gz", studies / f"{COPY}.nii.gz")
    shutil.copyfile(studies / "labels" / "final" / f"{DEMO}.nii.gz", studies / "labels" / "final" / f"{COPY}.nii.gz")
    shutil.copyfile(studies / f"{DEMO}.nii.gz", studies / f"{UNLABELLED}.nii.gz")

    conf = [arg for key, value in TINY.items() for arg in ("--conf", key, value)]
    with label_server(studies, root, conf) as (url, log):
        yield Server(url, studies, log)


@pytest.mark.slow
def test_info_lists_the_synthesis_model_and_trainer(server):
    info = requests.get(f"{server.url}/info/", timeout=30).json()
    assert info["name"] == "monai-singanseg"
    assert {"singanseg", "pix2pix"} <= set(info["models"]) and "singanseg" in info["trainers"]
    assert info["models"]["singanseg"]["config"]["seed"] == -1
    assert sorted(info["labels"].values()) == [1, 2, 4]
    assert info["datastore"]["total"] == 3 and info["datastore"]["completed"] == 2


def test_infer_singanseg_adds_a_synthetic_labelled_image_in_the_source_geometry(server, tmp_path):
    source = nib.load(str(server.studies / f"{DEMO}.nii.gz"))
    user_label = server.studies / "labels" / "final" / f"{DEMO}.nii.gz"
    user_image = server.studies / f"{DEMO}.nii.gz"
    before = (_sha(user_label), _sha(user_image))

    r = requests.post(f"{server.url}/infer/singanseg", params={"image": DEMO, "output": "image"}, timeout=300)
    assert r.status_code == 200, r.text
    answer = tmp_path / "answer.nii.gz"
    answer.write_bytes(r.content)
    label = nib.load(str(answer))
    values = np.asanyarray(label.dataobj)
    assert label.shape == source.shape[:3]
    assert np.allclose(label.affine, source.affine)
    assert set(np.unique(values).tolist()) <= {0, 1, 2, 4}
    assert (values > 0).sum() > 50  # some tumour
    assert (_sha(user_label), _sha(user_image)) == before  # the user's files are untouched

    new_id = f"{DEMO}_singanseg_0"  # no seed given: the first free one
    image_file, label_file = (
        server.studies / f"{new_id}.nii.gz",
        server.studies / "labels" / "final" / f"{new_id}.nii.gz",
    )
    synthetic = nib.load(str(image_file))
    assert synthetic.shape == source.shape and np.allclose(synthetic.affine, source.affine)
    assert np.array_equal(np.asanyarray(nib.load(str(label_file)).dataobj), values)
    for path in (image_file, label_file):  # the stored pair says it is synthetic, made from which image
        record = read_provenance(path)
        assert record["synthetic"] and (record["generator"], record["source"]) == ("singanseg", DEMO)
    assert read_provenance(server.studies / f"{DEMO}.nii.gz") is None
    tumour_slices = np.nonzero(values.reshape(-1, values.shape[-1]).any(0))[0]
    assert len(tumour_slices) == 1  # one synthetic slice, background elsewhere
    assert np.asanyarray(synthetic.dataobj)[..., tumour_slices[0], :].any()
    listing = requests.get(f"{server.url}/datastore/", params={"output": "all"}, timeout=30).json()
    assert "final" in listing["objects"][new_id]["labels"]
    assert listing["objects"][new_id]["image"]["info"]["singanseg_source"] == DEMO

    again = requests.post(
        f"{server.url}/infer/singanseg",
        params={"image": DEMO, "output": "json"},
        data={"params": json.dumps({"seed": 7})},
        timeout=300,
    )
    assert again.status_code == 200, again.text
    result = again.json()
    assert result["synthetic_image"] == f"{DEMO}_singanseg_7" and result["model_trained_now"] is False
    taken = requests.post(
        f"{server.url}/infer/singanseg", params={"image": DEMO}, data={"params": json.dumps({"seed": 7})}, timeout=300
    )
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    assert (_sha(user_label), _sha(user_image)) == before


def test_infer_singanseg_style_option_changes_the_image_never_the_label(server):
    from monai_singanseg.label.synthesis import singanseg_volume

    r = requests.post(
        f"{server.url}/infer/singanseg",
        params={"image": DEMO, "output": "json"},
        data={"params": json.dumps({"seed": 21, "style": "histogram+random", "style_steps": 3})},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["style"] == "histogram+random"
    new_id = f"{DEMO}_singanseg_21"
    styled_image = np.asanyarray(nib.load(str(server.studies / f"{new_id}.nii.gz")).dataobj)
    styled_label = np.asanyarray(nib.load(str(server.studies / "labels" / "final" / f"{new_id}.nii.gz")).dataobj)
    plain = singanseg_volume(
        result["singanseg_model"],
        server.studies / f"{DEMO}.nii.gz",
        server.studies / "labels" / "final" / f"{DEMO}.nii.gz",
        (0, 1, 2, 4),
        seed=21,
        device="cpu",
    )
    assert np.array_equal(styled_label, plain.label[0])  # same sample, same label
    k = result["slice_index"]
    assert not np.array_equal(styled_image[..., k, :], np.moveaxis(plain.image, 0, -1)[..., k, :])
    bad = requests.post(
        f"{server.url}/infer/singanseg",
        params={"image": DEMO},
        data={"params": json.dumps({"seed": 22, "style": "vgg19"})},
        timeout=60,
    )
    assert bad.status_code == 422 and "style" in bad.json()["detail"]


def test_infer_pix2pix_renders_a_whole_synthetic_volume_for_a_deformed_label(server, tmp_path):
    source = nib.load(str(server.studies / f"{DEMO}.nii.gz"))
    user_label = server.studies / "labels" / "final" / f"{DEMO}.nii.gz"
    before = _sha(user_label)
    r = requests.post(
        f"{server.url}/infer/pix2pix",
        params={"image": DEMO, "output": "image"},
        data={"params": json.dumps({"seed": 3})},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    answer = tmp_path / "pix2pix.nii.gz"
    answer.write_bytes(r.content)
    label = nib.load(str(answer))
    values = np.asanyarray(label.dataobj)
    assert label.shape == source.shape[:3] and np.allclose(label.affine, source.affine)
    assert set(np.unique(values).tolist()) <= {0, 1, 2, 4} and (values > 0).sum() > 1000
    real = np.asanyarray(nib.load(str(user_label)).dataobj)
    assert not np.array_equal(values, real)  # a deformed copy
    image = nib.load(str(server.studies / f"{DEMO}_pix2pix_3.nii.gz"))
    assert image.shape == source.shape and np.allclose(image.affine, source.affine)
    rendered = np.asanyarray(image.dataobj)
    assert rendered[values > 0].std() > 0  # an image was drawn inside the tumour
    assert _sha(user_label) == before


def test_infer_for_an_unknown_or_unlabelled_image_is_a_clean_client_error(server):
    unknown = requests.post(f"{server.url}/infer/singanseg", params={"image": "no-such-image"}, timeout=60)
    assert unknown.status_code == 404
    assert "'no-such-image' is not in the datastore" in unknown.json()["detail"]
    unlabelled = requests.post(f"{server.url}/infer/singanseg", params={"image": UNLABELLED}, timeout=60)
    assert unlabelled.status_code == 422
    assert "has no final label" in unlabelled.json()["detail"]
    bad = requests.post(
        f"{server.url}/infer/singanseg",
        params={"image": DEMO},
        data={"params": json.dumps({"start_scale": 99})},
        timeout=300,
    )
    assert bad.status_code == 422 and "start_scale" in bad.json()["detail"]


def test_huge_or_coerced_parameters_are_refused_at_once_and_the_server_stays_up(server):
    """A request for a billion style steps once blocked every endpoint until SIGKILL; numbers are bounded now."""
    start = time.monotonic()
    huge = requests.post(
        f"{server.url}/infer/singanseg",
        params={"image": DEMO},
        data={"params": json.dumps({"style": "random", "style_steps": 1000000000})},
        timeout=60,
    )
    assert huge.status_code == 422 and "style_steps" in huge.json()["detail"] and "[0, 10000]" in huge.json()["detail"]
    assert requests.get(f"{server.url}/info/", timeout=10).status_code == 200
    assert time.monotonic() - start < 30
    for params in (
        {"seed": -5},
        {"seed": 1.5},
        {"seed": True},
        {"seed": "true"},
        {"threshold": "nan"},
        {"threshold": 2},
        {"min_component": -1},
        {"deform": 7},
    ):
        model = "pix2pix" if "deform" in params else "singanseg"
        res = requests.post(
            f"{server.url}/infer/{model}", params={"image": DEMO}, data={"params": json.dumps(params)}, timeout=60
        )
        name = next(iter(params))
        assert res.status_code == 422 and f"parameter {name}=" in res.json()["detail"], (params, res.text[:300])
    assert not any(
        p.name.endswith(".nii.gz") and "_singanseg_" in p.name and "-5" in p.name for p in server.studies.iterdir()
    )


@pytest.mark.slow
def test_train_task_trains_every_labelled_image_and_reports_progress(server):
    r = requests.post(f"{server.url}/train/singanseg", json={}, timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 240
    while True:
        status = requests.get(f"{server.url}/train/", timeout=30).json()
        if status["status"] not in ("SUBMITTED", "RUNNING"):
            break
        assert time.monotonic() < deadline, f"training still running:\n{status}"
        time.sleep(1)
    log = "\n".join(status.get("details", []))
    assert status["status"] == "DONE", log
    assert f"{COPY}: trained" in log and "SinGAN-Seg scale 3/3" in log
    models = server.studies / "singanseg_models"
    for image_id in (DEMO, COPY):
        assert len(list((models / image_id).glob("*.pt"))) == 1
    # neither the unlabelled image nor the synthetic ones added by the infer tests get a model
    assert sorted(p.name for p in models.iterdir() if p.is_dir()) == sorted([DEMO, COPY])
