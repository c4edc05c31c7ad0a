"""The evaluation's generator cache: a SinGAN-Seg model depends only on its case, slice and settings, so it is trained
once and reused by every fold (and every fold process) that trains on that case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, brats2013_item, tiny_experiment


@pytest.mark.slow
def test_singanseg_models_are_trained_once_per_case_reused_by_the_folds_and_only_where_needed(shared_data, tmp_path):
    """Three BRATS-2013 cases, two folds sharing one SinGAN-Seg cache: the case both folds train on is trained once;
    a fold trained afresh (another cache) gives the same synthetic slices and the same scores; sets that need no
    pix2pix train none, and k = 2 without a requested real2+singanseg set trains no second small-data model."""
    from monai_singanseg.evaluation.fold import run_fold

    items = [brats2013_item(c) for c in ("brats_2013_pat0001_1", "brats_2013_pat0002_1", "brats_2013_pat0003_1")]
    settings = tiny_experiment(
        training_sets=("real", "singanseg", "real1+singanseg"), k_values=(1, 2), style_methods=("histogram",)
    )
    cache, models = tmp_path / "cache", tmp_path / "models"

    def fold(f: int, prefix: str, model_cache: Path) -> tuple[dict, dict]:
        train = [it for i, it in enumerate(items) if i != f]
        (report,), grids = run_fold(
            train, [items[f]], models, prefix, settings, "cpu", False, False, lambda _: None, model_cache
        )
        return report, grids

    first, _ = fold(0, "fold0", cache)
    second, grids = fold(1, "fold1", cache)
    # one cached model per (case, slice) the folds use, trained once: pat0003's SinGAN-Seg model serves both folds,
    # and a case's largest tumour slice serves its SinGAN-Seg set and its first small-data slice
    used = {(s.split(":")[0], int(s.split(":")[1])) for r in (first, second) for s in r["singanseg_slices"]}
    used |= {(r["train_cases"][0], int(r["small_data_slices"][0].split(":")[1])) for r in (first, second)}
    assert (
        len(list(cache.iterdir()))
        == len(used)
        == first["singanseg_cache"]["trained"] + second["singanseg_cache"]["trained"]
    )
    assert second["singanseg_cache"]["reused"] >= 1 and set(first["runs"]) == set(settings.training_sets)
    assert not any((models / f / "pix2pix").exists() for f in ("fold0", "fold1"))  # no requested set needs pix2pix
    assert not list(models.glob("*/*style*")) and not any("style" in name for name in first["seconds"])
    afresh, fresh_grids = fold(1, "fold1_afresh", tmp_path / "fresh")
    assert afresh["singanseg_cache"]["trained"] == sum(second["singanseg_cache"].values()) - (
        1 if second["singanseg_slices"][0] == second["small_data_slices"][0] else 0
    )
    assert torch.equal(grids["singanseg"].images, fresh_grids["singanseg"].images)
    assert torch.equal(grids["singanseg"].labels, fresh_grids["singanseg"].labels)
    for name in settings.training_sets:
        assert afresh["runs"][name]["runs"]["0"]["WT"] == second["runs"][name]["runs"]["0"]["WT"], name


def test_a_fold_trains_the_small_data_models_its_requested_sets_use():
    from monai_singanseg.evaluation.settings import needed_generators, small_data_models

    assert small_data_models(["real", "real5", "real1+singanseg", "singanseg"]) == 1
    assert small_data_models(["real1+singanseg", "real5+singanseg+style:histogram"]) == 5
    assert small_data_models(["real", "real5", "singanseg+style:histogram", "real+synthetic"]) == 0
    assert needed_generators(["real5"]) == set() and needed_generators(["real2+singanseg"]) == {"small_singanseg"}


def test_fold_processes_sharing_the_cache_train_a_model_once(brats_item, tmp_path):
    """Two processes ask the cache for the same case's model at once: one trains it, the other waits for it; both get
    the complete dataset."""
    script = tmp_path / "ask.py"
    script.write_text(
        "import json, sys\n"
        "from pathlib import Path\n"
        "from monai_singanseg.engines.singanseg import SinGANSegSettings\n"
        "from monai_singanseg.evaluation.generator_cache import cached_case_dataset\n"
        "from monai_singanseg.farm import DatasetSettings\n"
        "item = json.loads(sys.argv[1])\n"
        "tiny = SinGANSegSettings(min_size=12, iters=40, num_stages=2)\n"
        "dataset = DatasetSettings(slices_per_case=None, samples_per_model=2, max_size=24, training=tiny)\n"
        "folder, manifest, reused = cached_case_dataset(item, dataset, Path(sys.argv[2]), 'cpu', poll_seconds=0.5)\n"
        "print(json.dumps({'folder': str(folder), 'done': manifest['done'], 'pending': manifest['pending']}))\n",
        encoding="utf-8",
    )
    item = json.dumps({**brats_item, "name": "case", "slices": [87]})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), item, str(tmp_path / "cache")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1] and results[0]["done"] == 1 and results[0]["pending"] == []
    (folder,) = list((tmp_path / "cache").iterdir())
    owners = [json.loads(p.read_text())["owner"]["pid"] for p in (folder / "done").glob("*.json")]
    assert len(owners) == 1 and owners[0] in {p.pid for p in procs}  # trained by one of them, once
