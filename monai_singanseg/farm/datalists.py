"""Datalists that trainers take as they are: channels in the order a trainer expects, and training/validation splits
by source case, so that no two samples of one real case land on both sides of a split."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from monai_singanseg.options import option

__all__ = [
    "channel_order_option",
    "val_fraction_option",
    "check_channel_order",
    "reorder_images",
    "source_of",
    "held_out_sources",
    "split_by_source",
    "source_folds",
]


def channel_order_option() -> Any:
    """The ``channel_order`` option of the commands that write datalists (``synthesize``, ``export``)."""
    return option(
        None,
        help="the image channels in this order, by name (e.g. t1ce t1 t2 flair for the model zoo's BraTS bundle; "
        "default: the source's order)",
    )


def val_fraction_option() -> Any:
    """The ``val_fraction`` option of the commands that write datalists (``synthesize``, ``export``)."""
    return option(
        0.2,
        low=0.0,
        high=1.0,
        high_open=True,
        help="share of the source cases whose samples form the validation list (all samples of one source case on one "
        "side; none with fewer than two source cases)",
    )


def check_channel_order(order: Sequence[str], channels: Sequence[str], what: str = "--channel-order") -> list[int]:
    """The index in ``channels`` of each name of ``order``.

    Raises:
        ValueError: ``order`` names a channel the data lacks, names one twice, or leaves one out; the message names
            ``what`` and the data's channels.
    """
    order, channels = [str(c) for c in order], [str(c) for c in channels]
    unknown = [c for c in order if c not in channels]
    if unknown:
        raise ValueError(f"{what} names {unknown}, which the data lacks: its channels are {channels}")
    if len(set(order)) != len(order) or len(order) != len(channels):
        raise ValueError(f"{what} {order} must name each of the data's channels {channels} once")
    return [channels.index(c) for c in order]


def reorder_images(entries: Sequence[Mapping[str, Any]], indices: Sequence[int]) -> list[dict[str, Any]]:
    """Datalist entries whose ``image`` lists are put in the order ``indices`` (from :func:`check_channel_order`)."""
    out = []
    for e in entries:
        images = e["image"]
        if not isinstance(images, (list, tuple)) or len(images) != len(indices):
            raise ValueError(f"entry {e.get('name')!r}: expected {len(indices)} image files, found {images!r}")
        out.append({**e, "image": [images[i] for i in indices]})
    return out


def source_of(entry: Mapping[str, Any]) -> str:
    """The real case an entry comes from: its ``source`` (synthetic cases), else its own ``name`` (a real case)."""
    return str(entry.get("source") or entry.get("name"))


def held_out_sources(sources: Sequence[str], fraction: float, seed: int = 0) -> set[str]:
    """The source cases held out for validation: ``round(fraction * n)`` of the ``n`` distinct sources, drawn with
    ``seed``; at least one and at most ``n - 1`` when ``fraction > 0`` and there are two or more (none otherwise)."""
    distinct = sorted(set(sources))
    if fraction <= 0 or len(distinct) < 2:
        return set()
    count = min(len(distinct) - 1, max(1, round(fraction * len(distinct))))
    return set(random.Random(seed).sample(distinct, count))


def split_by_source(
    entries: Sequence[Mapping[str, Any]], fraction: float, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(training, validation)``: the entries of the held-out source cases (:func:`held_out_sources`) validate, the
    others train; every sample of one source case is on one side."""
    held = held_out_sources([source_of(e) for e in entries], fraction, seed)
    training = [dict(e) for e in entries if source_of(e) not in held]
    validation = [dict(e) for e in entries if source_of(e) in held]
    return training, validation


def source_folds(sources: Sequence[str], num_folds: int, seed: int = 0) -> dict[str, int]:
    """A cross-validation fold (``0 .. num_folds - 1``) per distinct source case: the sources shuffled with ``seed``
    and dealt round-robin, so folds differ in size by at most one source."""
    distinct = sorted(set(sources))
    random.Random(seed).shuffle(distinct)
    return {s: i % max(1, num_folds) for i, s in enumerate(distinct)}
