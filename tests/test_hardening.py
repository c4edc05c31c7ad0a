"""Hostile and careless input (the hardening issue): model files from strangers, interrupted runs, resumes with
other data, nonsense options. Each is refused with a message naming the input, nothing is written outside the
output folder, and an interrupted run completes to exactly what an uninterrupted one writes."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import cli, run_cli

from monai_singanseg.data import demo_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings, train_pix2pix
from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer
from monai_singanseg.io import ModelFileError, load_model_file
from monai_singanseg.io.atomic import atomic_path
from monai_singanseg.synthesis import pix2pix_training_slices, singanseg_training_input

REPO = Path(__file__).resolve().parents[1]
SINGANSEG_MODEL = REPO / "bundles" / "singanseg" / "models" / "singanseg.pt"
PIX2PIX_MODEL = REPO / "bundles" / "pix2pix" / "models" / "pix2pix.pt"
TINY = SinGANSegSettings(min_size=12, iters=2, num_stages=2, critic_steps=1, generator_steps=1, base_features=4)


def refused(res: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 1 or 2, no Python traceback, and the message holds ``words``."""
    assert res.returncode in (1, 2), res.stdout[-2000:] + res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for word in words:
        assert word in res.stderr, (word, res.stderr[-2000:])


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): (gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def crafted(tmp_path: Path, name: str, **config_changes) -> Path:
    """The shipped SinGAN-Seg model with a stranger's config values (torch.save of a plain dict)."""
    payload = torch.load(SINGANSEG_MODEL, weights_only=True)
    payload["config"].update(config_changes)
    path = tmp_path / name
    torch.save(payload, path)
    return path


# ------------------------------------------------------------------ 1. strings that become paths
@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [{"source_name": "../../evil"}, {"source_name": "/tmp/abs"}, {"image_channels": ["../x", "t1", "t1ce", "t2"]}],
)
def test_model_file_names_with_traversal_are_refused_and_nothing_is_written(tmp_path, change):
    model = crafted(tmp_path, "evil.pt", **change)
    with pytest.raises(ModelFileError, match="not a safe file-name part"):
        load_model_file(model)
    out = tmp_path / "a" / "b" / "out"
    (tmp_path / "a" / "victim.nii.gz").parent.mkdir(parents=True)
    (tmp_path / "a" / "victim.nii.gz").write_bytes(b"precious")
    before = sorted(p for p in tmp_path.rglob("*"))
    refused(run_cli("generate", "--model", str(model), "--num", "2", "--out", str(out)), "not a safe file-name part")
    assert (
        sorted(p for p in tmp_path.rglob("*")) == before
        and (tmp_path / "a" / "victim.nii.gz").read_bytes() == b"precious"
    )


@pytest.mark.parametrize("name", ["../../X", "/tmp/abs", "a/b", ".."])
def test_render_name_outside_the_output_folder_is_refused(tmp_path, name):
    res = run_cli(
        "render",
        "--model",
        str(PIX2PIX_MODEL),
        "--label",
        demo_case()["label"],
        "--name",
        name,
        "--out",
        str(tmp_path / "out"),
    )
    refused(res, "--name")
    assert not (tmp_path / "out").exists() and not list(tmp_path.parent.glob("X_*"))


