"""What the benchmarks share: where the shared data lies, its cases as datalist items, and the torch-threads option.

The benchmarks run as scripts (``python benchmarks/NAME.py``), so this module is imported as ``common``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from monai_singanseg.data import brats_datalist

__all__ = [
    "SHARED",
    "TCGA_CASE",
    "BRATS2013_CASES",
    "tcga_items",
    "brats2013_items",
    "write_datalist_json",
    "add_threads",
]

#: ``../shared/data`` beside the repository (``MONAI_SINGANSEG_SHARED_DATA`` overrides it, as for the tests).
SHARED = Path(
    os.environ.get("MONAI_SINGANSEG_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
#: the TCGA case of most benchmarks (BraTS space, labels 0/1/2/4, four sequences).
TCGA_CASE = SHARED / "brats_tcga" / "TCGA-FG-6692"
#: the six expert-labelled BRATS-2013 cases (FLAIR + T1c; non-commercial licence: benchmarks and tests only).
BRATS2013_CASES = (
    tuple(sorted(p.name for p in (SHARED / "brats2013").iterdir() if p.is_dir())) if SHARED.is_dir() else ()
)


def tcga_items() -> list[dict]:
    """The CC-BY TCGA cases as datalist items (BraTS naming)."""
    return brats_datalist(SHARED / "brats_tcga")


def brats2013_items(cases: Sequence[str] | None = None) -> list[dict]:
    """BRATS-2013 cases as datalist items with their own file names (FLAIR + T1c, label ``OTMultiClass``; its
    label 3 is BraTS's 1: pass ``--label-map 3:1``)."""
    root = SHARED / "brats2013"
    if not (cases or BRATS2013_CASES):
        raise SystemExit(
            f"no BRATS-2013 cases under {root}: put ../shared beside the repository or set "
            "MONAI_SINGANSEG_SHARED_DATA to its data folder"
        )
    return [
        {
            "name": c,
            "image": [str(root / c / "Flair_subtrMeanDivStd.nii.gz"), str(root / c / "T1c_subtrMeanDivStd.nii.gz")],
            "label": str(root / c / "OTMultiClass.nii.gz"),
        }
        for c in (cases or BRATS2013_CASES)
    ]


def write_datalist_json(items: Sequence[dict], path: Path) -> Path:
    """``items`` as a decathlon datalist file (its ``training`` list)."""
    path.write_text(json.dumps({"training": list(items)}, indent=1), encoding="utf-8")
    return path


def add_threads(parser: argparse.ArgumentParser, default: int) -> None:
    """The ``--threads`` option of a benchmark (torch threads of its process)."""
    parser.add_argument("--threads", type=int, default=default, help=f"torch threads (default {default})")
