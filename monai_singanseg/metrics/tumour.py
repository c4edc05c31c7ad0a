"""Tumour fidelity of synthetic label maps in 2D or 3D: size kept, connected components, class nesting.

A single-image GAN judged by a patch critic can drop or blow up the tumour, scatter it into fragments, or put a
tumour core straight against the healthy tissue without the oedema that wraps it in real gliomas. These functions
measure that on class-index label maps ``(N, 1, *spatial)`` of any spatial dimension (slices or whole volumes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["outer_ring", "tumour_size_ratio", "tumour_kept", "tumour_components", "core_background_contact"]

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _check_labels(name: str, labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.ndim not in (3, 4, 5) or labels.shape[1] != 1 or not len(labels):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(
            f"{name} must be a non-empty tensor of class indices (N, 1, *spatial) with 1-3 spatial "
            f"dimensions, got {shape}"
        )
    return labels


def outer_ring(mask: torch.Tensor) -> torch.Tensor:
    """The voxels just outside a boolean ``mask`` of 1-3 spatial dimensions (fully connected: 8 neighbours in 2D,
    26 in 3D); the image border adds nothing beyond itself.

    Args:
        mask: boolean ``(*spatial)``.

    Returns:
        Boolean ``(*spatial)``: not in ``mask`` and next to a voxel that is.
    """
    if mask.ndim not in _MAX_POOL:
        raise ValueError(f"mask must have 1-3 spatial dimensions, got shape {tuple(mask.shape)}")
    grown = _MAX_POOL[mask.ndim](mask[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    return grown & ~mask.bool()


def tumour_size_ratio(labels: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Tumour voxels (any class > 0) of each label map over those of ``reference``.

    Args:
        labels: class-index maps ``(N, 1, *spatial)``.
        reference: the real class-index map(s) ``(M, 1, *spatial')``; their mean tumour size is the reference.

    Returns:
        Float ``(N,)``; ``inf`` where the reference has no tumour and the sample has (``nan`` if neither has).
    """
    labels, reference = _check_labels("labels", labels), _check_labels("reference", reference)
    sizes = (labels > 0).flatten(1).sum(1).double()
    real = float((reference > 0).flatten(1).sum(1).double().mean())
    return (sizes / real).float() if real > 0 else torch.where(sizes > 0, torch.inf, torch.nan).float()


def tumour_kept(labels: torch.Tensor, reference: torch.Tensor, low: float = 0.25, high: float = 4.0) -> torch.Tensor:
    """Whether each sample kept a tumour of about the real size: ``low <= tumour_size_ratio <= high``.

    Args:
        labels: class-index maps ``(N, 1, *spatial)``.
        reference: the real class-index map(s) ``(M, 1, *spatial')``.
        low: smallest accepted ratio (a sample that lost most of its tumour is not kept).
        high: largest accepted ratio.

    Returns:
        Boolean ``(N,)``.
    """
    if not 0.0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got low={low}, high={high}")
    ratio = tumour_size_ratio(labels, reference)
    return (ratio >= low) & (ratio <= high)


def tumour_components(labels: torch.Tensor, min_size: int = 1) -> torch.Tensor:
    """Connected tumour components (any class > 0, fully connected: 8 neighbours in 2D, 26 in 3D) of each map.

    Args:
        labels: class-index maps ``(N, 1, *spatial)``.
        min_size: components smaller than this many voxels are not counted.

    Returns:
        Long ``(N,)``: the number of components (0 for a map without tumour). A real glioma is mostly one.
    """
    labels = _check_labels("labels", labels)
    structure = np.ones((3,) * (labels.ndim - 2))
    counts = []
    for lab in labels:
        components, n = ndimage.label(lab[0].cpu().numpy() > 0, structure=structure)
        sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
        counts.append(int((sizes >= min_size).sum()))
    return torch.tensor(counts, dtype=torch.long)


def core_background_contact(labels: torch.Tensor, core_classes: Sequence[int]) -> torch.Tensor:
    """Class nesting: the share of the tumour core's outer ring that is background (class 0).

    In a glioma the core (BraTS: necrosis/non-enhancing 1 and enhancing 4, class indices 1 and 3 after
    ``LabelToIndex``) sits inside the oedema, so little of its ring is healthy tissue; a generator that draws
    the classes independently puts the core against the background.

    Args:
        labels: class-index maps ``(N, 1, *spatial)``.
        core_classes: the class indices that form the core.

    Returns:
        Float ``(N,)`` in [0, 1]; ``nan`` for a map without core (or whose core fills it).
    """
    labels = _check_labels("labels", labels)
    if not len(core_classes):
        raise ValueError("core_classes must name at least one class index")
    core = torch.isin(labels[:, 0], torch.as_tensor(list(core_classes), device=labels.device))
    shares = []
    for is_core, lab in zip(core, labels[:, 0]):
        ring = outer_ring(is_core)
        total = int(ring.sum())
        shares.append(float((ring & (lab == 0)).sum()) / total if total else float("nan"))
    return torch.tensor(shares, dtype=torch.float32)