# ------------------------------------------------------------------ 3. resume with other inputs
def test_resume_with_other_data_is_refused(brats_item, shared_data, tmp_path):
    gan_a, meta_a = singanseg_training_input(brats_item["image"], brats_item["label"], "auto", max_size=24)
    other = shared_data / "brats_tcga" / "TCGA-DU-7294"
    images = [str(other / f"TCGA-DU-7294_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]
    gan_b, meta_b = singanseg_training_input(images, str(other / "TCGA-DU-7294_seg.nii.gz"), "auto", max_size=24)
    out = SinGANSegTrainer(TINY, progress=False).fit(gan_a, tmp_path / "a.pt", meta_a)
    with pytest.raises(ModelFileError, match="trained on other data"):
        SinGANSegTrainer(TINY, progress=False).fit(gan_b, out, meta_b, resume=True)
    assert SinGANSegTrainer(TINY, progress=False).fit(gan_a, out, meta_a, resume=True) == out  # the same data resumes
    settings = Pix2PixSettings(size=32, epochs=1, batch_size=8, generator_channels=8, critic_channels=8)
    p2p = tmp_path / "p.pt"
    train_pix2pix(pix2pix_training_slices([demo_case()], settings, progress=False), p2p, progress=False)
    other_data = pix2pix_training_slices(
        [{"image": images, "label": str(other / "TCGA-DU-7294_seg.nii.gz")}], settings, progress=False
    )
    with pytest.raises(ModelFileError, match="trained on other data"):
        train_pix2pix(
            other_data, p2p, Pix2PixSettings(**{**settings.__dict__, "epochs": 2}), resume=True, progress=False
        )


# ------------------------------------------------------------------ 4. interrupted generation
@pytest.mark.slow
def test_killed_render_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["render", "--model", str(PIX2PIX_MODEL), "--label", demo_case()["label"], "--deform", "6", "--seed", "2"]
    assert cli(*args, "--out", str(tmp_path / "full")).returncode == 0
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monai_singanseg", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not list(out.glob("*_def001_seg.nii.gz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "datalist.json").exists(), "the run finished before it was killed"
    refused(cli(*args, "--out", str(out)), "already exists")  # a plain rerun does not overwrite
    res = cli(*args, "--out", str(out), "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "kept from the interrupted run" in res.stdout or "wrote 6" in res.stdout
    assert files(out) == files(tmp_path / "full")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.slow
def test_resume_completes_partial_cases_removes_stale_temps_and_refuses_another_run(tmp_path):
    args = ["generate", "--model", str(SINGANSEG_MODEL), "--num", "5", "--seed", "3"]
    assert cli(*args, "--out", str(tmp_path / "full")).returncode == 0
    out = tmp_path / "part"
    assert cli(*args, "--out", str(out)).returncode == 0
    cases = sorted(p.name.removesuffix("_seg.nii.gz") for p in out.glob("*_seg.nii.gz"))
    (out / f"{cases[1]}_t1.nii.gz").unlink()  # as a kill between two of its files would leave it
    for p in out.glob(f"{cases[4]}_*"):
        p.unlink()
    for name in ("datalist.json", "preview.png"):
        (out / name).unlink()
    (out / f".{cases[2]}_flair.nii.gz.x1y2.tmp.nii.gz").write_bytes(b"")  # a killed writer's 0-byte temp file
    res = cli(*args, "--out", str(out), "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "3 kept" in res.stdout
    assert files(out) == files(tmp_path / "full")
    refused(cli(*args[:-1], "4", "--out", str(out), "--resume"), "another synthesis run")


def test_a_killed_model_save_leaves_no_stale_temp_file(tmp_path):
    dest = tmp_path / "model.pt"
    stale = tmp_path / ".model.pt.abc123.tmp.pt"
    stale.write_bytes(b"")
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"x")
    assert dest.read_bytes() == b"x" and not stale.exists()


# ------------------------------------------------------------------ 5./6. messages instead of tracebacks
def test_bad_options_and_model_files_give_messages_not_tracebacks(tmp_path, brats_item):
    img, lab = brats_item["image"], brats_item["label"]
    text = tmp_path / "text.pt"
    text.write_text("not a model", encoding="utf-8")
    keyless = tmp_path / "keyless.pt"
    torch.save({"format": "monai-singanseg-model", "format_version": 1, "kind": "singanseg", "config": {}}, keyless)
    nan_model = tmp_path / "nan.pt"
    payload = torch.load(SINGANSEG_MODEL, weights_only=True)
    first = next(iter(payload["state"]["generator"]))
    payload["state"]["generator"][first] = torch.full_like(payload["state"]["generator"][first], float("nan"))
    torch.save(payload, nan_model)
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    bad_json = tmp_path / "datalist.json"
    bad_json.write_text('{"training": [', encoding="utf-8")
    out = str(tmp_path / "out")
    gen = ["generate", "--model", str(SINGANSEG_MODEL)]
    cases = [
        (
            ["train-singanseg", "--image", *img, "--label", lab, "--slice", "999", "--out", out],
            ["--slice 999", "0..154"],
        ),
        (["train-singanseg", "--image", *img, "--label", lab, "--slice", "-1", "--out", out], ["--slice -1"]),
        (["train-singanseg", "--image", *img, "--label", lab, "--max-size", "0", "--out", out], ["--max-size"]),
        (["generate", "--model", str(text), "--out", out], ["not a readable monai-singanseg model file"]),
        (["generate", "--model", str(keyless), "--out", out], ["lacks", "not a complete model file"]),
        (["generate", "--model", str(nan_model), "--out", out], ["NaN"]),
        ([*gen, "--out", out, "--device", "cuda"], ["device 'cuda'", "no CUDA"]),
        ([*gen, "--out", out, "--device", "tpu"], ["device 'tpu'"]),
        ([*gen, "--out", out, "--seed", str(2**64)], ["--seed", "[0, 4294967295]"]),
        ([*gen, "--out", out, "--threshold", "nan"], ["--threshold"]),
        ([*gen, "--out", out, "--threshold", "2"], ["--threshold"]),
        ([*gen, "--out", str(afile)], ["is a file, not a folder"]),
        (["render", "--model", str(PIX2PIX_MODEL), "--label", img[0], "--out", out], ["label"]),
        (
            ["train-pix2pix", "--datalist", str(bad_json), "--out", str(tmp_path / "p.pt")],
            [str(bad_json), "not valid JSON"],
        ),
        (
            ["train-pix2pix", "--data", str(Path(lab).parent), "--out", str(tmp_path / "p.pt"), "--batch-size", "0"],
            ["--batch-size"],
        ),
        (
            ["train-pix2pix", "--data", str(Path(lab).parent), "--out", str(tmp_path / "p.pt"), "--epochs", "0"],
            ["--epochs"],
        ),
        (["evaluate", "--data", str(Path(lab).parent.parent), "--out", out, "--folds", "0"], ["--folds"]),
    ]
    for args, words in cases:  # in this process: the messages are the point, not the process
        refused(run_cli(*args), *words)
    assert not (tmp_path / "out").exists() and not (tmp_path / "p.pt").exists()


def test_a_4d_label_given_to_render_is_refused(tmp_path, brats_item):
    import nibabel as nib
    import numpy as np

    vol = nib.load(brats_item["label"])
    four_d = tmp_path / "four_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([np.asarray(vol.dataobj)] * 2, -1).astype(np.uint8), vol.affine), four_d)
    refused(
        cli(
            "render",
            "--model",
            str(PIX2PIX_MODEL),
            "--label",
            str(four_d),
            "--brain-mask",
            brats_item["image"][1],
            "--out",
            str(tmp_path / "out"),
        )
    )
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 7. evaluate checks every case first
def test_evaluate_checks_every_case_before_any_training(tmp_path, brats_item):
    import nibabel as nib
    import numpy as np

    bad = tmp_path / "data" / "BAD"
    bad.mkdir(parents=True)
    seg = nib.load(brats_item["label"])
    for m, path in zip(("flair", "t1", "t1ce", "t2"), brats_item["image"]):
        (bad / f"BAD_{m}.nii.gz").write_bytes(Path(path).read_bytes())
    nib.save(nib.Nifti1Image(np.zeros(seg.shape, np.uint8), seg.affine), bad / "BAD_seg.nii.gz")  # no tumour
    good = tmp_path / "data" / "TCGA-FG-6692"
    good.mkdir()
    for path in [*brats_item["image"], brats_item["label"]]:
        (good / Path(path).name).write_bytes(Path(path).read_bytes())
    out = tmp_path / "report"
    refused(
        run_cli("evaluate", "--data", str(tmp_path / "data"), "--out", str(out), "--quick"),
        "BAD",
        "no tumour",
        "nothing was trained",
    )
    assert not out.exists()


def test_a_file_that_is_not_a_model_file_is_named_for_what_it_is(tmp_path):
    """One sniffing of model files: text, empty and JSON files, a bare state dict (a bundle's models/model.pt, with
    the package's model file beside it) and a newer format each get a message saying what the file is."""
    text, empty, js = tmp_path / "notes.txt", tmp_path / "empty.pt", tmp_path / "model.json"
    text.write_text("hello world\n", encoding="utf-8")
    empty.write_bytes(b"")
    js.write_text('{"kind": "singanseg"}', encoding="utf-8")
    bundle_models = REPO / "bundles" / "singanseg" / "models"
    newer = tmp_path / "newer.pt"
    torch.save({**torch.load(SINGANSEG_MODEL, weights_only=True), "format_version": 99}, newer)
    cases = [
        (text, ["a text file", "torch archives"]),
        (empty, ["an empty file"]),
        (js, ["a text file"]),
        (bundle_models / "model.pt", ["a bare state dict", str(bundle_models / "singanseg.pt")]),
        (newer, ["newer monai-singanseg", "version 99", "update"]),
    ]
    for model, words in cases:
        for command in (["generate", "--num", "1"], ["render", "--label", demo_case()["label"]]):
            refused(run_cli(command[0], "--model", str(model), *command[1:], "--out", str(tmp_path / "out")), *words)
    assert not (tmp_path / "out").exists()


def test_an_output_in_or_as_a_file_is_one_clear_error_in_every_command(tmp_path, brats_item, shared_data):
    """One place checks output paths: a file where a folder is needed, or a folder where a model file is written,
    is refused with the path named (no raw OS error), and nothing is written."""
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    train = ["train-singanseg", "--image", brats_item["image"][0], "--label", brats_item["label"]]
    cases = [
        ([*train, "--out", str(afile / "model.pt")], [f"{afile} is a file, not a folder"]),
        ([*train, "--out", str(tmp_path)], [f"{tmp_path} is a folder", "give a file name"]),
        (["label-datastore", "--demo", "--out", str(afile)], [f"{afile} is a file, not a folder"]),
        (["label-datastore", "--demo", "--out", str(afile / "studies")], [f"{afile} is a file, not a folder"]),
        (
            ["evaluate", "--data", str(shared_data / "brats_tcga"), "--out", str(afile / "report"), "--quick"],
            [f"{afile} is a file, not a folder"],
        ),
    ]
    before = sorted(tmp_path.rglob("*"))
    for args, words in cases:
        res = run_cli(*args, "--quiet")
        refused(res, *words)
        assert "Errno" not in res.stderr, res.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_evaluate_names_the_style_weights_flag_before_any_case_is_loaded(tmp_path):
    res = run_cli(
        "evaluate", "--data", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "r"), "--style", "vgg19"
    )
    refused(res, "--style-weights")  # the settings are checked before the (missing) data is even looked at
    assert not (tmp_path / "r").exists()


def test_a_label_without_tumour_or_with_other_values_is_named(tmp_path, brats_item, shared_data):
    import nibabel as nib
    import numpy as np

    seg = nib.load(brats_item["label"])
    empty = tmp_path / "empty_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(seg.shape, np.uint8), seg.affine), empty)
    train = ["train-singanseg", "--image", brats_item["image"][0], "--out", str(tmp_path / "m.pt")]
    refused(run_cli(*train, "--label", str(empty)), "holds no tumour", "every voxel is background")
    # BraTS labels (1, 2, 4) with --label-values 0 1: the values are named, never thresholded away into "no tumour"
    p2p = ["train-pix2pix", "--data", str(shared_data / "brats_tcga"), "--out", str(tmp_path / "p.pt")]
    refused(run_cli(*p2p, "--label-values", "0", "1", "--quiet"), "outside the expected set [0, 1]")
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "p.pt").exists()


