"""Memorisation check: nearest real neighbour of each synthetic sample by normalised cross-correlation.

A generator that copies its training data produces samples that correlate almost perfectly with one
training image. Akbar et al. (2024) use the maximum normalised cross-correlation between a synthetic
image and the training images to detect such copies; here each sample is compared with every
reference (e.g. all real training slices) and the best match is reported.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["NearestReference", "memorisation_scores", "flag_memorised"]


class NearestReference(NamedTuple):
    """Result of :func:`memorisation_scores`.

    Attributes:
        scores: ``(N,)`` maximum Pearson correlation of each sample with any reference, in [-1, 1].
        indices: ``(N,)`` index of the reference reaching that maximum.
    """

    scores: torch.Tensor
    indices: torch.Tensor


def _standardise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Flatten each item and scale it to zero mean and unit norm; a constant item becomes all zeros."""
    flat = x.flatten(1).double()
    flat = flat - flat.mean(dim=1, keepdim=True)
    norm = flat.norm(dim=1, keepdim=True)
    return torch.where(norm > eps, flat / norm.clamp_min(eps), torch.zeros_like(flat))


def memorisation_scores(
    samples: torch.Tensor, references: torch.Tensor, batch_size: int = 64, eps: float = 1e-8
) -> NearestReference:
    """Nearest-neighbour normalised cross-correlation of every sample against every reference.

    ``NCC(x, r) = sum((x - mean x)(r - mean r)) / (||x - mean x|| ||r - mean r||)``: the Pearson
    correlation over all pixels and channels. 1 means ``x`` is ``r`` up to a global gain and offset.
    An item with no variation (a constant image) correlates 0 with everything.

    Args:
        samples: synthetic items ``(N, C, *spatial)``.
        references: real items ``(M, C, *spatial)`` with the same channel and spatial shape, e.g. every
            real training slice.
        batch_size: references compared at once (memory: ``batch_size`` x one item, in float64).
        eps: norms below this count as a constant item.

    Returns:
        :class:`NearestReference` ``(scores, indices)``, each ``(N,)``.

    Raises:
        ValueError: empty inputs, item shapes that differ, or NaN/Inf values.
    """
    for name, x in (("samples", samples), ("references", references)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty tensor (N, C, *spatial)")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} hold NaN or infinite values")
    if samples.shape[1:] != references.shape[1:]:
        raise ValueError(
            f"samples {tuple(samples.shape[1:])} and references {tuple(references.shape[1:])} must have the same "
            "(C, *spatial) shape; resample them to a common size first"
        )
    with torch.no_grad():
        s = _standardise(samples, eps)
        best = torch.full((s.shape[0],), -torch.inf, dtype=s.dtype, device=s.device)
        best_index = torch.zeros(s.shape[0], dtype=torch.long, device=s.device)
        for start in range(0, references.shape[0], batch_size):
            r = _standardise(references[start : start + batch_size].to(s.device), eps)
            score, index = (s @ r.T).max(dim=1)
            better = score > best
            best = torch.where(better, score, best)
            best_index = torch.where(better, index + start, best_index)
    return NearestReference(best.clamp(-1.0, 1.0).float(), best_index)


def flag_memorised(scores: torch.Tensor | NearestReference, threshold: float = 0.95) -> torch.Tensor:
    """Boolean ``(N,)``: which samples correlate above ``threshold`` with some reference.

    Args:
        scores: the ``scores`` of :func:`memorisation_scores`, or its whole result.
        threshold: correlation above which a sample counts as a (near-)copy of a reference.

    Returns:
        ``scores > threshold``.
    """
    if isinstance(scores, NearestReference):
        scores = scores.scores
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [-1, 1], got {threshold}")
    return scores > threshold
