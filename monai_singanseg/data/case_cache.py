"""Cases read once per run: inside :func:`cached_cases`, :func:`~monai_singanseg.data.loading.load_case` keeps the cases
it has read and hands out copies of them.

A run such as ``evaluate`` reads every case many times (its checks, each fold's slice sets, each synthesis step's plan,
prepare and quality steps), and decompressing a NIfTI volume costs far more than copying it. The cache is bounded by
bytes and drops the least recently used case first. A case's key holds the size and modification time of each of its
files (every file of a DICOM folder), so a file changed on disk is read again. Outside the block nothing is kept.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["CaseCache", "cached_cases", "active_case_cache", "DEFAULT_CACHE_BYTES"]

#: the default bound of :func:`cached_cases`: about six two-sequence BraTS cases (their labels are kept as bytes).
DEFAULT_CACHE_BYTES = 1 << 30

_active: CaseCache | None = None


def _file_stamps(path: Path) -> tuple:
    """``(path, size, mtime)`` of a file, or of every file of a folder (a DICOM series); a missing path stamps None."""
    try:
        if path.is_dir():
            return tuple(_file_stamps(p) for p in sorted(path.iterdir()) if p.is_file())
        stat = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _nbytes(value: Any) -> int:
    return value.element_size() * value.nelement() if isinstance(value, torch.Tensor) else 0


def _copy(case: Mapping[str, Any], label_dtype: torch.dtype | None) -> dict[str, Any]:
    """A copy of a case whose tensors and metadata the caller may change freely (the label in ``label_dtype``)."""
    out = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in case.items()}  # clone: metadata too
    if label_dtype is not None:
        out["label"] = out["label"].to(label_dtype)
    return out


class CaseCache:
    """Loaded cases by key, up to ``max_bytes`` (least recently used first out).

    Args:
        max_bytes: the most tensor bytes kept; a case larger than this is not kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0
        self._cases: OrderedDict[Hashable, tuple[dict[str, Any], torch.dtype | None, int]] = OrderedDict()

    @staticmethod
    def key(
        item: Mapping[str, Any], label_values: Sequence[int], spatial_ndim: int, label_map: Mapping[int, int] | None
    ) -> Hashable:
        """The key of one ``load_case`` call: its files as they are on disk now, and the loading options."""
        images = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
        files = tuple(_file_stamps(Path(os.fspath(p))) for p in images)
        label = _file_stamps(Path(os.fspath(item["label"]))) if item.get("label") else None
        options = (tuple(int(v) for v in label_values), int(spatial_ndim), tuple(sorted((label_map or {}).items())))
        return files, label, options, str(item.get("name") or "")

    def get(self, key: Hashable) -> dict[str, Any] | None:
        """A copy of the case kept under ``key``, or None."""
        found = self._cases.get(key)
        if found is None:
            self.misses += 1
            return None
        self._cases.move_to_end(key)
        self.hits += 1
        case, label_dtype, _ = found
        return _copy(case, label_dtype)

    def put(self, key: Hashable, case: Mapping[str, Any]) -> None:
        """Keep a copy of ``case`` (a label of class indices below 256 is kept as bytes)."""
        label = case.get("label")
        small = isinstance(label, torch.Tensor) and label.numel() > 0
        small = small and int(label.min()) >= 0 and int(label.max()) < 256
        kept = _copy(case, torch.uint8 if small else None)
        size = sum(_nbytes(v) for v in kept.values())
        if size > self.max_bytes:
            return
        self._cases.pop(key, None)
        self._cases[key] = (kept, label.dtype if small else None, size)
        while sum(entry[2] for entry in self._cases.values()) > self.max_bytes:
            self._cases.popitem(last=False)

    def __len__(self) -> int:
        return len(self._cases)


@contextlib.contextmanager
def cached_cases(max_bytes: int = DEFAULT_CACHE_BYTES) -> Iterator[CaseCache]:
    """Within the block, ``load_case`` reads each case once and returns copies (an outer block's cache is kept)."""
    global _active
    if _active is not None:
        yield _active
        return
    _active = CaseCache(max_bytes)
    try:
        yield _active
    finally:
        _active = None


def active_case_cache() -> CaseCache | None:
    """The cache of the enclosing :func:`cached_cases` block, or None."""
    return _active
