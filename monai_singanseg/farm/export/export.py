"""Export a synthetic dataset (with real cases beside it) for the trainers users run: nnU-Net v2's raw format or a
MONAI datalist (bundles, Auto3DSeg).

Every input is read and checked first (files, channels, label values, overlaps, the output folder), so a refused
export writes nothing. Then ``export.json`` records the export, each case's files are published together, and the
dataset's own JSON files come last: an interrupted export leaves whole cases only, and running the same command again
completes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from monai_singanseg import __version__
from monai_singanseg.farm.datalists import split_by_source
from monai_singanseg.farm.export.files import publish_files
from monai_singanseg.farm.export.monai import auto3dseg_config, monai_case_jobs, monai_entry
from monai_singanseg.farm.export.nnunet import (
    nnunet_case_jobs,
    nnunet_dataset_json,
    nnunet_folder,
    nnunet_labels,
    nnunet_splits,
)
from monai_singanseg.farm.export.settings import RECORD_FILE, ExportSettings
from monai_singanseg.farm.export.sources import (
    CaseSet,
    ExportCase,
    check_distinct,
    check_labels,
    in_channel_order,
    read_cases,
)
from monai_singanseg.io.atomic import OutputExistsError, atomic_path, check_output_folder, check_outputs_free
from monai_singanseg.io.provenance import PACKAGE, provenance_record
from monai_singanseg.io.writers import write_datalist

__all__ = ["export_dataset"]

logger = logging.getLogger(__name__)

_BRATS_VALUES = (0, 1, 2, 4)


def _label_values(sets: list[tuple[str, CaseSet]], src: CaseSet) -> tuple[int, ...]:
    """The export's label values: the source's declared ones, else what the labels hold (BraTS's four when they hold
    BraTS values with enhancing tumour)."""
    if src.label_values is not None:
        return src.label_values
    seen: set[int] = set()
    for what, case_set in sets:
        seen |= check_labels(case_set.cases, range(256), what)
    if seen <= set(_BRATS_VALUES) and 4 in seen:
        return _BRATS_VALUES
    return tuple(sorted(seen | {0}))


def _check_same_channels(src: CaseSet, other: CaseSet, what: str) -> CaseSet:
    """``other``'s cases with their channels in ``src``'s order; refused when their channels differ."""
    if sorted(other.channels) != sorted(src.channels):
        example = json.dumps({str(i): c for i, c in enumerate(src.channels)})
        raise ValueError(
            f"{what} {other.path}: its channels {other.channels} differ from SRC's {src.channels}; a dataset's cases "
            f"must hold the same sequences (channels are named by the datalist's 'modality', e.g. {example}, else "
            "by BraTS file names)"
        )
    return in_channel_order(other, src.channels, what)


def _check_no_test_source(cases: list[ExportCase], test_cases: list[ExportCase]) -> None:
    """Refuse synthetic training cases made from a test case: they would carry the test case into training."""
    tests = {c.name for c in test_cases}
    leaked = sorted({c.source for c in cases if c.synthetic and c.source in tests})
    if leaked:
        raise ValueError(
            f"--test case {leaked[0]!r} is the source of synthetic cases in SRC: they would carry it into training; "
            "synthesize from the training cases only, or test on other cases"
        )


def _provenance(case: ExportCase) -> dict[str, Any] | None:
    return provenance_record(case.generator or "unknown", case.source) if case.synthetic else None


def _record(settings: ExportSettings, inputs: Mapping[str, CaseSet]) -> dict[str, Any]:
    def files(case: ExportCase) -> dict[str, Any]:
        return {
            "images": [str(p.resolve()) for p in case.images],
            "label": str(case.label.resolve()) if case.label else None,
        }

    return {
        "format": "monai-singanseg-export",
        "settings": settings.to_dict(),
        "inputs": {
            what: {"path": str(s.path.resolve()), "cases": {c.name: files(c) for c in s.cases}}
            for what, s in inputs.items()
        },
    }


def _start(root: Path, record: dict[str, Any], finals: list[Path], own: tuple[str, ...], overwrite: bool) -> None:
    """Refuse a folder that holds another export (or files of ours without a record) unless ``overwrite``, which
    removes the other export's ``own`` files and folders; write the record."""
    path = root / RECORD_FILE
    try:
        same = path.is_file() and json.loads(path.read_text(encoding="utf-8")) == record
    except ValueError:
        same = False
    if path.is_file() and not same:
        if not overwrite:
            raise OutputExistsError(
                f"{root} holds another export ({path} differs: other inputs or settings); choose another --out, "
                "--dataset-id or --name, or pass --overwrite"
            )
        for name in own:
            target = root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    elif not path.is_file():
        check_outputs_free(finals, overwrite)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")


