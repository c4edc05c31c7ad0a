"""Dataset synthesis at scale on real data: torchrun ranks (gloo, CPU) share the per-slice SinGAN-Seg models,
a killed rank's run resumes with nothing lost or done twice, Slurm-style shards, and bad cases are recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import run_command, subprocess_env, torchrun_command
from monai.data import load_decathlon_datalist

from monai_singanseg.io import load_model_file

TINY = [
    "--label-map",
    "3:1",
    "--max-size",
    "24",
    "--min-size",
    "12",
    "--stages",
    "2",
    "--samples-per-model",
    "2",
    "--quiet",
]


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory) -> Path:
    """Two BraTS-space TCGA cases (4 sequences, labels 0/1/2/4) and two BRATS-2013 cases (FLAIR + T1c, label 3)."""
    t, b = shared_data / "brats_tcga", shared_data / "brats2013"
    items = [
        {
            "name": c,
            "image": [str(t / c / f"{c}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")],
            "label": str(t / c / f"{c}_seg.nii.gz"),
        }
        for c in ("TCGA-FG-6692", "TCGA-DU-7294")
    ]
    items += [
        {
            "name": c,
            "image": [str(b / c / "Flair_subtrMeanDivStd.nii.gz"), str(b / c / "T1c_subtrMeanDivStd.nii.gz")],
            "label": str(b / c / "OTMultiClass.nii.gz"),
        }
        for c in ("brats_2013_pat0001_1", "brats_2013_pat0002_1")
    ]
    path = tmp_path_factory.mktemp("real") / "datalist.json"
    path.write_text(json.dumps({"training": items}), encoding="utf-8")
    return path


#: ``python -m monai_singanseg synthesize`` as a command.
SYNTHESIZE = [sys.executable, "-m", "monai_singanseg", "synthesize"]


def torchrun(*args: str) -> list[str]:
    return torchrun_command("monai_singanseg", "synthesize", *args)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def every_case(out: Path) -> list[dict]:
    """Every synthetic case of a dataset's datalist, its training and validation lists, by name; the two lists hold
    the samples of different real cases."""
    path = str(out / "datalist.json")
    training, validation = (load_decathlon_datalist(path, data_list_key=k) for k in ("training", "validation"))
    assert {c["source"] for c in training}.isdisjoint(c["source"] for c in validation)
    return sorted(training + validation, key=lambda c: c["name"])


def _check_dataset(out: Path, manifest: dict) -> None:
    cases = every_case(out)
    assert len(cases) == 2 * manifest["done"] == manifest["samples"]
    for entry in manifest["entries"]:
        cfg = load_model_file(out / entry["model"]).config
        assert cfg.complete and cfg.source_slice_index == entry["slice"]
        seg = out / entry["cases"] / f"{entry['id']}_syn0000_seg.nii.gz"
        img = nib.load(seg)
        np.testing.assert_allclose(img.affine, np.asarray(cfg.source_affine) @ np.diag([24 / 24, 1, 1, 1]), atol=1e-3)
        assert set(np.unique(np.asarray(img.dataobj)).tolist()) <= {0, 1, 2, 4}  # BRATS-2013's 3 mapped to 1
    assert (out / "preview.png").is_file() and (out / "report.md").is_file()


@pytest.mark.slow
@pytest.mark.torchrun
def test_torchrun_two_ranks_killed_and_resumed(real, tmp_path):
    out = tmp_path / "syn"
    cmd = torchrun("--data", str(real), "--out", str(out), "--iters", "20", *TINY)
    proc = subprocess.Popen(
        cmd,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not list((out / "done").glob("*.json")):
        time.sleep(0.1)
    ranks = _children(proc.pid)
    assert proc.poll() is None and ranks, "the run ended before a rank could be killed"
    killed_at = time.time()
    os.kill(ranks[-1], signal.SIGKILL)  # one rank dies mid-run; torchrun then stops the other
    proc.wait(timeout=120)
    os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert proc.returncode != 0
    first = {p.stem: json.loads(p.read_text()) for p in (out / "done").glob("*.json")}
    assert 1 <= len(first) < 4 and not (out / "datalist.json").exists()  # no half dataset published
    # (the surviving rank may finish a model between the kill and torchrun stopping it: those count as done too)
    resumed_at = time.time()
    res = run_command(cmd, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["done"] == 4 and not manifest["failed"] and not manifest["pending"]
    for entry in manifest["entries"]:  # finished models were kept, never trained again
        if entry["id"] in first:
            assert entry["finished"] == first[entry["id"]]["finished"] < resumed_at
        else:
            assert entry["started"] > killed_at - 60
    assert sorted({e["owner"]["rank"] for e in manifest["entries"]}) == [0, 1]  # both ranks worked
    assert not list((out / "claims").iterdir())
    _check_dataset(out, manifest)
    # the same command again: nothing to do, same dataset
    before = (out / "datalist.json").read_bytes()
    again = run_command(cmd, timeout=300)
    assert again.returncode == 0 and (out / "datalist.json").read_bytes() == before


@pytest.mark.slow
def test_slurm_shards_bad_cases_and_another_run(real, tmp_path):
    items = json.loads(real.read_text())["training"]
    empty = tmp_path / "empty_seg.nii.gz"
    seg = nib.load(items[0]["label"])
    nib.save(nib.Nifti1Image(np.zeros(seg.shape, np.uint8), seg.affine), empty)
    data = tmp_path / "with_bad.json"
    bad = {**items[0], "name": "NO-TUMOUR", "label": str(empty)}
    data.write_text(json.dumps({"training": [items[0], bad, items[2]]}), encoding="utf-8")
    out = tmp_path / "syn"
    base = [
        *SYNTHESIZE,
        "--data",
        str(data),
        "--out",
        str(out),
        "--iters",
        "2",
        *TINY,
    ]
    first = run_command([*base, "--shard", "0/2"], timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]  # task 0's share (cases 0 and 2) is fine ...
    assert not (out / "datalist.json").exists()  # ... but the dataset is not complete: nothing is published yet
    last = run_command([*base, "--shard", "1/2"], timeout=300)
    assert last.returncode == 1, last.stderr[-2000:]  # the bad case fails the run, naming it ...
    assert "NO-TUMOUR_failed" in last.stderr and "Traceback" not in last.stderr
    manifest = json.loads((out / "manifest.json").read_text())  # ... the others are written, once
    assert manifest["done"] == 2 and manifest["failed"] == ["NO-TUMOUR_failed"]
    failed = next(e for e in manifest["entries"] if e["status"] == "failed")
    assert "no tumour" in failed["error"]
    assert len(every_case(out)) == 4
    other = run_command([*base, "--seed", "1"], timeout=300)
    assert other.returncode == 1 and "holds another dataset synthesis" in other.stderr  # other settings: refused
    assert json.loads((out / "manifest.json").read_text()) == manifest  # and nothing changed


@pytest.mark.slow
@pytest.mark.parametrize("volume", [False, True])
def test_bundle_config_runs_the_same_dataset_synthesis(shared_data, tmp_path, volume):
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "bundle_syn"
    # the demo case is a slab of a few slices; a 3D model learns whole real cases (the two TCGA ones)
    data = ["--dataset_dir", str(shared_data / "brats_tcga")] if volume else []
    res = run_command(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(repo / "bundles/singanseg/configs/synthesize.json"),
            "--bundle_root",
            str(repo / "bundles/singanseg"),
            "--output_dir",
            str(out),
            "--volume",
            str(volume),
            *data,
            "--max_size",
            "24",
            "--samples_per_model",
            "2",
            "--training#iters",
            "2",
            "--training#min_size",
            "12",
            "--training#num_stages",
            "2",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    cases = ["TCGA-DU-7294", "TCGA-FG-6692"] if volume else ["TCGA-FG-6692"]
    assert manifest["done"] == len(cases) and sorted(e["case"] for e in manifest["entries"]) == cases
    assert manifest["settings"]["volume"] is volume
    assert manifest["settings"]["training"]["base_features"] == (16 if volume else 32)  # the 3D CPU default
    assert load_model_file(out / manifest["entries"][0]["model"]).config.spatial_dims == (3 if volume else 2)
    assert len(every_case(out)) == 2 * len(cases)


def _tiny_settings(**kw):
    from monai_singanseg.engines.singanseg import SinGANSegSettings
    from monai_singanseg.farm import DatasetSettings

    training = SinGANSegSettings(min_size=12, num_stages=2, iters=4)
    return DatasetSettings(**{"max_size": 24, "samples_per_model": 2, "label_map": {3: 1}, "training": training, **kw})


class _Killed(BaseException):
    """Stands in for a kill: not an error the run records, it ends the process's work."""


