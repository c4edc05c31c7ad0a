"""Quality and privacy of a synthetic training set: fidelity, diversity, memorisation and label statistics."""

from __future__ import annotations

import math
from typing import Any

import torch

from monai_singanseg.evaluation.settings import ExperimentSettings
from monai_singanseg.evaluation.slice_sets import SliceSet
from monai_singanseg.evaluation.volumes import CaseSlices
from monai_singanseg.metrics.diversity import diversity
from monai_singanseg.metrics.label_stats import compare_label_statistics
from monai_singanseg.metrics.memorisation import flag_memorised, memorisation_scores
from monai_singanseg.metrics.swd import sliced_wasserstein_distance

__all__ = ["synthetic_quality", "quality_of_sets"]


def synthetic_quality(
    synthetic: SliceSet,
    real_train: SliceSet,
    num_classes: int,
    settings: ExperimentSettings,
    seed: int = 0,
    held_out_max: float | None = None,
) -> dict[str, Any]:
    """Fidelity, diversity, memorisation and label statistics of a synthetic set against the real training slices.

    Memorisation compares every sample with ALL real training slices (image + label channels); samples
    whose nearest-neighbour correlation exceeds ``settings.memorisation_threshold`` are listed. With
    ``held_out_max`` (the highest nearest-neighbour correlation of an unseen patient's slices against the same
    training slices), ``memorisation["share_closer_than_held_out"]`` is the share of samples closer to a training
    slice than any slice of that other patient is.
    """
    syn, ref = synthetic.gan_tensor(num_classes), real_train.gan_tensor(num_classes)
    nearest = memorisation_scores(syn, ref)
    flags = flag_memorised(nearest, settings.memorisation_threshold)
    n_div = settings.diversity_samples
    return {
        "num_samples": len(synthetic),
        "swd": sliced_wasserstein_distance(ref, syn, num_projections=settings.swd_projections, seed=seed),
        "diversity": diversity(syn[:n_div]) if len(synthetic) > 1 else math.nan,
        "real_diversity": diversity(ref[:n_div]) if len(real_train) > 1 else math.nan,
        "memorisation": {
            "threshold": settings.memorisation_threshold,
            "mean": float(nearest.scores.mean()),
            "max": float(nearest.scores.max()),
            "num_flagged": int(flags.sum()),
            "share_closer_than_held_out": None
            if held_out_max is None
            else float((nearest.scores > held_out_max).float().mean()),
            "flagged": [
                {
                    "sample": synthetic.names[i],
                    "nearest_real": real_train.names[int(nearest.indices[i])],
                    "score": float(nearest.scores[i]),
                }
                for i in torch.nonzero(flags).flatten().tolist()
            ],
        },
        "labels": compare_label_statistics(synthetic.labels, real_train.labels, num_classes),
    }


def quality_of_sets(
    synthetic: dict[str, SliceSet],
    real_tumour: SliceSet,
    test: CaseSlices,
    num_classes: int,
    settings: ExperimentSettings,
) -> dict[str, Any]:
    """:func:`synthetic_quality` of every synthetic set, with the held-out case's own tumour slices as the privacy
    baseline (their nearest-neighbour correlation against the same real training slices; None for a test case
    without tumour)."""
    test_tumour = test.tumour()
    if not test_tumour:  # a test case without tumour: no privacy baseline
        held_out, baseline = None, None
    else:
        held_out = memorisation_scores(
            SliceSet(test.images[test_tumour], test.labels[test_tumour], test.names(test_tumour)).gan_tensor(
                num_classes
            ),
            real_tumour.gan_tensor(num_classes),
        ).scores
        baseline = float(held_out.max())
    quality: dict[str, Any] = {
        name: synthetic_quality(s, real_tumour, num_classes, settings, held_out_max=baseline)
        for name, s in synthetic.items()
    }
    quality["held_out_real_baseline"] = {
        "memorisation_mean": None if held_out is None else float(held_out.mean()),
        "memorisation_max": baseline,
    }
    return quality
