"""Export to the trainers users run, on real data: a synthetic dataset made by `synthesize` from crops of the two TCGA
cases, with other real crops beside it, exported for nnU-Net v2 (its own integrity check and planning run on it) and
as a MONAI datalist (MONAI's BraTS pipeline trains a SegResNet on it; Auto3DSeg's DataAnalyzer reads it)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import cli, run_cli, run_command

from monai_singanseg.farm.export import BRATS_TO_NNUNET
from monai_singanseg.io.provenance import read_provenance

MODALITIES = ("flair", "t1", "t1ce", "t2")
TCGA = ("TCGA-FG-6692", "TCGA-DU-7294")


def _crop_case(src: Path, case: str, name: str, out: Path, z0: int, modalities=MODALITIES, label="seg") -> dict:
    """A 64 x 64 x 24 crop around the case's tumour (from slice ``z0`` of the tumour's box), as a BraTS-named case."""
    seg = nib.load(str(src / f"{case}_{label}.nii.gz"))
    lab = np.asanyarray(seg.dataobj)
    xs, ys, zs = np.nonzero(lab)
    cx, cy = int(xs.mean()), int(ys.mean())
    box = (slice(cx - 32, cx + 32), slice(cy - 32, cy + 32), slice(zs.min() + z0, zs.min() + z0 + 24))
    shift = np.eye(4)
    shift[:3, 3] = [b.start for b in box]
    folder = out / name
    folder.mkdir(parents=True)
    files = {}
    for m in (*modalities, "seg"):
        source = seg if m == "seg" else nib.load(str(src / f"{case}_{m}.nii.gz"))
        arr = np.asanyarray(source.dataobj)[box]
        img = nib.Nifti1Image(arr, seg.affine @ shift)
        img.set_qform(seg.affine @ shift, code=1)
        path = folder / f"{name}_{m}.nii.gz"
        nib.save(img, str(path))
        files[m] = str(path)
    return {"name": name, "image": [files[m] for m in modalities], "label": files["seg"]}


def _datalist(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"training": entries}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory) -> dict[str, Path]:
    """Real crops (two to synthesize from, two real training cases, one test case, one BRATS-2013 case with two
    sequences) and a small synthetic dataset made by ``synthesize`` from the first two."""
    root = tmp_path_factory.mktemp("export_data")
    tcga = shared_data / "brats_tcga"
    cases = [_crop_case(tcga / c, c, f"src{i}", root / "real", 0) for i, c in enumerate(TCGA)]
    reals = [_crop_case(tcga / c, c, f"real{i}", root / "real", 12) for i, c in enumerate(TCGA)]
    test = [_crop_case(tcga / TCGA[0], TCGA[0], "test0", root / "real", 6)]
    paths = {
        "src_real": _datalist(root / "src_real.json", cases),
        "real": _datalist(root / "real.json", reals),
        "test": _datalist(root / "test.json", test),
        "root": root,
    }
    synthetic = root / "syn"
    done = cli(
        "synthesize", "--data", str(paths["src_real"]), "--out", str(synthetic), "--max-size", "24", "--min-size",
        "12", "--stages", "2", "--iters", "30", "--coarsest-iters", "30", "--samples-per-model", "3",
        "--slices-per-case", "2", "--val-fraction", "0.5", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    paths["syn"] = synthetic
    return paths


def _label_counts(label: np.ndarray) -> dict[str, int]:
    """BraTS regions' voxel counts of a BraTS-valued label (TC = 1 | 4, WT = 1 | 2 | 4, ET = 4)."""
    return {
        "TC": int(np.isin(label, (1, 4)).sum()),
        "WT": int(np.isin(label, (1, 2, 4)).sum()),
        "ET": int((label == 4).sum()),
    }


