"""Small pieces every training loop shares: a private random stream, data fingerprints, optional TensorBoard."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["forked_rng", "tensor_digest", "require_tensorboard", "optional_summary_writer", "cpu_threads_hint"]


@contextlib.contextmanager
def forked_rng(device: torch.device | str, seed: int | None = None, state: torch.Tensor | None = None) -> Iterator[None]:
    """Run a block on its own torch random stream; the caller's random state is unchanged afterwards.

    Library code never seeds the global generators (only entry points may): a trainer draws its noise,
    initial weights and dropout masks inside this block, seeded from its settings or restored from a
    checkpoint, so a run is reproducible and leaves no trace on the caller's random state.

    Args:
        device: the training device (its CUDA generator is forked too).
        seed: seed of the stream (None: leave the forked state as it was).
        state: a CPU generator state to restore instead (from :func:`torch.get_rng_state` inside a block).
    """
    dev = torch.device(device)
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(int(seed))
        if state is not None:
            torch.set_rng_state(state)
        yield


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex) of tensors' shapes and float32 values: the fingerprint of a training set."""
    digest = hashlib.sha256()
    for t in tensors:
        arr = t.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(arr.shape)).encode("utf-8"))
        digest.update(arr.numpy().tobytes())
    return digest.hexdigest()


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