@pytest.mark.slow
def test_batched_farm_groups_by_shape_and_resumes_a_killed_batch(real, tmp_path, monkeypatch):
    """Models of one slice shape train as one batch (fit_many); a batch killed after its first scale resumes from
    its checkpoints and ends with the models an uninterrupted batched run makes."""
    from monai_singanseg.farm import WorkDir, synthesize_dataset

    items = json.loads(real.read_text())["training"][:3]  # two 4-sequence TCGA cases, one 2-sequence BRATS-2013 case
    whole = synthesize_dataset(items, tmp_path / "whole", _tiny_settings(), progress=False, models_per_batch=8)
    batches = {e["case"]: e["batch"] for e in whole["entries"]}
    assert batches == {"TCGA-FG-6692": 2, "TCGA-DU-7294": 2, "brats_2013_pat0001_1": 1}  # grouped by GAN tensor shape
    _check_dataset(tmp_path / "whole", whole)

    heartbeat = WorkDir.heartbeat
    monkeypatch.setattr(WorkDir, "heartbeat", lambda self, entry_id: (_ for _ in ()).throw(_Killed()))
    with pytest.raises(_Killed):  # killed once the first batch has finished (and saved) its first scale
        synthesize_dataset(items, tmp_path / "killed", _tiny_settings(), progress=False, models_per_batch=8)
    monkeypatch.setattr(WorkDir, "heartbeat", heartbeat)
    half = [load_model_file(p).config.finished_scales for p in sorted((tmp_path / "killed" / "models").glob("*.pt"))]
    assert half == [1, 1]  # the TCGA batch, after scale 0 of 2
    resumed = synthesize_dataset(items, tmp_path / "killed", _tiny_settings(), progress=False, models_per_batch=8)
    assert resumed["done"] == 3 and not resumed["failed"]
    for entry in whole["entries"]:
        a = load_model_file(tmp_path / "whole" / entry["model"]).state["generator"]
        b = load_model_file(tmp_path / "killed" / entry["model"]).state["generator"]
        for key in a:
            np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), atol=1e-5, err_msg=f"{entry['id']}: {key}")


