"""SinGAN-Seg model files as checkpoints: a new model's config, the resume check, and the rewrite after every scale."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.engines.common import tensor_digest
from monai_singanseg.engines.singanseg.settings import MODEL_KIND, RESUME_KEYS, SinGANSegSettings
from monai_singanseg.io.model_config import SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.singan import SinGANCritic, SinGANPyramid

__all__ = ["ModelInTraining", "new_model_config", "recorded_training", "load_checkpoint", "save_checkpoints"]


@dataclass
class ModelInTraining:
    """What belongs to one model of a batch while it trains: its seed, file, config, networks and random stream."""

    seed: int
    out: Path
    config: SinGANSegModelConfig
    pyramid: SinGANPyramid
    rec_noise: torch.Tensor
    critic: SinGANCritic | None = None
    critic_state: dict[str, torch.Tensor] | None = None
    stream: torch.Generator | None = None


def new_model_config(
    settings: SinGANSegSettings,
    real: torch.Tensor,
    metadata: dict[str, Any],
    sizes: list[list[int]],
    features: list[int],
    seed: int,
) -> SinGANSegModelConfig:
    """The config of a new model of ``real`` trained with ``settings`` and ``seed`` (no scale finished yet).

    Missing metadata gets neutral defaults: ``ch<i>`` channel names, labels ``0..K-1``, statistics of [-1, 1].
    """
    meta = dict(metadata)
    meta.pop("num_label_channels", None)
    n_img = int(meta.get("num_image_channels", len(meta.get("image_channels", [])) or real.shape[0] - 1))
    meta.update(num_image_channels=n_img)
    meta.setdefault("image_channels", [f"ch{i}" for i in range(n_img)])
    meta.setdefault("label_values", list(range(int(real.shape[0]) - n_img + 1)))
    meta.setdefault("intensity_stats", {"low": [-1.0] * n_img, "high": [1.0] * n_img})
    settings = dataclasses.replace(settings, seed=seed)
    config = SinGANSegModelConfig(
        **meta,
        spatial_dims=real.ndim - 1,
        channels=int(real.shape[0]),
        scale_sizes=sizes,
        features=features,
        num_layers=settings.num_layers,
        pad_as_background=settings.pad_as_background,
        noise_amplitudes=[],
        finished_scales=0,
        num_scales=len(sizes),
        training=settings.to_dict(),
        data_hash=tensor_digest(real),
    )
    config.validate()
    return config


def recorded_training(config: SinGANSegModelConfig) -> dict[str, Any]:
    """The training settings a model file was trained with: its recorded ones, and for settings added after it was
    written, what files written before them did (coarsest iterations = ``iters``, no label-area loss, no input
    shift)."""
    training = dict(config.training)
    training.setdefault("coarsest_iters", training.get("iters"))
    training.setdefault("label_area_weight", 0.0)
    training.setdefault("pad_as_background", config.pad_as_background)
    return training


def load_checkpoint(
    seed: int, path: Path, config: SinGANSegModelConfig, pyramid: SinGANPyramid, device: torch.device
) -> ModelInTraining:
    """The model as ``path`` holds it, after checking it is this run's (same data, layout and settings)."""
    model = load_model_file(path, expected_kind=MODEL_KIND)
    old: SinGANSegModelConfig = model.config
    if old.inference_only:
        raise ModelFileError(f"{path}: an inference-only copy (no critic state) cannot be resumed")
    for key in ("channels", "num_image_channels", "scale_sizes", "spatial_dims"):
        if getattr(old, key) != getattr(config, key):
            raise ModelFileError(
                f"{path}: cannot resume: its {key} {getattr(old, key)} differs from this run's "
                f"{getattr(config, key)} "
                "(pass --overwrite to start afresh)"
            )
    if old.data_hash is not None and old.data_hash != config.data_hash:
        raise ModelFileError(
            f"{path}: cannot resume: it was trained on other data ({old.source_name}, training tensor "
            f"sha256 {old.data_hash[:12]}...) than this run's ({config.source_name}, "
            f"{str(config.data_hash)[:12]}...); "
            "pass the same inputs, or --overwrite to start afresh"
        )
    old_train, new_train = recorded_training(old), config.training
    for key in RESUME_KEYS:
        if old_train.get(key) != new_train.get(key):
            raise ModelFileError(
                f"{path}: cannot resume: training setting {key}={old_train.get(key)} differs from this run's "
                f"{new_train.get(key)} (pass --overwrite to start afresh)"
            )
    for f in old.features[: old.finished_scales]:
        pyramid.add_scale(f)
    pyramid.load_state_dict(model.state["generator"])
    pyramid.to(device)
    for key in ("noise_amplitudes", "finished_scales", "complete", "train_seconds"):
        setattr(config, key, getattr(old, key))
    rec_noise = model.tensors["reconstruction_noise"].to(device)
    return ModelInTraining(seed, path, config, pyramid, rec_noise, critic_state=model.state.get("critic") or None)


def save_checkpoints(models: list[ModelInTraining], k: int, num_scales: int, seconds: float) -> None:
    """Rewrite every model file after scale ``k`` (``train_seconds`` counts the batch's wall time)."""
    for model in models:
        config = model.config
        config.finished_scales = k + 1
        config.complete = k + 1 == num_scales
        config.train_seconds = float(config.train_seconds) + seconds
        state = {"generator": model.pyramid.state_dict(), "critic": model.critic_state or {}}
        save_model_file(model.out, config, state, {"reconstruction_noise": model.rec_noise})
