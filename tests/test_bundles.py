"""The MONAI bundles, run as users run them: ``python -m monai.bundle ...`` in a subprocess from the repository root."""

from __future__ import annotations

import ast
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import cli, run_command, torchrun_command
from monai.bundle import ConfigParser
from monai.data import load_decathlon_datalist

from monai_singanseg.data import demo_case
from monai_singanseg.engines.pix2pix import recorded_settings
from monai_singanseg.engines.singanseg import recorded_training
from monai_singanseg.io.modelfile import load_model_file

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "bundles" / "meta_schema_20240725.json"
BUNDLES = ["singanseg", "pix2pix"]


def bundle(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m monai.bundle ARGS`` in the repository."""
    return cli(*args, timeout=timeout, module="monai.bundle")


def config(name: str, which: str) -> str:
    return f"bundles/{name}/configs/{which}.json"


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_verifies_offline_against_the_shipped_schema(name, tmp_path):
    res = bundle("verify_metadata", "--meta_file", config(name, "metadata"), "--filepath", str(SCHEMA))
    assert res.returncode == 0 and "metadata is verified with no error" in res.stdout + res.stderr, res.stderr[-2000:]
    broken = json.loads((REPO / config(name, "metadata")).read_text(encoding="utf-8"))
    del broken["task"]
    (tmp_path / "metadata.json").write_text(json.dumps(broken), encoding="utf-8")
    res = bundle("verify_metadata", "--meta_file", str(tmp_path / "metadata.json"), "--filepath", str(SCHEMA))
    assert res.returncode != 0 and "task" in res.stdout + res.stderr


def command_overrides(command: str) -> dict[str, object]:
    """The ``--key value`` overrides after ``--config_file FILE`` in a ``monai.bundle run`` command (values read as
    Python literals where they are, else text, as the bundle runner reads them)."""
    words = shlex.split(command)
    rest = words[words.index("--config_file") + 2 :]
    assert len(rest) % 2 == 0 and all(w.startswith("--") for w in rest[::2]), rest
    values = {}
    for flag, text in zip(rest[::2], rest[1::2]):
        try:
            values[flag[2:]] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[flag[2:]] = text
    return values


#: a bundle's training settings: the config key of its settings object (the model file's recorded settings are read
#: through ``recorded_settings`` / ``recorded_training``, which fill settings added after a file was written).
SETTINGS_KEYS = {"singanseg": "settings", "pix2pix": "train_settings"}


@pytest.mark.parametrize("name", BUNDLES)
def test_the_shipped_model_is_what_the_bundles_own_training_config_makes(name):
    """The metadata names the training command, and the shipped model file records the very settings and data that
    the bundle's train.json resolves to (so the command reproduces it)."""
    from monai.bundle import ConfigParser

    meta = json.loads((REPO / config(name, "metadata")).read_text(encoding="utf-8"))
    command = meta["model_training"]["command"]
    assert f"--config_file {config(name, 'train')}" in command and "monai.bundle run training" in command
    parser = ConfigParser()
    parser.read_config(str(REPO / config(name, "train")))
    parser["bundle_root"] = str(REPO / "bundles" / name)
    for key, value in command_overrides(command).items():  # e.g. --dataset_dir: the data the command names
        parser[key] = str(REPO / value) if key.endswith("_dir") else value
    settings = parser.get_parsed_content(SETTINGS_KEYS[name])
    shipped = load_model_file(REPO / "bundles" / name / "models" / f"{name}.pt").config
    recorded = recorded_settings(shipped).to_dict() if name == "pix2pix" else recorded_training(shipped)
    assert recorded == settings.to_dict()
    if name == "singanseg":
        case = parser.get_parsed_content("datalist")[parser.get_parsed_content("case_index")]
        assert shipped.source_name == case["name"]
    else:
        assert shipped.training_cases == [c["name"] for c in parser.get_parsed_content("train_datalist")]


def test_pix2pix_network_matches_its_metadata():
    res = bundle(
        "verify_net_in_out",
        "network_def",
        "--meta_file",
        config("pix2pix", "metadata"),
        "--config_file",
        config("pix2pix", "inference"),
    )
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


def _check_flat_state_dict(name: str, folder: Path, shipped) -> None:
    """``folder/model.pt`` is a flat state dict that loads strictly into inference.json's network_def (built from
    ``folder/<name>.pt``) and holds the package model file's generator weights."""
    flat = torch.load(folder / "model.pt", weights_only=True)
    parser = ConfigParser()
    parser.read_config(REPO / config(name, "inference"))
    parser["model_file"] = str(folder / f"{name}.pt")
    parser.get_parsed_content("network_def").load_state_dict(flat, strict=True)
    assert all(torch.equal(flat[k], v.float()) for k, v in shipped.state["generator"].items())


TINY_PIX2PIX = ["--size", "32", "--generator_channels", "4", "--critic_channels", "4", "--progress", "False"]


def _pix2pix_outputs(folder: Path) -> list[str]:
    return [
        "--checkpoint_file",
        str(folder / "checkpoint.pt"),
        "--model_file",
        str(folder / "pix2pix.pt"),
        "--state_dict_file",
        str(folder / "model.pt"),
    ]


@pytest.mark.parametrize("architecture", ["unet", "spade"])
def test_pix2pix_training_validates_and_writes_all_three_model_files(architecture, tmp_path):
    res = bundle(
        "run",
        "training",
        "--config_file",
        config("pix2pix", "train"),
        "--epochs",
        "2",
        "--val_interval",
        "1",
        "--settings#architecture",
        architecture,
        *TINY_PIX2PIX,
        *_pix2pix_outputs(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    # the ValidationHandler ran the evaluator after each epoch, and StatsHandler printed the epoch losses
    assert log.count("val_mean_abs_error:") >= 2 and "val_ssim:" in log and "l1:" in log
    shipped = load_model_file(tmp_path / "pix2pix.pt", expected_kind="pix2pix")
    assert shipped.config.inference_only and list(shipped.state) == ["generator"]
    assert shipped.config.epochs_done == 2 and shipped.config.size == 32
    assert shipped.config.architecture == architecture
    assert set(load_model_file(tmp_path / "checkpoint.pt").state) == {"generator", "critic"}
    _check_flat_state_dict("pix2pix", tmp_path, shipped)  # inference.json's network_def builds this architecture


@pytest.mark.slow
def test_pix2pix_bundle_training_killed_and_resumed_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL a bundle run after its second checkpoint, resume it with --resume True: same weights as one run."""
    args = [
        "run",
        "training",
        "--config_file",
        config("pix2pix", "train"),
        "--epochs",
        "12",
        "--size",
        "64",
        "--generator_channels",
        "8",
        "--critic_channels",
        "8",
        "--progress",
        "False",
        "--val_interval",
        "5",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monai.bundle", *args, *_pix2pix_outputs(killed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint, done = killed / "checkpoint.pt", 0
    try:
        deadline = time.monotonic() + 300
        while done < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if checkpoint.exists():
                try:
                    done = load_model_file(checkpoint).config.epochs_done
                except Exception:  # noqa: BLE001 - the file is being replaced; look again
                    continue
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 2 <= load_model_file(checkpoint).config.epochs_done < 12, "the run ended before it could be killed"
    assert not (killed / "pix2pix.pt").exists()  # finalize never ran
    res = bundle(*args, *_pix2pix_outputs(killed), "--resume", "True")
    assert res.returncode == 0, res.stderr[-3000:]
    res = bundle(*args, *_pix2pix_outputs(whole))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = (torch.load(folder / "model.pt", weights_only=True) for folder in (killed, whole))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    losses = [
        [
            {k: v for k, v in record.items() if k != "seconds"}
            for record in load_model_file(f / "checkpoint.pt").config.history
        ]
        for f in (killed, whole)
    ]
    assert len(losses[0]) == 12 and losses[0] == losses[1]


@pytest.mark.slow
@pytest.mark.torchrun
def test_pix2pix_multi_gpu_config_trains_data_parallel_under_torchrun(tmp_path):
    """The zoo's pattern on CPU: torchrun, 2 processes (gloo), DDP, a DistributedSampler; rank 0 writes the model."""
    cmd = torchrun_command(
        "monai.bundle",
        "run",
        "--config_file",
        f"['{config('pix2pix', 'train')}','{config('pix2pix', 'multi_gpu_train')}']",
        "--epochs",
        "1",
        "--val_interval",
        "1",
        *TINY_PIX2PIX,
        *_pix2pix_outputs(tmp_path),
    )
    res = run_command(cmd)
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    # both ranks validated their share; only rank 0 printed statistics
    assert log.count("SupervisedEvaluator - INFO - Epoch[1] Complete") == 2
    assert log.count("Metrics -- val_mean_abs_error:") == 1 and log.count("Metrics -- feature_matching:") == 1
    model = load_model_file(tmp_path / "pix2pix.pt", expected_kind="pix2pix")
    assert model.config.epochs_done == 1 and model.config.num_slices == 20
    flat = torch.load(tmp_path / "model.pt", weights_only=True)
    assert flat and all(torch.isfinite(v).all() for v in flat.values())
    assert not any(k.startswith("module.") for k in flat)  # the network's own names, not DDP's wrapper


#: keys the model zoo's CONTRIBUTING requires (train: bundle_root, device, dataset_dir, output_dir and the train
#: and validate components; inference: bundle_root, device, network_def, inferer, output_dir).
ZOO_TRAIN_KEYS = [
    "bundle_root",
    "device",
    "dataset_dir",
    "output_dir",
    "train#trainer",
    "train#trainer#max_epochs",
    "train#dataset",
    "train#dataset#data",
    "train#handlers",
    "initialize",
    "run",
    "finalize",
]
ZOO_VALIDATE_KEYS = [
    "validate#evaluator",
    "validate#handlers",
    "validate#dataset",
    "validate#dataset#data",
    "val_interval",
]
ZOO_INFERENCE_KEYS = ["bundle_root", "device", "network_def", "inferer", "output_dir"]
#: SinGAN-Seg learns one image: it has no held-out data, hence no validate section (its bundle README says why)
ZOO_KEYS = {
    ("pix2pix", "train"): ZOO_TRAIN_KEYS + ZOO_VALIDATE_KEYS,
    ("pix2pix", "inference"): ZOO_INFERENCE_KEYS,
    ("singanseg", "train"): ZOO_TRAIN_KEYS,
    ("singanseg", "inference"): ZOO_INFERENCE_KEYS,
}


@pytest.mark.parametrize("name,which", list(ZOO_KEYS))
def test_configs_have_the_keys_the_model_zoo_requires(name, which):
    parser = ConfigParser()
    parser.read_config(REPO / config(name, which))
    missing = [k for k in ZOO_KEYS[name, which] if k not in parser]
    assert not missing, f"{name} {which}.json lacks {missing}"
    if which == "train":
        assert parser["train#trainer#max_epochs"] == {"pix2pix": "@epochs", "singanseg": "@iters"}[name]
        # the trainer is built from the dataset and handlers the zoo's keys name (overriding them changes training)
        trainer = json.dumps(parser["train#trainer"])
        assert "@train#dataset" in trainer and "@train#handlers" in trainer
    if name == "pix2pix" and which == "train":
        # the ValidationHandler's interval is val_interval, as the zoo asks
        handler = next(h for h in parser["train#handlers"] if h["_target_"] == "ValidationHandler")
        assert handler["interval"] == "@val_interval"


@pytest.mark.slow
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
    again = bundle(
        "run", "--config_file", config("pix2pix", "inference"), "--output_dir", str(out), "--num_samples", "2"
    )
    assert again.returncode != 0 and "already exists" in again.stderr


def test_pix2pix_ckpt_export_scripts_the_shipped_generator(tmp_path):
    """MONAI's own ``ckpt_export`` reads models/model.pt into network_def; the TorchScript renders as the model file."""
    ts = tmp_path / "model.ts"
    res = bundle(
        "ckpt_export",
        "--net_id",
        "network_def",
        "--filepath",
        str(ts),
        "--ckpt_file",
        "bundles/pix2pix/models/model.pt",
        "--meta_file",
        config("pix2pix", "metadata"),
        "--config_file",
        config("pix2pix", "inference"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    scripted = torch.jit.load(str(ts))
    from monai_singanseg.inferers.pix2pix import load_pix2pix

    generator, cfg = load_pix2pix(str(REPO / "bundles/pix2pix/models/pix2pix.pt"), torch.device("cpu"))
    x = torch.rand(1, cfg.generator_in_channels, cfg.size, cfg.size)
    with torch.no_grad():
        assert torch.allclose(scripted(x), generator(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLES)
def test_a_missing_dataset_folder_is_a_clear_error(name, tmp_path):
    missing = tmp_path / "no_such_folder"
    res = bundle(
        "run",
        "training",
        "--config_file",
        config(name, "train"),
        "--dataset_dir",
        str(missing),
        "--model_file",
        str(tmp_path / "m.pt"),
        "--checkpoint_file",
        str(tmp_path / "c.pt"),
    )
    assert res.returncode != 0
    assert f"{missing}: not a folder" in res.stderr
    assert not (tmp_path / "m.pt").exists()


def test_singanseg_network_matches_its_metadata():
    res = bundle(
        "verify_net_in_out",
        "network_def",
        "--meta_file",
        config("singanseg", "metadata"),
        "--config_file",
        config("singanseg", "inference"),
    )
    assert res.returncode == 0 and "verified with no error" in res.stdout + res.stderr, res.stderr[-2000:]


TINY_SINGANSEG = [
    "--max_size",
    "32",
    "--num_stages",
    "3",
    "--settings#min_size",
    "12",
    "--settings#critic_steps",
    "1",
    "--settings#base_features",
    "8",
    "--progress",
    "False",
]


def _sample_trained_model(folder: Path, num: int) -> Path:
    """``inference.json`` on the model a test trained into ``folder``: ``num`` samples in ``folder/samples``."""
    out = folder / "samples"
    res = bundle(
        "run",
        "--config_file",
        config("singanseg", "inference"),
        "--model_file",
        str(folder / "singanseg.pt"),
        "--output_dir",
        str(out),
        "--num_samples",
        str(num),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _singanseg_outputs(folder: Path) -> list[str]:
    return [
        "--checkpoint_file",
        str(folder / "checkpoint.pt"),
        "--model_file",
        str(folder / "singanseg.pt"),
        "--state_dict_file",
        str(folder / "model.pt"),
    ]


@pytest.mark.slow
def test_singanseg_training_max_epochs_override_writes_all_three_model_files(tmp_path):
    """``--train#trainer#max_epochs`` (the zoo's knob) sets the iterations of every scale; finalize writes the files."""
    res = bundle(
        "run",
        "training",
        "--config_file",
        config("singanseg", "train"),
        *TINY_SINGANSEG,
        "--train#trainer#max_epochs",
        "4",
        "--log_every",
        "2",
        *_singanseg_outputs(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    # StatsHandler on every scale's engine, every log_every iterations: 12 at the coarsest scale, 4 at the two others
    assert log.count("Iter: 12/12 -- adv:") == 1 and log.count("Iter: 4/4 -- adv:") == 2, log[-3000:]
    assert log.count(" -- adv:") == 6 + 2 + 2 and "rec:" in log
    shipped = load_model_file(tmp_path / "singanseg.pt", expected_kind="singanseg")
    assert shipped.config.inference_only and shipped.config.complete and list(shipped.state) == ["generator"]
    assert list(shipped.tensors) == ["reconstruction_noise"]
    assert shipped.config.training["iters"] == 4 and shipped.config.training["coarsest_iters"] == 12  # 200:600 kept
    checkpoint = load_model_file(tmp_path / "checkpoint.pt", expected_kind="singanseg")
    assert {"generator", "critic"} <= set(checkpoint.state)
    _check_flat_state_dict("singanseg", tmp_path, shipped)
    out = _sample_trained_model(tmp_path, 3)
    assert len(_check_synthetic_cases(out, None)) == 3


@pytest.mark.slow
def test_singanseg_bundle_trains_and_samples_a_3d_model_with_volume_true(shared_data, tmp_path):
    res = bundle(
        "run",
        "training",
        "--config_file",
        config("singanseg", "train"),
        "--dataset_dir",
        str(shared_data / "brats_tcga"),
        "--volume",
        "True",
        "--max_size",
        "20",
        "--num_stages",
        "3",
        "--iters",
        "2",
        "--coarsest_iters",
        "2",
        "--settings#min_size",
        "8",
        "--settings#critic_steps",
        "1",
        "--settings#base_features",
        "8",
        "--progress",
        "False",
        *_singanseg_outputs(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    shipped = load_model_file(tmp_path / "singanseg.pt", expected_kind="singanseg")
    assert shipped.config.spatial_dims == 3 and shipped.config.source_grid_shape == [240, 240, 155]
    _check_flat_state_dict("singanseg", tmp_path, shipped)  # network_def is the 3D pyramid
    out = _sample_trained_model(tmp_path, 1)
    (entry,) = _check_synthetic_cases(out, None)
    assert nib.load(entry["label"]).shape == tuple(shipped.config.scale_sizes[-1])


@pytest.mark.parametrize("volume", [False, True])
def test_singanseg_configs_take_the_3d_cpu_defaults_with_volume_true(volume):
    """``volume`` alone switches train.json and synthesize.json to the command line's ``--volume`` defaults."""
    from monai_singanseg.engines.singanseg import VOLUME_DEFAULTS
    from monai_singanseg.synthesis import default_max_size

    expected = VOLUME_DEFAULTS if volume else {"base_features": 32, "iters": 200}
    for which, key in (("train", "settings"), ("synthesize", "training")):
        parser = ConfigParser()
        parser.read_config(config("singanseg", which))
        parser["volume"] = volume
        settings = parser.get_parsed_content(key)
        assert (settings.base_features, settings.iters) == (expected["base_features"], expected["iters"]), which
    parser["settings"] = {
        "_target_": "monai_singanseg.farm.DatasetSettings",
        "volume": "@volume",
        "max_size": "@max_size",
    }
    assert parser.get_parsed_content("settings").max_size == default_max_size(volume) == (48 if volume else 128)


def test_singanseg_training_refuses_a_datalist_slice_of_several_cases(tmp_path):
    two = "$@datalist[:1] * 2"
    res = bundle(
        "run",
        "training",
        "--config_file",
        config("singanseg", "train"),
        *TINY_SINGANSEG,
        "--train#dataset#data",
        two,
        *_singanseg_outputs(tmp_path),
    )
    assert res.returncode != 0 and "got 2 datalist entries" in res.stderr
    assert not any(tmp_path.iterdir())


def test_singanseg_ckpt_export_traces_the_sampler_of_the_shipped_weights(tmp_path):
    """``ckpt_export`` reads models/model.pt into network_def and traces it; the export samples as the model file."""
    ts = tmp_path / "model.ts"
    res = bundle(
        "ckpt_export",
        "--net_id",
        "network_def",
        "--filepath",
        str(ts),
        "--ckpt_file",
        "bundles/singanseg/models/model.pt",
        "--meta_file",
        config("singanseg", "metadata"),
        "--config_file",
        config("singanseg", "inference"),
        "--use_trace",
        "True",
        "--input_shape",
        "[1, 7, 16, 16]",
        "--converter_kwargs",
        "{'check_trace': False}",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    traced = torch.jit.load(str(ts))
    from monai_singanseg.inferers import SinGANSegSampler

    sampler = SinGANSegSampler(REPO / "bundles/singanseg/models/singanseg.pt", "cpu")
    channels = sampler.config.channels
    z = torch.randn(2, channels, *sampler.sizes[0], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.manual_seed(7)
        exported = traced(z)
        torch.manual_seed(7)
        noise = [z] + [torch.randn(2, channels, *s) for s in sampler.sizes[1:]]
        expected = sampler.pyramid(noise, sampler.amplitudes, sampler.sizes)
    assert exported.shape == (2, 7, 128, 128)
    assert torch.allclose(exported, expected, atol=1e-4)


def test_singanseg_inference_with_the_shipped_model_keeps_the_source_slice_geometry(tmp_path):
    out = tmp_path / "singan"
    res = bundle(
        "run", "--config_file", config("singanseg", "inference"), "--output_dir", str(out), "--num_samples", "4"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_model_file(REPO / "bundles/singanseg/models/singanseg.pt").config
    entries = _check_synthetic_cases(out, np.asarray(cfg.source_affine))
    assert len(entries) == 4 and nib.load(entries[0]["label"]).shape[2] == 1  # one-slice volumes


@pytest.mark.slow
def test_singanseg_inference_style_option_changes_the_images_never_the_labels(tmp_path):
    runs = {}
    for style in ("none", "histogram"):
        out = tmp_path / style
        res = bundle(
            "run",
            "--config_file",
            config("singanseg", "inference"),
            "--output_dir",
            str(out),
            "--num_samples",
            "2",
            "--style",
            style,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        runs[style] = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="training")
    for plain, styled in zip(runs["none"], runs["histogram"]):
        seg_plain, seg_styled = nib.load(plain["label"]), nib.load(styled["label"])
        assert np.array_equal(np.asarray(seg_plain.dataobj), np.asarray(seg_styled.dataobj))
        np.testing.assert_allclose(seg_plain.affine, seg_styled.affine)
        t2_plain = np.asarray(nib.load(plain["image"][3]).dataobj)
        t2_styled = np.asarray(nib.load(styled["image"][3]).dataobj)
        assert not np.array_equal(t2_plain, t2_styled) and (t2_styled[t2_plain == 0] == 0).mean() > 0.95