def _check_dataset_id(out: Path, root: Path, dataset_id: int) -> None:
    clashes = [p for p in sorted(out.glob(f"Dataset{dataset_id:03d}_*")) if p.resolve() != root.resolve()]
    if clashes:
        raise ValueError(
            f"--dataset-id {dataset_id} is already used in {out} by {clashes[0].name}; nnU-Net needs one folder per "
            "dataset number: choose another --dataset-id (1-999)"
        )


def _publish_all(jobs: list[tuple[ExportCase, list]], progress: bool) -> int:
    """Publish every case whose files are not all there yet; returns how many were kept from an earlier run."""
    kept = 0
    for _, case_jobs in tqdm(jobs, desc="exporting", unit="case", disable=not progress):
        if all(dest.is_file() for dest, _ in case_jobs):
            kept += 1
            continue
        publish_files(case_jobs)
    return kept


@dataclass
class _Plan:
    """What an export writes, once every input is read and checked."""

    source: CaseSet
    training: list[ExportCase]
    real: list[ExportCase]
    test: list[ExportCase]
    values: tuple[int, ...]
    provenance: dict[str, Any]
    record: dict[str, Any]


def _plan(
    src: str | os.PathLike, settings: ExportSettings, real: str | os.PathLike | None, test: str | os.PathLike | None
) -> _Plan:
    """Read and check every input (files, channels, label values, overlaps): the export's plan."""
    source = read_cases(src, "SRC", settings.label_map, channel_order=settings.channel_order)
    inputs: dict[str, CaseSet] = {"SRC": source}
    if real is not None:
        inputs["--real"] = _check_same_channels(source, read_cases(real, "--real", settings.label_map), "--real")
    if test is not None:
        test_set = read_cases(test, "--test", settings.label_map, require_label=False)
        inputs["--test"] = _check_same_channels(source, test_set, "--test")
    check_distinct([(what, s.cases) for what, s in inputs.items()])
    real_cases = inputs["--real"].cases if "--real" in inputs else []
    test_cases = inputs["--test"].cases if "--test" in inputs else []
    _check_no_test_source(source.cases, test_cases)
    values = _label_values(list(inputs.items()), source)
    for what, case_set in inputs.items():
        check_labels(case_set.cases, values, what)
    training = source.cases + real_cases
    provenance = {
        "package": PACKAGE,
        "version": str(__version__),
        "synthetic_cases": [c.name for c in training if c.synthetic],
        "real_cases": [c.name for c in training + test_cases if not c.synthetic],
        "sources": {c.name: c.source for c in training if c.synthetic},
        "generators": sorted({c.generator for c in training if c.synthetic and c.generator}),
        "inputs": {what: str(s.path.resolve()) for what, s in inputs.items()},
    }
    return _Plan(source, training, real_cases, test_cases, values, provenance, _record(settings, inputs))


