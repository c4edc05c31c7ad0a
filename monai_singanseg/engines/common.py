"""Small pieces every training loop shares: seeding, device choice, optional TensorBoard."""

from __future__ import annotations

import os
from typing import Any

import torch
from monai.utils import set_determinism

from monai_singanseg.device import resolve_device

__all__ = ["seed_everything", "resolve_device", "require_tensorboard", "optional_summary_writer", "cpu_threads_hint"]


def seed_everything(seed: int | None) -> None:
    """Seed python, numpy and torch (CPU and CUDA) through ``monai.utils.set_determinism``.

    Args:
        seed: the seed; None leaves the generators unseeded (non-deterministic).
    """
    set_determinism(seed=seed)


def optional_summary_writer(log_dir: str | os.PathLike | None) -> Any | None:
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None if no directory is given.

    Raises:
        ImportError: naming the extra to install when a directory is given but tensorboard is missing.
    """
    if log_dir is None:
        return None
    return require_tensorboard()(log_dir=str(log_dir))


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


def cpu_threads_hint() -> int:
    """Threads torch uses on CPU (for benchmark reports)."""
    return torch.get_num_threads()
