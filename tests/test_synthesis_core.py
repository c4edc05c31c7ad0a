"""One synthesis core: the command line, the MONAI bundle and the Python API run the same pipeline, so the same
model, options and seed give byte-identical cases; and library code leaves the caller's random state alone."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli

from monai_singanseg.data import demo_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings, train_pix2pix
from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.synthesis import (
    SinGANSegSynthesisSettings,
    pix2pix_synthesis,
    pix2pix_training_slices,
    singanseg_synthesis,
    singanseg_training_input,
    synthesize,
)

REPO = Path(__file__).resolve().parents[1]
SINGANSEG_MODEL = REPO / "bundles" / "singanseg" / "models" / "singanseg.pt"
PIX2PIX_MODEL = REPO / "bundles" / "pix2pix" / "models" / "pix2pix.pt"


def run(args: list[str], cwd: Path) -> None:
    """``python -m MODULE ...`` (``args`` = ``["-m", MODULE, ...]``) in ``cwd``, which must succeed."""
    res = cli(*args[2:], cwd=cwd, module=args[1])
    assert res.returncode == 0, res.stderr[-3000:]


def contents(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path; NIfTI compared uncompressed (gzip headers hold no data)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out[str(p.relative_to(folder))] = gzip.decompress(data) if p.name.endswith(".gz") else data
    return out


@pytest.mark.slow
def test_singanseg_cli_bundle_and_api_write_identical_cases(tmp_path):
    options = ["--num", "3", "--seed", "5", "--start-scale", "0", "--threshold", "0.5", "--min-component", "10"]
    run(
        [
            "-m",
            "monai_singanseg",
            "generate",
            "--model",
            str(SINGANSEG_MODEL),
            "--out",
            str(tmp_path / "cli"),
            *options,
        ],
        REPO,
    )
    elsewhere = tmp_path / "elsewhere"  # the bundle run from another folder, told where it lives
    elsewhere.mkdir()
    run(
        [
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(REPO / "bundles/singanseg/configs/inference.json"),
            "--bundle_root",
            str(REPO / "bundles/singanseg"),
            "--output_dir",
            str(tmp_path / "bundle"),
            "--num_samples",
            "3",
            "--seed",
            "5",
        ],
        elsewhere,
    )
    pipeline = singanseg_synthesis(SINGANSEG_MODEL, tmp_path / "api", SinGANSegSynthesisSettings(start_scale=0))
    synthesize(pipeline, pipeline.cases(3), tmp_path / "api", seed=5, progress=False)
    cli, bundle, api = contents(tmp_path / "cli"), contents(tmp_path / "bundle"), contents(tmp_path / "api")
    assert len([n for n in cli if n.endswith("_seg.nii.gz")]) == 3 and "preview.png" in cli and "datalist.json" in cli
    assert cli.keys() == bundle.keys() == api.keys()
    for name in cli:
        assert cli[name] == bundle[name] == api[name], name
    # another seed gives other cases (the comparison above could not pass by accident)
    other = singanseg_synthesis(SINGANSEG_MODEL, tmp_path / "api2")
    synthesize(other, other.cases(1), tmp_path / "api2", seed=6, progress=False)
    first = next(n for n in cli if n.endswith("_seg.nii.gz"))
    assert contents(tmp_path / "api2")[first] != cli[first]


@pytest.mark.slow
def test_pix2pix_cli_bundle_and_api_render_identical_volumes(tmp_path):
    item = demo_case()
    run(
        [
            "-m",
            "monai_singanseg",
            "render",
            "--model",
            str(PIX2PIX_MODEL),
            "--label",
            item["label"],
            "--deform",
            "2",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "cli"),
        ],
        REPO,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(
        [
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str(REPO / "bundles/pix2pix/configs/inference.json"),
            "--bundle_root",
            str(REPO / "bundles/pix2pix"),
            "--output_dir",
            str(tmp_path / "bundle"),
            "--num_samples",
            "2",
            "--seed",
            "3",
        ],
        elsewhere,
    )
    pipeline = pix2pix_synthesis(PIX2PIX_MODEL, tmp_path / "api", deform=True, load=True)
    synthesize(pipeline, [dict(item, name=f"case{i}") for i in range(2)], tmp_path / "api", seed=3, progress=False)
    cli, bundle, api = contents(tmp_path / "cli"), contents(tmp_path / "bundle"), contents(tmp_path / "api")
    for i in range(2):  # the case names differ by entry point; the volumes may not
        for suffix in ("flair", "t1", "t1ce", "t2", "seg"):
            a = next(v for k, v in cli.items() if k.endswith(f"_def{i:03d}_{suffix}.nii.gz"))
            b = next(v for k, v in bundle.items() if k.endswith(f"_p2p{i:03d}_{suffix}.nii.gz"))
            c = api[f"case{i}_{suffix}.nii.gz"]
            assert a == b == c, (i, suffix)
    assert cli != {} and next(v for k, v in cli.items() if k.endswith("_def000_seg.nii.gz")) != next(
        v for k, v in cli.items() if k.endswith("_def001_seg.nii.gz")
    )


def test_trainers_and_samplers_leave_the_global_random_state_alone(brats_item, tmp_path):
    gan, meta = singanseg_training_input(brats_item["image"], brats_item["label"], "auto", max_size=24)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    tiny = SinGANSegSettings(min_size=12, iters=2, num_stages=2, critic_steps=1, generator_steps=1, base_features=4)
    model = SinGANSegTrainer(tiny, progress=False).fit(gan, tmp_path / "s.pt", meta)
    assert torch.equal(torch.get_rng_state(), before)
    pipeline = singanseg_synthesis(SinGANSegSampler(model), None)
    pipeline.set_random_state(0)
    pipeline({})
    assert torch.equal(torch.get_rng_state(), before)
    settings = Pix2PixSettings(size=32, epochs=1, batch_size=8, generator_channels=8, critic_channels=8, seed=1)
    train_pix2pix(pix2pix_training_slices([demo_case()], settings, progress=False), tmp_path / "p.pt", progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    # and the run is still reproducible: the same settings train the same weights whatever the global state
    torch.manual_seed(99)
    again = SinGANSegTrainer(tiny, progress=False).fit(gan, tmp_path / "s2.pt", meta)
    a, b = (torch.load(p, weights_only=True)["state"]["generator"] for p in (model, again))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.isfinite(sum(float(v.sum()) for v in a.values()))
