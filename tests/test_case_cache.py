"""``cached_cases``: inside the block ``load_case`` reads a case once and hands out copies; a changed file is read
again, the cache stays within its bound, and outside the block nothing is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_singanseg.data import CaseError, demo_case, load_case
from monai_singanseg.data.case_cache import CaseCache, active_case_cache, cached_cases


@pytest.fixture
def case_item(tmp_path: Path) -> dict:
    """The demo case's files copied to a folder of the test's own (so that a test may rewrite them)."""
    item = demo_case()
    copied = {"name": item["name"], "image": [], "label": str(shutil.copy(item["label"], tmp_path))}
    copied["image"] = [str(shutil.copy(p, tmp_path)) for p in item["image"]]
    return copied


def _same(a: dict, b: dict) -> None:
    assert torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
    assert torch.equal(a["label"].as_tensor(), b["label"].as_tensor()) and a["label"].dtype == b["label"].dtype
    assert torch.equal(a["image"].affine, b["image"].affine) and a["name"] == b["name"]
    assert a["image"].meta["filename_or_obj"] == b["image"].meta["filename_or_obj"]


def test_a_case_is_read_once_and_every_caller_gets_its_own_copy(case_item):
    direct = load_case(case_item)
    assert active_case_cache() is None
    with cached_cases() as cache:
        first = load_case(case_item)
        first["image"].add_(1.0)  # a caller changing its copy in place: tensor, label and metadata
        first["label"].zero_()
        first["image"].affine[0, 0] = 7.0
        first["image"].meta["filename_or_obj"] = "changed"
        second = load_case(case_item)
        with cached_cases() as inner:  # a nested block shares the outer cache
            third = load_case(case_item)
        assert inner is cache and active_case_cache() is cache
        assert (cache.misses, cache.hits, len(cache)) == (1, 2, 1)
        assert second["label"] is not third["label"]
    _same(second, direct)
    _same(third, direct)
    assert active_case_cache() is None  # nothing is kept after the block
    # other loading options are another case (the label map changes the label)
    with cached_cases() as cache:
        load_case(case_item)
        relabelled = load_case(case_item, label_values=(0, 1, 2, 4), label_map={2: 1})
        assert cache.misses == 2 and int((relabelled["label"] == 2).sum()) == 0 < int((direct["label"] == 2).sum())


def test_a_file_changed_on_disk_is_read_again(case_item):
    with cached_cases() as cache:
        before = load_case(case_item)
        flair = nib.load(case_item["image"][0])
        doubled = np.asarray(flair.dataobj, dtype=np.float32) * 2
        nib.save(nib.Nifti1Image(doubled, flair.affine), case_item["image"][0])
        after = load_case(case_item)
        assert cache.misses == 2
        assert torch.allclose(after["image"][0], before["image"][0] * 2)
        Path(case_item["label"]).unlink()
        with pytest.raises(CaseError, match="label file not found"):  # errors are raised, never kept
            load_case(case_item)


def test_the_cache_keeps_within_its_bound_least_recently_used_out(case_item):
    case = load_case(case_item)
    size = sum(v.element_size() * v.nelement() for k, v in case.items() if k == "image") + case["label"].nelement()
    cache = CaseCache(max_bytes=2 * size)  # two cases (the label kept as bytes)
    for key in ("a", "b", "c"):
        cache.put(key, case)
    assert len(cache) == 2 and cache.get("a") is None and cache.get("b") is not None
    cache.put("d", case)  # "c" is now the least recently used
    assert cache.get("c") is None and cache.get("b") is not None and cache.get("d") is not None
    kept = cache.get("b")
    assert kept["label"].dtype == case["label"].dtype == torch.int64
    assert torch.equal(kept["label"].as_tensor(), case["label"].as_tensor())
    small = CaseCache(max_bytes=size - 1)  # a case larger than the bound is not kept
    small.put("a", case)
    assert len(small) == 0
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        CaseCache(-1)