def test_disk_full_while_writing_cases_leaves_nothing_half_written(real, tmp_path, monkeypatch):
    """``No space left on device`` in the middle of a case: the entry fails with that error, the failed case is in
    no datalist and leaves no file, and the rerun (disk freed) completes the dataset."""
    import errno

    import nibabel

    from monai_singanseg.farm import synthesize_dataset

    items = json.loads(real.read_text())["training"][:1]
    save, calls = nibabel.save, []

    def full_disk(img, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 8:  # the 3rd file of the 2nd case (a case is 4 sequences + a label)
            Path(filename).write_bytes(b"\x1f\x8b partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(filename))
        return save(img, filename, *args, **kwargs)

    monkeypatch.setattr(nibabel, "save", full_disk)
    out = tmp_path / "syn"
    manifest = synthesize_dataset(items, out, _tiny_settings(samples_per_model=3), progress=False)
    assert manifest["done"] == 0 and len(manifest["failed"]) == 1
    assert "No space left on device" in manifest["entries"][0]["error"]
    files = sorted(p.name for p in (out / "cases").rglob("*") if p.is_file())
    assert not [f for f in files if ".tmp" in f]  # no temporary left over
    case_files = [f for f in files if f.endswith(".nii.gz")]
    assert len(case_files) == 5 and all(f.startswith(f"{manifest['entries'][0]['id']}_syn0000") for f in case_files)
    assert every_case(out) == []  # a failed model publishes no case
    monkeypatch.setattr(nibabel, "save", save)
    again = synthesize_dataset(items, out, _tiny_settings(samples_per_model=3), progress=False)
    assert again["done"] == 1 and not again["failed"]
    assert len(every_case(out)) == 3


@pytest.mark.slow
@pytest.mark.torchrun
def test_pix2pix_dataset_under_torchrun_then_with_a_given_model(real, tmp_path):
    """``--generator pix2pix``: one rank trains the one model while the other waits, both render their cases'
    deformed label volumes; the same outputs as SinGAN-Seg's (datalist, manifest, report, preview); a given
    ``--model`` is rendered with, never trained."""
    items = json.loads(real.read_text())["training"][2:]  # the two BRATS-2013 cases: FLAIR + T1c, label 3
    data = tmp_path / "b13.json"
    data.write_text(json.dumps({"training": items}), encoding="utf-8")
    out = tmp_path / "p2p"
    opts = [
        "--generator",
        "pix2pix",
        "--data",
        str(data),
        "--label-map",
        "3:1",
        "--channel-names",
        "flair",
        "t1ce",
        "--epochs",
        "1",
        "--size",
        "32",
        "--per-case",
        "2",
        "--quiet",
    ]
    res = run_command(torchrun("--out", str(out), *opts), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["done"] == 2 and manifest["samples"] == 4 and manifest["model"]["status"] == "done"
    assert manifest["model"]["cases"] == ["brats_2013_pat0001_1", "brats_2013_pat0002_1"]
    assert {e["model"] for e in manifest["entries"]} == {"models/pix2pix.pt"}
    cases = every_case(out)
    assert len(cases) == 4 and all(len(c["image"]) == 2 and c["image"][0].endswith("_flair.nii.gz") for c in cases)
    # the model writes its training cases' (mean) background outside the brain
    background = float(np.mean([np.asarray(nib.load(i["image"][0]).dataobj)[0, 0, 0] for i in items]))
    for case, source in zip(cases[::2], items):
        seg, real_seg = nib.load(case["label"]), nib.load(source["label"])
        np.testing.assert_allclose(seg.affine, real_seg.affine, atol=1e-4)
        assert seg.shape == real_seg.shape
        values = set(np.unique(np.asarray(seg.dataobj)).tolist())
        assert values <= {0, 1, 2, 4} and values & {1, 2, 4}  # 3 mapped to 1, and the tumour is there
        flair = np.asarray(nib.load(case["image"][0]).dataobj)
        assert float(flair[0, 0, 0]) == pytest.approx(background, abs=1e-4)  # z-scored: the background is not 0
        entry = next(e for e in manifest["entries"] if e["case"] == source["name"])
        assert entry["quality"]["tumour_kept"] == 1.0 and 0.0 < entry["quality"]["memorisation_max"] < 1.0
    report = (out / "report.md").read_text()
    assert "generator: pix2pix" in report and (out / "preview.png").is_file()
    before = (out / "datalist.json").read_bytes()
    again = run_command([*SYNTHESIZE, "--out", str(out), *opts], timeout=300)
    assert again.returncode == 0 and (out / "datalist.json").read_bytes() == before  # a finished run: nothing redone

    given = tmp_path / "given"
    opts[opts.index("--per-case") + 1] = "1"
    res = run_command(
        [
            *SYNTHESIZE,
            "--out",
            str(given),
            *opts,
            "--model",
            str(out / "models" / "pix2pix.pt"),
        ],
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((given / "manifest.json").read_text())
    assert manifest["done"] == 2 and manifest["samples"] == 2 and manifest["model"]["status"] == "given"
    assert not list((given / "models").glob("*.pt"))  # nothing trained
    wrong = run_command(
        [
            *SYNTHESIZE,
            "--data",
            str(data),
            "--out",
            str(tmp_path / "wrong"),
            "--model",
            str(out / "models" / "pix2pix.pt"),
        ],
        timeout=120,
    )
    assert wrong.returncode != 0 and "--generator pix2pix" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_datalist_entry_may_name_its_slices(real):
    """``"slices": [z, ...]`` in a datalist entry picks that case's models' slices; a slice without tumour fails the
    case with a message naming it (no model is trained on an empty slice)."""
    from monai_singanseg.farm import plan_work

    item = json.loads(real.read_text())["training"][2]  # BRATS-2013 pat0001: tumour on slices 29..142
    plan = plan_work([{**item, "slices": [60, 90]}], slices_per_case=5, label_map={3: 1})
    assert [(e.id, e.slice_index, e.error) for e in plan] == [
        ("brats_2013_pat0001_1_z060", 60, None),
        ("brats_2013_pat0001_1_z090", 90, None),
    ]
    bad = plan_work([{**item, "slices": [60, 5]}], label_map={3: 1})
    assert len(bad) == 1 and bad[0].error is not None and "slices [5] hold no tumour" in bad[0].error


@pytest.mark.slow
def test_volume_dataset_one_3d_model_per_case(real, shared_data, tmp_path):
    """``--volume``: one 3D model per case (its tumour box by default), its samples whole volumes in the world geometry
    of that box;
    ``--volume`` refuses pix2pix and 2D pictures before doing any work."""
    items = json.loads(real.read_text())["training"][:1]
    data = tmp_path / "one.json"
    data.write_text(json.dumps({"training": items}), encoding="utf-8")
    out = tmp_path / "syn3d"
    base = [*SYNTHESIZE, "--volume", "--iters", "2", *TINY]
    res = run_command([*base, "--data", str(data), "--out", str(out)], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["entries"]
    assert entry["status"] == "done" and entry["id"] == "TCGA-FG-6692" and entry["slice"] is None
    assert manifest["settings"]["volume"] and manifest["settings"]["training"]["base_features"] == 16  # 3D defaults
    cfg = load_model_file(out / entry["model"]).config
    assert cfg.spatial_dims == 3 and cfg.source_grid_shape == [240, 240, 155]
    cases = every_case(out)
    assert len(cases) == 2 and all(len(c["image"]) == 4 for c in cases)
    for case in cases:
        seg = nib.load(case["label"])
        assert seg.shape == tuple(cfg.scale_sizes[-1])  # a whole volume in the model's working grid
        np.testing.assert_allclose(
            seg.affine, np.asarray(cfg.source_affine), atol=1e-4
        )  # the model box's world geometry
        assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, 1, 2, 4}
        assert nib.load(case["image"][0]).shape == seg.shape
    assert set(entry["quality"]) >= {"tumour_kept", "memorisation_max", "memorised"}
    assert "3D: one model per volume" in (out / "report.md").read_text() and (out / "preview.png").is_file()
    for bad, message in (
        (["--data", str(data), "--generator", "pix2pix"], "does not go with --generator pix2pix"),
        (["--data", str(data), "--slices-per-case", "2"], "one model per whole case"),
        (["--data", str(shared_data / "kvasir_seg")], "holds 2D pictures"),
    ):
        res = run_command([*base, *bad, "--out", str(tmp_path / "bad")], timeout=120)
        assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "bad").exists()


def test_dataset_settings_take_a_tumour_box_only_for_3d_models():
    from monai_singanseg.farm import DatasetSettings

    assert DatasetSettings(volume=True, box="tumour").max_size == 48
    assert DatasetSettings(volume=True).box == "tumour" and DatasetSettings().box == "brain"  # the defaults
    for bad in ({"box": "tumour"}, {"volume": True, "box": "skull"}):
        with pytest.raises(ValueError, match="box"):
            DatasetSettings(**bad)