def test_an_all_zero_image_is_refused_naming_the_file(tmp_path, brats_item):
    import nibabel as nib
    import numpy as np

    flair = nib.load(brats_item["image"][0])
    zero = tmp_path / "zero_flair.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(flair.shape, np.int16), flair.affine), zero)
    res = run_cli("train-singanseg", "--image", str(zero), "--label", brats_item["label"], "--out", str(tmp_path / "m"))
    refused(res, str(zero), "all zero")
    assert not (tmp_path / "m").exists()


def test_a_datalist_naming_a_case_twice_and_resume_with_nothing_to_resume_are_refused(tmp_path, brats_item):
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"training": [brats_item, {**brats_item, "name": "other"}]}), encoding="utf-8")
    for command in (["train-pix2pix", "--datalist"], ["synthesize", "--data"]):
        res = run_cli(*command, str(twice), "--out", str(tmp_path / "out"), "--quiet")
        refused(res, str(twice), "entries 0 and 1 name one case twice")
    for command in (
        ["train-pix2pix", "--datalist", str(tmp_path / "unused.json")],
        ["train-singanseg", "--image", brats_item["image"][0], "--label", brats_item["label"]],
    ):
        refused(run_cli(*command, "--out", str(tmp_path / "none.pt"), "--resume"), "nothing to resume")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twice.json"]
