"""Choosing the torch device: the one place that turns ``"auto"``/None into CUDA-if-available and checks a request."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "DEVICE_CHOICES"]

#: what a device option accepts.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` are checked.

    Raises:
        ValueError: not a device name, or a CUDA device this machine or this torch build does not have.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name; use {DEVICE_CHOICES}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use {DEVICE_CHOICES}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu (or auto). "
                "On a GPU machine install torch's CUDA build first (README)."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present (cuda:0..)")
    return dev
