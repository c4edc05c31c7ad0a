"""The experiment's cases checked before any training: each loads with a tumour, all have the same sequences, and a
user's test set shares no case with the training cases (neither the same files nor the same image content)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_singanseg.data import load_case
from monai_singanseg.data.discovery import modality_of_file

__all__ = ["CaseFacts", "check_cases", "check_test_cases"]


@dataclass(frozen=True)
class CaseFacts:
    """What the checks compare of a loaded case.

    Attributes:
        name: the case's name.
        channels: number of image channels.
        sequences: the BraTS sequence each image file's name says, or None when a file's name says none.
        files: the resolved image and label paths.
        content: SHA-256 of the loaded image voxels (the same scan in another file or format has the same one).
    """

    name: str
    channels: int
    sequences: tuple[str, ...] | None
    files: frozenset[str]
    content: str


def _image_files(item: Mapping[str, Any]) -> list[str]:
    image = item["image"]
    return [str(f) for f in (image if isinstance(image, (list, tuple)) else [image])]


def _facts(item: Mapping[str, Any], case: Mapping[str, Any]) -> CaseFacts:
    images = _image_files(item)
    sequences = [modality_of_file(f) for f in images]
    voxels = np.ascontiguousarray(case["image"].detach().cpu().numpy())
    digest = hashlib.sha256(str(voxels.shape).encode("utf-8"))
    digest.update(voxels.tobytes())
    return CaseFacts(
        name=str(case["name"]),
        channels=int(case["image"].shape[0]),
        sequences=None if None in sequences else tuple(s for s in sequences if s is not None),
        files=frozenset(str(Path(f).resolve()) for f in [*images, item["label"]]),
        content=digest.hexdigest(),
    )


def check_cases(
    items: Sequence[Mapping[str, Any]],
    label_values: Sequence[int],
    progress: bool = True,
    label_map: Mapping[int, int] | None = None,
    need_tumour: bool = True,
    what: str = "case",
) -> list[CaseFacts]:
    """Load every case once and check it can take part: it loads (its label's values are known), holds a tumour
    (``need_tumour``), and has the same channels as the others.

    Returns:
        Each case's :class:`CaseFacts`, in ``items`` order.

    Raises:
        ValueError: naming every case that cannot, and why.
    """
    problems, facts = [], []
    for item in tqdm(items, desc=f"checking {what}s", leave=False, disable=not progress):
        name = str(item.get("name", item.get("label", what)))
        try:
            case = load_case(item, label_values, spatial_ndim=3, label_map=label_map)
        except (ValueError, OSError) as exc:
            problems.append(f"{what} {name}: {exc}")
            continue
        if "label" not in case:
            problems.append(f"{what} {name}: no label (each is scored against its label)")
            continue
        if need_tumour and not bool((case["label"] > 0).any()):
            problems.append(f"{what} {name}: no tumour in its label (every case is a test case once)")
        facts.append(_facts(item, case))
    channels = {f.name: f.channels for f in facts}
    if len(set(channels.values())) > 1:
        problems.append(f"the {what}s have different numbers of image channels: {channels}")
    if problems:
        raise ValueError(f"{len(problems)} {what} problem(s), nothing was trained:\n  " + "\n  ".join(problems))
    return facts


def check_test_cases(train: Sequence[CaseFacts], test: Sequence[CaseFacts], test_source: str) -> None:
    """Refuse a test set that cannot score networks trained on ``train``: other sequences (or another number of
    channels) than the training cases, or a case that is also a training case (the same files, or the same image
    voxels under another name).

    Raises:
        ValueError: naming every such test case and the training case it clashes with.
    """
    problems = []
    reference = train[0]
    for case in test:
        if case.channels != reference.channels:
            problems.append(
                f"{case.name}: {case.channels} image channel(s), the training cases have {reference.channels}"
            )
        elif case.sequences and reference.sequences and case.sequences != reference.sequences:
            problems.append(
                f"{case.name}: sequences {list(case.sequences)}, the training cases have {list(reference.sequences)} "
                "(in this order)"
            )
        for other in train:
            if case.files & other.files:
                shared = ", ".join(sorted(Path(f).name for f in case.files & other.files))
                problems.append(f"{case.name}: the training case {other.name} has the same file(s) {shared}")
            elif case.content == other.content:
                problems.append(f"{case.name}: the same image voxels as the training case {other.name}")
    if problems:
        raise ValueError(
            f"{test_source}: {len(problems)} test case problem(s), nothing was trained (a test case must be new to "
            "the networks, with the training cases' sequences):\n  " + "\n  ".join(problems)
        )
