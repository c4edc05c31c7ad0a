"""Transforms return what they were given: one helper that puts a computed tensor back into the input's container."""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

__all__ = ["like_input"]


def like_input(out: torch.Tensor, like: NdarrayOrTensor, keep_trace: bool = True) -> NdarrayOrTensor:
    """``out`` in the container type of ``like``.

    Args:
        out: the computed tensor.
        like: the transform's input.
        keep_trace: a MetaTensor result keeps ``like``'s transform trace (``applied_operations``); False starts an
            empty one.

    Returns:
        A numpy array for a numpy input; a MetaTensor with ``like``'s metadata on its device for a MetaTensor; else
        the tensor on ``like``'s device.
    """
    if isinstance(like, MetaTensor):
        ops = list(like.applied_operations) if keep_trace else None
        return MetaTensor(out.to(like.device), meta=dict(like.meta), applied_operations=ops)
    if isinstance(like, np.ndarray):
        return convert_to_numpy(out)
    if isinstance(like, torch.Tensor):
        return out.to(like.device)
    return out
