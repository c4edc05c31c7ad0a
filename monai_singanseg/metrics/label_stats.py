"""Label statistics of a set of label maps (tumour area, class proportions, empty maps), synthetic vs real."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["label_statistics", "compare_label_statistics"]


def _check_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {num_classes}")
    if not isinstance(labels, torch.Tensor) or labels.ndim < 3 or labels.shape[1] != 1 or labels.shape[0] == 0:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a non-empty tensor of class indices (N, 1, *spatial), got {shape}")
    if labels.is_floating_point():
        if not torch.isfinite(labels).all() or not torch.equal(labels, labels.round()):
            raise ValueError("labels must hold integer class indices, got non-integer values")
    labels = labels.long()
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"class indices must lie in [0, {num_classes - 1}], got [{low}, {high}]")
    return labels


def label_statistics(labels: torch.Tensor, num_classes: int, class_names: Sequence[str] | None = None) -> dict:
    """Tumour area, per-class proportions and fraction of empty maps of a set of label maps.

    Args:
        labels: class-index maps ``(N, 1, *spatial)`` (0 = background, ``1..num_classes-1`` tumour classes;
            BraTS: 1 necrotic/non-enhancing core, 2 oedema, 3 enhancing after ``LabelToIndex``).
        num_classes: number of classes including background.
        class_names: optional names of the classes ``1..num_classes-1`` used as keys; default ``"1"``, ``"2"``...

    Returns:
        JSON-able dict:
        ``num_samples``; ``tumour_area_mean`` and ``tumour_area_sd`` (pixels/voxels of any tumour class
        per map, over all maps including empty ones; population sd, ddof=0); ``class_area_mean`` (mean
        pixels per map of each class); ``class_proportions`` (share of each class among all tumour
        pixels of the set; all 0 if the set has no tumour); ``empty_fraction`` (share of maps without
        tumour).

    Raises:
        ValueError: not ``(N, 1, *spatial)``, non-integer values, or indices outside ``[0, num_classes)``.
    """
    labels = _check_labels(labels, num_classes)
    names = [str(k) for k in range(1, num_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != num_classes - 1:
        raise ValueError(f"class_names needs {num_classes - 1} names (classes 1..{num_classes - 1}), got {len(names)}")
    flat = labels.flatten(1)
    counts = torch.stack([(flat == k).sum(dim=1) for k in range(1, num_classes)], dim=1).double()  # (N, K-1)
    area = counts.sum(dim=1)
    total = float(area.sum())
    proportions = counts.sum(dim=0) / total if total > 0 else torch.zeros(num_classes - 1, dtype=torch.double)
    return {
        "num_samples": int(labels.shape[0]),
        "tumour_area_mean": float(area.mean()),
        "tumour_area_sd": float(area.std(unbiased=False)),
        "class_area_mean": {n: float(c) for n, c in zip(names, counts.mean(dim=0))},
        "class_proportions": {n: float(p) for n, p in zip(names, proportions)},
        "empty_fraction": float((area == 0).double().mean()),
    }


def compare_label_statistics(
    synthetic: torch.Tensor, real: torch.Tensor, num_classes: int, class_names: Sequence[str] | None = None
) -> dict:
    """Label statistics of synthetic and real label maps side by side, with their differences.

    Args:
        synthetic: synthetic class-index maps ``(N, 1, *spatial)``.
        real: real class-index maps ``(M, 1, *spatial)`` (e.g. the training slice(s)).
        num_classes: number of classes including background.
        class_names: optional names of classes ``1..num_classes-1``.

    Returns:
        ``{"synthetic": stats, "real": stats, "tumour_area_ratio": synthetic/real mean area (inf if the
        real maps are empty and the synthetic ones are not, nan if both are empty),
        "class_proportion_tv": total-variation distance between the class-proportion vectors
        (0 = same mix of classes, 1 = disjoint), "class_proportion_difference": per class synthetic - real,
        "empty_fraction_difference": synthetic - real}``.
    """
    syn = label_statistics(synthetic, num_classes, class_names)
    ref = label_statistics(real, num_classes, class_names)
    if ref["tumour_area_mean"] > 0:
        ratio = syn["tumour_area_mean"] / ref["tumour_area_mean"]
    else:
        ratio = float("inf") if syn["tumour_area_mean"] > 0 else float("nan")
    diff = {n: syn["class_proportions"][n] - ref["class_proportions"][n] for n in syn["class_proportions"]}
    return {
        "synthetic": syn,
        "real": ref,
        "tumour_area_ratio": ratio,
        "class_proportion_tv": 0.5 * sum(abs(d) for d in diff.values()),
        "class_proportion_difference": diff,
        "empty_fraction_difference": syn["empty_fraction"] - ref["empty_fraction"],
    }
