"""Small pieces every training loop shares: data fingerprints, loaders that leave the random stream alone, optional
TensorBoard."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "tensor_digest",
    "stream_neutral_loader",
    "require_tensorboard",
    "optional_summary_writer",
    "cpu_threads_hint",
]


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex) of tensors' shapes and float32 values: the fingerprint of a training set."""
    digest = hashlib.sha256()
    for t in tensors:
        arr = t.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(arr.shape)).encode("utf-8"))
        digest.update(arr.numpy().tobytes())
    return digest.hexdigest()


def stream_neutral_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
    """A main-process ``DataLoader`` whose iterators draw nothing from torch's global random stream.

    A loader without its own generator draws a base seed from the global stream each time an iterator is made;
    inside a training run that stream is the networks' (dropout), so a validation pass or a resumed epoch would
    change training. This loader's generator is a fixed one (it only seeds worker processes, of which there are
    none); the order of the batches is the ``sampler``'s (default: in order).

    Args:
        dataset: the items.
        batch_size: items per batch.
        sampler: the order (e.g. a ``DistributedSampler`` shard); None: in order.
    """
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, sampler=sampler, generator=torch.Generator().manual_seed(0)
    )


def require_tensorboard() -> Any:
    """TensorBoard's ``SummaryWriter`` class; call it before reading data to fail early when it is missing.

    Raises:
        ImportError: naming the extra to install.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("TensorBoard logging needs `pip install monai-singanseg[tensorboard]`") from exc
    return SummaryWriter


@contextlib.contextmanager
def optional_summary_writer(log_dir: str | os.PathLike | None) -> Iterator[Any | None]:
    """A TensorBoard ``SummaryWriter`` for ``log_dir`` (None if no folder is given), closed on exit and on errors.

    Raises:
        ImportError: naming the extra to install when a folder is given but tensorboard is missing.
    """
    if log_dir is None:
        yield None
        return
    writer = require_tensorboard()(log_dir=str(log_dir))
    try:
        yield writer
    finally:
        writer.close()


def cpu_threads_hint() -> int:
    """Threads torch uses on CPU (for benchmark reports)."""
    return torch.get_num_threads()