def export_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    settings: ExportSettings | None = None,
    real: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    nnunet_preprocessed: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``src`` (a synthetic dataset folder or a datalist) and the ``real`` cases for a segmentation trainer.

    Args:
        src: a folder written by ``synthesize`` (or a synthesis run), or a datalist of cases.
        out: nnunet: the folder that holds ``DatasetNNN_Name/`` (``nnUNet_raw``); monai: the export's folder.
        settings: format, names, channel order, splits, links, and the label map of every input's cases.
        real: a datalist of real cases, trained on beside the synthetic ones (nnunet: validated on, in
            ``splits_final.json``; monai: the ``validation`` list).
        test: a datalist of real test cases (nnunet: ``imagesTs/``; monai: the ``testing`` list).
        nnunet_preprocessed: nnunet: ``nnUNet_preprocessed``, where ``DatasetNNN_Name/splits_final.json`` also goes
            (default: the ``nnUNet_preprocessed`` environment variable; it always goes beside ``dataset.json``).
        overwrite: replace another export in the same place.
        progress: a progress bar over cases.

    Returns:
        ``{"root": folder, "training": n, "validation" or "folds": n, "test": n, "kept": cases already there, ...}``.

    Raises:
        CaseError, ValueError: a bad input (named); nothing is written.
        OutputExistsError: the place holds another export and ``overwrite`` is False.
    """
    settings = settings or ExportSettings()
    out_dir = check_output_folder(out, "--out")
    plan = _plan(src, settings, real, test)
    if settings.format == "nnunet":
        return _export_nnunet(out_dir, settings, plan, nnunet_preprocessed, overwrite, progress)
    return _export_monai(out_dir, settings, plan, overwrite, progress)


def _export_nnunet(
    out: Path,
    settings: ExportSettings,
    plan: _Plan,
    preprocessed: str | os.PathLike | None,
    overwrite: bool,
    progress: bool,
) -> dict[str, Any]:
    root = nnunet_folder(out, settings.dataset_id, settings.name)
    _check_dataset_id(out, root, settings.dataset_id)
    lut, labels, regions = nnunet_labels(plan.values, plan.source.label_names, settings.classes)
    jobs = [(c, nnunet_case_jobs(root, c, lut, False, settings.link, _provenance(c))) for c in plan.training]
    jobs += [(c, nnunet_case_jobs(root, c, lut, True, settings.link, None)) for c in plan.test]
    preprocessed = preprocessed or os.environ.get("nnUNet_preprocessed")
    splits = nnunet_splits(plan.training, settings.seed)
    # nnU-Net's planning copies a raw dataset's splits_final.json into nnUNet_preprocessed; a dataset that is planned
    # already reads it there
    splits_paths = [root / "splits_final.json"]
    if preprocessed:
        splits_paths.append(
            check_output_folder(Path(preprocessed), "nnUNet_preprocessed") / root.name / "splits_final.json"
        )
    finals = [root / "dataset.json"] + (splits_paths if splits else [])
    own = ("imagesTr", "labelsTr", "imagesTs", "labelsTs", "dataset.json", "splits_final.json")
    _start(root, plan.record, finals + [dest for _, case_jobs in jobs for dest, _ in case_jobs], own, overwrite)
    kept = _publish_all(jobs, progress)
    provenance = {
        **plan.provenance,
        "label_map": {str(k): v for k, v in lut.items()},
        "test_cases": [c.name for c in plan.test],
    }
    dataset = nnunet_dataset_json(
        settings.name, plan.source.description, plan.source.channels, labels, regions, len(plan.training), provenance
    )
    for path in splits_paths if splits else []:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(splits, indent=2), encoding="utf-8")
    if not splits:
        logger.warning("no splits_final.json: one synthetic source case and no real case to validate on")
    with atomic_path(root / "dataset.json") as tmp:
        tmp.write_text(json.dumps(dataset, indent=2), encoding="utf-8")
    return {
        "root": str(root),
        "dataset_json": str(root / "dataset.json"),
        "splits": [str(p) for p in splits_paths] if splits else [],
        "training": len(plan.training),
        "folds": len(splits),
        "test": len(plan.test),
        "kept": kept,
        "label_map": lut,
    }


def _export_monai(out: Path, settings: ExportSettings, plan: _Plan, overwrite: bool, progress: bool) -> dict[str, Any]:
    channels = plan.source.channels
    if plan.real:
        training, validation = list(plan.source.cases), list(plan.real)
    else:
        entries = [{"name": c.name, "source": c.source} for c in plan.source.cases]
        train_names = {e["name"] for e in split_by_source(entries, settings.val_fraction, settings.seed)[0]}
        training = [c for c in plan.source.cases if c.name in train_names]
        validation = [c for c in plan.source.cases if c.name not in train_names]
    if not validation:
        logger.warning("the validation list is empty: give --real cases, or a source with two or more source cases")
    datalist_path = out / "datalist.json"
    jobs = [
        (c, monai_case_jobs(out, c, channels, settings.link, _provenance(c))) for c in training + validation + plan.test
    ]
    files = [datalist_path] + [dest for _, case_jobs in jobs for dest, _ in case_jobs]
    _start(out, plan.record, files, ("cases", "datalist.json"), overwrite)
    kept = _publish_all(jobs, progress)
    extra = {
        "name": settings.name,
        "description": plan.source.description,
        "labels": {str(v): plan.source.label_names.get(v, str(v)) for v in plan.values},
        "modality": {str(i): c for i, c in enumerate(channels)},
        "channel_order": list(channels),
        "monai_singanseg": {**plan.provenance, "validation_cases": [c.name for c in validation]},
    }
    lists = {"validation": [monai_entry(out, c, channels) for c in validation]}
    if plan.test:
        lists["testing"] = [monai_entry(out, c, channels) for c in plan.test]
    write_datalist(
        datalist_path, [monai_entry(out, c, channels) for c in training], overwrite=True, extra=extra, lists=lists
    )
    return {
        "root": str(out),
        "datalist": str(datalist_path),
        "training": len(training),
        "validation": len(validation),
        "test": len(plan.test),
        "kept": kept,
        "auto3dseg": auto3dseg_config(settings.name, datalist_path, out),
    }
