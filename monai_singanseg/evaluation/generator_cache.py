"""SinGAN-Seg models trained once per slice and reused by every fold (and every set) that needs that slice.

A SinGAN-Seg model depends only on its own case's data, its slice and the synthesis settings; none on the other cases
of a fold. Each model is therefore one ``synthesize`` run of its own in a cache folder named by the case, the slice
and a key: the SHA-256 of the case's files' bytes, the settings and the slice. Its seed is that run's (the dataset
seed), so a model read from the cache is the model a fold would train. The model of a case's largest tumour slice
serves both the SinGAN-Seg set and the small-data sets. Folds that run as separate processes share the cache: a model
another process is training is waited for, not trained twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_singanseg.farm import DatasetSettings, RankContext, synthesize_dataset
from monai_singanseg.io.atomic import hash_file
from monai_singanseg.io.names import safe_name

__all__ = ["synthesize_all", "case_key", "cached_case_dataset", "cached_slice_models"]


def synthesize_all(
    items: Sequence[Mapping[str, Any]],
    folder: Path,
    dataset: DatasetSettings,
    device: Any,
    overwrite: bool = False,
    poll_seconds: float | None = None,
) -> dict[str, Any]:
    """A synthetic dataset of ``items`` made by the product's ``synthesize`` in this process; every entry must succeed.

    Args:
        poll_seconds: wait for entries another process works on, looking again this often (None: they are an error).

    Raises:
        RuntimeError: an entry failed (or, without ``poll_seconds``, is left to another process).
    """
    while True:
        manifest = synthesize_dataset(
            items, folder, dataset, RankContext(run_id=uuid.uuid4().hex), str(device), overwrite, progress=False
        )
        waiting = manifest["pending"] and poll_seconds is not None
        if manifest["failed"] or (manifest["pending"] and not waiting):
            errors = "; ".join(
                f"{e['id']}: {e.get('error', e['status'])}" for e in manifest["entries"] if e["status"] != "done"
            )
            raise RuntimeError(f"synthesizing {folder} failed: {errors}")
        if not waiting:
            return manifest
        time.sleep(poll_seconds)  # another process works on it now


def case_key(item: Mapping[str, Any], dataset: DatasetSettings) -> str:
    """The cache key of a case's synthetic dataset: its image and label bytes, the settings and the slices asked for."""
    digest = hashlib.sha256()
    images = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    for path in [*images, item["label"]]:
        hash_file(path, digest)
    recipe = {"settings": dataset.to_dict(), "slices": item.get("slices")}
    digest.update(json.dumps(recipe, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def cached_case_dataset(
    item: Mapping[str, Any],
    dataset: DatasetSettings,
    cache_dir: Path,
    device: Any,
    poll_seconds: float = 5.0,
) -> tuple[Path, dict[str, Any], bool]:
    """The synthetic dataset of one case, from the cache or made now by ``synthesize``.

    Args:
        item: the case's datalist entry (with its ``name``; ``slices`` picks the slices).
        dataset: the synthesis settings.
        cache_dir: the cache folder (shared by the folds, and by fold processes).
        device: torch device.
        poll_seconds: how often to look again while another process trains this case.

    Returns:
        ``(folder, manifest, reused)``: ``reused`` when every model was there already.

    Raises:
        RuntimeError: a model of the case failed.
    """
    slices = "".join(f"_z{z:03d}" for z in item.get("slices") or [])
    folder = cache_dir / f"{safe_name(item['name'])}{slices}-{case_key(item, dataset)}"
    if (folder / "manifest.json").is_file():  # written once every model of the case is done
        return folder, json.loads((folder / "manifest.json").read_text(encoding="utf-8")), True
    return folder, synthesize_all([item], folder, dataset, device, poll_seconds=poll_seconds), False


def cached_slice_models(
    item: Mapping[str, Any], slices: Sequence[int], dataset: DatasetSettings, cache_dir: Path, device: Any
) -> tuple[list[tuple[Path, dict[str, Any], int]], dict[str, int]]:
    """One cached SinGAN-Seg model per slice of ``slices`` of a case (:func:`cached_case_dataset` of the case with
    that one slice).

    Returns:
        ``([(dataset folder, manifest entry, index in its dataset), ...], {"trained": n, "reused": n})``.
    """
    models, counts = [], {"trained": 0, "reused": 0}
    for z in slices:
        folder, manifest, reused = cached_case_dataset({**item, "slices": [int(z)]}, dataset, cache_dir, device)
        counts["reused" if reused else "trained"] += 1
        models += [(folder, e, i) for i, e in enumerate(manifest["entries"])]
    return models, counts