def test_synthesize_writes_validation_by_source_case_channel_order_and_provenance(data):
    datalist = json.loads((data["syn"] / "datalist.json").read_text(encoding="utf-8"))
    training, validation = datalist["training"], datalist["validation"]
    assert training and validation
    assert {e["source"] for e in training}.isdisjoint({e["source"] for e in validation})
    assert {e["source"] for e in training + validation} == {"src0", "src1"}  # the real case, not its slice
    assert len(training + validation) == 2 * 2 * 3  # two cases, two slice models each, three samples per model
    assert datalist["channel_order"] == list(MODALITIES)
    manifest = json.loads((data["syn"] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["channel_order"] == list(MODALITIES)
    assert datalist["monai_singanseg"]["synthetic"] is True
    entry = training[0]
    assert entry["synthetic"] is True and entry["generator"] == "singanseg"
    for path in [*entry["image"], entry["label"]]:
        record = read_provenance(data["syn"] / path)
        assert record["synthetic"] and record["package"] == "monai-singanseg" and record["generator"] == "singanseg"
        assert record["source"] == entry["source"]
    assert read_provenance(Path(json.loads(data["src_real"].read_text())["training"][0]["label"])) is None


def test_synthesize_channel_order_names_unknown_channel_before_any_work(data, tmp_path):
    out = tmp_path / "syn"
    r = run_cli("synthesize", "--data", str(data["src_real"]), "--out", str(out), "--channel-order", "t1ce", "dwi")
    assert r.returncode == 1
    assert "['dwi']" in r.stderr and "flair" in r.stderr
    assert not out.exists()


def test_provenance_is_read_back_from_nifti_and_png(tmp_path):
    from monai_singanseg.io.provenance import provenance_record
    from monai_singanseg.io.writers import write_brats_case, write_image_mask_png

    long_source = "case-" + "x" * 120
    record = provenance_record("pix2pix-spade", long_source)
    entry = write_brats_case(tmp_path, "c", np.ones((2, 4, 4, 3)), np.zeros((1, 4, 4, 3)), np.eye(4), ("t1", "t2"),
                             provenance=record)  # fmt: skip
    for path in [*entry["image"], entry["label"]]:
        header = nib.load(path).header
        assert len(header["descrip"].tobytes().rstrip(b"\0")) <= 80
        back = read_provenance(path)
        assert back["generator"] == "pix2pix-spade" and long_source.startswith(back["source"])
    plain = write_brats_case(tmp_path / "real", "r", np.ones((1, 4, 4, 3)), None, np.eye(4), ("t1",))
    assert read_provenance(plain["image"][0]) is None
    png = write_image_mask_png(tmp_path, "p", np.zeros((3, 8, 8)), np.ones((1, 8, 8)), provenance=record)
    assert read_provenance(png["image"]) == record == read_provenance(png["label"])


def test_a_synthetic_file_without_provenance_is_rewritten_with_it_voxels_unchanged(tmp_path):
    """A synthetic file written before files carried provenance (a scaled float volume, an int16 one, a label) gets it
    on export; its voxels, affine and scaling stay the source's, and a label's values follow the map."""
    from monai_singanseg.farm.export.files import nifti_job, publish_files
    from monai_singanseg.io.provenance import provenance_record

    rng = np.random.default_rng(0)
    affine = np.array([[-1.0, 0, 0, 10], [0, -1.2, 0, 20], [0, 0, 2.5, -5], [0, 0, 0, 1]])
    scaled = nib.Nifti1Image(rng.integers(0, 1000, (6, 5, 4)).astype(np.int16), affine)
    scaled.header.set_slope_inter(0.5, 3.0)
    sources = {
        "scaled.nii.gz": scaled,
        "int.nii.gz": nib.Nifti1Image(rng.integers(-50, 50, (6, 5, 4)).astype(np.int16), affine),
        "seg.nii.gz": nib.Nifti1Image(rng.choice([0, 1, 2, 4], (6, 5, 4)).astype(np.uint8), affine),
    }
    for name, img in sources.items():
        nib.save(img, str(tmp_path / name))
    record = provenance_record("singanseg", "caseA")
    jobs = [nifti_job(tmp_path / n, tmp_path / "out" / n, None, record) for n in ("scaled.nii.gz", "int.nii.gz")]
    jobs.append(nifti_job(tmp_path / "seg.nii.gz", tmp_path / "out" / "seg.nii.gz", BRATS_TO_NNUNET, record))
    publish_files(jobs)
    for name in sources:
        src, dest = nib.load(str(tmp_path / name)), nib.load(str(tmp_path / "out" / name))
        expected = np.asanyarray(src.dataobj)
        if name == "seg.nii.gz":
            expected = np.vectorize(BRATS_TO_NNUNET.get)(expected)
        np.testing.assert_array_equal(np.asanyarray(dest.dataobj), expected)
        np.testing.assert_array_equal(dest.affine, src.affine)
        assert read_provenance(tmp_path / "out" / name)["source"] == "caseA"
        assert read_provenance(tmp_path / name) is None  # the source file is left as it was
    assert nib.load(str(tmp_path / "out" / "scaled.nii.gz")).get_data_dtype() == np.int16


def _nnunet_env(tmp: Path) -> dict[str, str]:
    env = {k: str(tmp / k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for folder in env.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    return env


def test_nnunet_export_round_trip_splits_and_provenance(data, tmp_path):
    raw = tmp_path / "raw"
    r = cli(
        "export", str(data["syn"]), "--out", str(raw), "--real", str(data["real"]), "--test", str(data["test"]),
        "--dataset-id", "42", "--name", "BraTSsyn", "--link", "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    root = raw / "Dataset042_BraTSsyn"
    dataset = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    assert dataset["channel_names"] == {"0": "flair", "1": "t1", "2": "t1ce", "3": "t2"}
    assert dataset["labels"]["whole_tumor"] == [1, 2, 3] and dataset["regions_class_order"] == [1, 2, 3]
    assert dataset["monai_singanseg"]["label_map"] == {str(k): v for k, v in BRATS_TO_NNUNET.items()}
    synthetic = json.loads((data["syn"] / "datalist.json").read_text(encoding="utf-8"))
    syn_entries = synthetic["training"] + synthetic["validation"]
    assert dataset["numTraining"] == len(syn_entries) + 2 == len(list((root / "labelsTr").iterdir()))
    # splits: real cases validate, synthetic ones only ever train
    splits = json.loads((root / "splits_final.json").read_text(encoding="utf-8"))
    assert sorted(v for s in splits for v in s["val"]) == ["real0", "real1"]
    for s in splits:
        assert {e["name"] for e in syn_entries} <= set(s["train"])
    # round trip: every file equals its source voxel for voxel (labels after the map), with the same affine
    lut = np.zeros(256, dtype=np.uint8)
    for k, v in BRATS_TO_NNUNET.items():
        lut[k] = v
    cases = [(e, data["syn"]) for e in syn_entries]
    cases += [(e, Path("/")) for e in json.loads(data["real"].read_text())["training"]]
    for entry, base in cases:
        for c, image in enumerate(entry["image"]):
            src, dest = (
                nib.load(str(base / image)),
                nib.load(str(root / "imagesTr" / f"{entry['name']}_{c:04d}.nii.gz")),
            )
            np.testing.assert_array_equal(np.asanyarray(dest.dataobj), np.asanyarray(src.dataobj))
            np.testing.assert_array_equal(dest.affine, src.affine)
        src, dest = nib.load(str(base / entry["label"])), nib.load(str(root / "labelsTr" / f"{entry['name']}.nii.gz"))
        np.testing.assert_array_equal(np.asanyarray(dest.dataobj), lut[np.asanyarray(src.dataobj).astype(int)])
        np.testing.assert_array_equal(dest.affine, src.affine)
        synthetic_case = base != Path("/")
        record = read_provenance(root / "labelsTr" / f"{entry['name']}.nii.gz")
        assert (record is not None) == synthetic_case
        if synthetic_case:
            assert record["generator"] == "singanseg" and record["source"] == entry["source"]
    # --link: unchanged images are hard links to the synthetic dataset's files
    first = syn_entries[0]
    assert os.path.samefile(root / "imagesTr" / f"{first['name']}_0000.nii.gz", data["syn"] / first["image"][0])
    assert sorted(p.name for p in (root / "imagesTs").iterdir()) == [f"test0_{c:04d}.nii.gz" for c in range(4)]


@pytest.mark.slow
def test_nnunet_accepts_the_export(data, tmp_path):
    """nnU-Net v2's own dataset-integrity check and experiment planning on an exported synthetic + real set (the
    `nnunet` extra; CI installs it)."""
    pytest.importorskip("nnunetv2", reason="nnU-Net v2 is the optional [nnunet] extra")
    env = _nnunet_env(tmp_path)
    r = cli(
        "export", str(data["syn"]), "--out", env["nnUNet_raw"], "--real", str(data["real"]), "--dataset-id", "7",
        "--name", "BraTSsyn", "--nnunet-preprocessed", env["nnUNet_preprocessed"], "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    bin_dir = Path(sys.executable).parent
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        fingerprint = run_command(
            [str(bin_dir / "nnUNetv2_extract_fingerprint"), "-d", "7", "--verify_dataset_integrity", "-np", "1"]
        )
        assert fingerprint.returncode == 0, fingerprint.stdout[-3000:] + fingerprint.stderr[-3000:]
        assert "verify_dataset_integrity Done" in fingerprint.stdout
        plan = run_command([str(bin_dir / "nnUNetv2_plan_experiment"), "-d", "7"])
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    preprocessed = Path(env["nnUNet_preprocessed"]) / "Dataset007_BraTSsyn"
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text(encoding="utf-8"))
    assert "2d" in plans["configurations"]
    splits = json.loads((preprocessed / "splits_final.json").read_text(encoding="utf-8"))
    assert sorted(v for s in splits for v in s["val"]) == ["real0", "real1"]


#: the model zoo's brats_mri_segmentation train.json: its datalists and preprocessing transforms, as written there
ZOO_CONFIG = {
    "data_list_file_path": "",
    "data_file_base_dir": "",
    "train_datalist": "$monai.data.load_decathlon_datalist(@data_list_file_path, data_list_key='training', "
    "base_dir=@data_file_base_dir)",
    "val_datalist": "$monai.data.load_decathlon_datalist(@data_list_file_path, data_list_key='validation', "
    "base_dir=@data_file_base_dir)",
    "preprocessing_transforms": [
        {"_target_": "LoadImaged", "keys": ["image", "label"]},
        {"_target_": "ConvertToMultiChannelBasedOnBratsClassesd", "keys": "label"},
        {"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True, "channel_wise": True},
    ],
}


def test_monai_export_trains_the_model_zoo_brats_pipeline(data, tmp_path):
    from monai.bundle import ConfigParser
    from monai.data import DataLoader, Dataset
    from monai.losses import DiceLoss
    from monai.networks.nets import SegResNet
    from monai.transforms import Compose, EnsureTyped, ResizeWithPadOrCropd

    out = tmp_path / "monai"
    r = cli(
        "export", str(data["syn"]), "--out", str(out), "--format", "monai", "--real", str(data["real"]),
        "--channel-order", "t1ce", "t1", "t2", "flair", "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Auto3DSeg task input" in r.stdout and '"dataroot"' in r.stdout
    # only the datalist and its base folder are overridden
    parser = ConfigParser(
        {**ZOO_CONFIG, "data_list_file_path": str(out / "datalist.json"), "data_file_base_dir": str(out)}
    )
    training, validation = parser.get_parsed_content("train_datalist"), parser.get_parsed_content("val_datalist")
    preprocessing = Compose(parser.get_parsed_content("preprocessing_transforms"))
    assert all(e["synthetic"] for e in training) and sorted(e["name"] for e in validation) == ["real0", "real1"]
    # every case: its files equal the source's, in the order t1ce t1 t2 flair, and its TC/WT/ET voxel counts (the
    # zoo's label channels) equal the source label's
    synthetic = json.loads((data["syn"] / "datalist.json").read_text(encoding="utf-8"))
    sources = {e["name"]: (e, data["syn"]) for e in synthetic["training"] + synthetic["validation"]}
    sources.update({e["name"]: (e, Path("/")) for e in json.loads(data["real"].read_text())["training"]})
    assert sorted(sources) == sorted(e["name"] for e in training + validation)
    order = [MODALITIES.index(m) for m in ("t1ce", "t1", "t2", "flair")]
    for entry in training + validation:
        source, base = sources[entry["name"]]
        for exported, k in zip(entry["image"], order):
            src, dest = nib.load(str(base / source["image"][k])), nib.load(exported)
            np.testing.assert_array_equal(np.asanyarray(dest.dataobj), np.asanyarray(src.dataobj))
            np.testing.assert_array_equal(dest.affine, src.affine)
        case = preprocessing(entry)
        counts = _label_counts(np.asanyarray(nib.load(str(base / source["label"])).dataobj))
        assert [int(case["label"][i].sum()) for i in range(3)] == [counts["TC"], counts["WT"], counts["ET"]]
        assert case["image"].shape[0] == 4
    # a few training steps of the zoo's network and loss (smaller, on a small crop), loss falling
    fit = Compose(
        [
            preprocessing,
            ResizeWithPadOrCropd(("image", "label"), (32, 32, 16)),
            EnsureTyped("label", dtype=torch.float32),
        ]
    )
    torch.manual_seed(0)
    loader = DataLoader(Dataset(training + validation, transform=fit), batch_size=4, shuffle=True, num_workers=0)
    net = SegResNet(spatial_dims=3, in_channels=4, out_channels=3, init_filters=8, blocks_down=(1, 2), blocks_up=(1,))
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(8):
        for batch in loader:
            opt.zero_grad()
            loss = loss_fn(net(batch["image"]), batch["label"])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_real_cases_in_another_channel_order_are_put_in_the_sources_order(data, tmp_path):
    reals = json.loads(data["real"].read_text())["training"]
    shuffled = [{**e, "image": [e["image"][i] for i in (3, 2, 0, 1)]} for e in reals]  # t2 t1ce flair t1
    out = tmp_path / "monai"
    r = run_cli(
        "export", str(data["syn"]), "--out", str(out), "--format", "monai", "--quiet",
        "--real", str(_datalist(tmp_path / "shuffled.json", shuffled)),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    validation = json.loads((out / "datalist.json").read_text(encoding="utf-8"))["validation"]
    for entry, source in zip(sorted(validation, key=lambda e: e["name"]), reals):
        assert [Path(p).name for p in entry["image"]] == [f"{entry['name']}_{m}.nii.gz" for m in MODALITIES]
        for exported, original in zip(entry["image"], source["image"]):
            assert (out / exported).read_bytes() == Path(original).read_bytes()


def test_auto3dseg_data_analyzer_reads_the_monai_export(data, tmp_path):
    from monai.apps.auto3dseg import DataAnalyzer

    out = tmp_path / "monai"
    r = cli("export", str(data["syn"]), "--out", str(out), "--format", "monai", "--quiet")
    assert r.returncode == 0, r.stderr
    config = json.loads(r.stdout[r.stdout.index("{", r.stdout.index("Auto3DSeg")) :])
    assert config["modality"] == "MRI" and Path(config["datalist"]).is_file()
    stats = tmp_path / "datastats.yaml"
    analyser = DataAnalyzer(config["datalist"], config["dataroot"], output_path=str(stats), device="cpu", worker=0)
    result = analyser.get_all_case_stats()
    assert stats.is_file()
    assert len(result["stats_by_cases"]) == len(load_training(config["datalist"]))
    datalist = json.loads(Path(config["datalist"]).read_text(encoding="utf-8"))
    validation_sources = {e["source"] for e in datalist["validation"]}
    assert validation_sources and validation_sources.isdisjoint({e["source"] for e in datalist["training"]})


def load_training(path: str) -> list:
    return json.loads(Path(path).read_text(encoding="utf-8"))["training"]


def test_an_interrupted_export_completes_and_another_is_refused(data, tmp_path):
    raw = tmp_path / "raw"
    args = ["export", str(data["syn"]), "--out", str(raw), "--dataset-id", "3", "--quiet"]
    assert run_cli(*args).returncode == 0
    root = raw / "Dataset003_SinGANSeg"
    first = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.nii.gz")}
    # what a killed export leaves: some cases, no dataset.json, a temporary file
    victim = sorted((root / "labelsTr").iterdir())[0]
    victim.unlink()
    (root / "dataset.json").unlink()
    (victim.parent / f".{victim.name}.dead.tmp.nii.gz").write_bytes(b"half")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["kept"] == len(first) // 5 - 1
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*.nii.gz")} == first
    assert not list(root.rglob(".*tmp*"))
    other = run_cli("export", str(data["syn"]), "--out", str(raw), "--dataset-id", "3", "--classes", "--quiet")
    assert other.returncode == 1 and "holds another export" in other.stderr


@pytest.mark.parametrize(
    "case",
    [
        "not_a_dataset",
        "id_range",
        "id_used",
        "channel_order",
        "other_channels",
        "label_values",
        "overlap",
        "test_is_source",
        "out_is_file",
    ],
)
def test_bad_input_is_named_and_nothing_is_written(data, tmp_path, case):
    out = tmp_path / "out"
    args = ["export", str(data["syn"]), "--out", str(out)]
    expect = ""
    if case == "not_a_dataset":
        args[1], expect = str(data["root"] / "real"), "is not a synthetic dataset folder"
    elif case == "id_range":
        args += ["--dataset-id", "1000"]
        expect = "--dataset-id"
    elif case == "id_used":
        (out / "Dataset500_Other").mkdir(parents=True)
        expect = "--dataset-id 500 is already used"
    elif case == "channel_order":
        args += ["--channel-order", "t1ce", "t1", "t2", "dwi"]
        expect = "['dwi']"
    elif case == "other_channels":
        real0 = data["root"] / "real" / "real0"
        entry = {"name": "b1", "image": [str(real0 / f"real0_{m}.nii.gz") for m in ("t1", "t1ce")]}
        args += ["--real", str(_datalist(tmp_path / "two.json", [{**entry, "label": str(real0 / "real0_seg.nii.gz")}]))]
        expect = "differ from SRC's ['flair', 't1', 't1ce', 't2']"
    elif case == "label_values":
        src = json.loads(data["real"].read_text())["training"][0]
        label = tmp_path / "lab3_seg.nii.gz"
        img = nib.load(src["label"])
        arr = np.asanyarray(img.dataobj).copy()
        arr[arr == 1] = 3
        nib.save(nib.Nifti1Image(arr, img.affine), str(label))
        args += ["--real", str(_datalist(tmp_path / "r.json", [{**src, "name": "lab3", "label": str(label)}]))]
        expect = "--label-map 3:1"
    elif case == "overlap":
        args += ["--real", str(data["real"]), "--test", str(data["real"])]
        expect = "a test case must not be a training case"
    elif case == "test_is_source":
        args += ["--test", str(data["src_real"])]
        expect = "is the source of synthetic cases"
    elif case == "out_is_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
        args[3] = str(out)
        expect = "is a file, not a folder"
    r = run_cli(*args)
    assert r.returncode in (1, 2), r.stdout
    assert expect in r.stderr, r.stderr
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert written == []
