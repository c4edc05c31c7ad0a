"""pix2pix model files as checkpoints: a run's model config, optimiser states in the file, and the resume checks."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from monai_singanseg.engines.common import tensor_digest
from monai_singanseg.engines.pix2pix.data import Pix2PixSlices
from monai_singanseg.engines.pix2pix.settings import SETTINGS_BEFORE_FIDELITY, SETTINGS_BEFORE_SPADE, Pix2PixSettings
from monai_singanseg.io.model_config import PIX2PIX_KIND, ConditionConfig, Pix2PixModelConfig
from monai_singanseg.io.modelfile import ModelFile, ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.pix2pix import max_critic_scales
from monai_singanseg.transforms.condition.array import condition_channel_names
from monai_singanseg.transforms.intensity.array import IntensityStats

__all__ = [
    "recorded_settings",
    "TrainingState",
    "new_model_config",
    "flatten_optimizer",
    "restore_optimizer",
    "resume_settings",
    "check_not_inference_copy",
    "check_resumable",
]


def _merged_stats(stats: Sequence[IntensityStats], dtype: str) -> IntensityStats:
    """The rendering range: the per-modality mean of the training cases' ranges."""
    n = len(stats)
    low = [sum(s.low[c] for s in stats) / n for c in range(len(stats[0].low))]
    high = [sum(s.high[c] for s in stats) / n for c in range(len(stats[0].high))]
    background = [sum(s.background[c] for s in stats) / n for c in range(len(stats[0].background))]
    return IntensityStats(low=low, high=high, dtype=dtype, background=background)


def flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """The optimiser's state as flat named tensors ``<prefix>.<param id>.<key>`` (a model file holds tensors)."""
    out = {}
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Load the state :func:`flatten_optimizer` wrote under ``prefix`` into ``opt``."""
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def new_model_config(settings: Pix2PixSettings, data: Pix2PixSlices) -> Pix2PixModelConfig:
    """The model config of a run of ``settings`` on ``data`` (nothing trained yet)."""
    tissue = settings.tissue_classes
    return Pix2PixModelConfig(
        size=settings.size,
        generator_channels=settings.generator_channels,
        critic_channels=settings.critic_channels,
        dropout=settings.dropout,
        norm="INSTANCE",
        margin=settings.margin,
        modalities=list(data.modalities),
        condition=ConditionConfig(
            channels=condition_channel_names(data.label_values, tissue),
            label_values=[int(v) for v in data.label_values],
            tissue_classes=tissue,
            tissue_modality=settings.tissue_modality if tissue else None,
            tissue_method="1D k-means inside the brain, tumour excluded, classes sorted dark to bright"
            if tissue
            else None,
        ),
        intensity_stats=_merged_stats(data.stats, data.source_dtype).to_dict(),
        case_intensity_stats={n: s.to_dict() for n, s in zip(data.names, data.stats)},
        training_cases=list(data.names),
        num_slices=int(data.condition.shape[0]),
        settings=asdict(settings),
        data_hash=tensor_digest(data.condition, data.image),
        upsample=settings.upsample,
        context_slices=settings.context_slices,
        critic_scales=min(settings.critic_scales, max_critic_scales(settings.size)),
        architecture=settings.architecture,
        style_channels=int(settings.style_channels or 0),
        noise=settings.noise,
    )


def resume_settings(out: str | os.PathLike, settings: Pix2PixSettings | None = None) -> Pix2PixSettings | None:
    """The settings a resumed run of ``out`` trains with (the checkpoint's; ``settings.epochs`` may extend them).

    Returns None when ``out`` does not exist (the run starts afresh with ``settings``). Prepare the slices
    with the returned settings, then call :func:`~monai_singanseg.engines.pix2pix.train_pix2pix` with ``resume=True``.

    Raises:
        ModelFileError: ``out`` is not a pix2pix model file, or an inference-only copy.
    """
    if not Path(out).exists():
        return None
    resumed = load_model_file(out, expected_kind=PIX2PIX_KIND)
    check_not_inference_copy(Path(out), resumed.config)
    saved = recorded_settings(resumed.config)
    if settings is not None:
        saved.epochs = max(settings.epochs, saved.epochs)  # resuming may extend training
    return saved


def recorded_settings(config: Pix2PixModelConfig) -> Pix2PixSettings:
    """The settings a model file was trained with: its recorded ones, and for settings added after it was written,
    the values it was trained with (:data:`SETTINGS_BEFORE_FIDELITY`, :data:`SETTINGS_BEFORE_SPADE`)."""
    return Pix2PixSettings(**{**SETTINGS_BEFORE_FIDELITY, **SETTINGS_BEFORE_SPADE, **config.settings})


def check_not_inference_copy(out: Path, config: Pix2PixModelConfig) -> None:
    """Raise :class:`ModelFileError` if ``out`` is an inference-only copy (no critic or optimiser state)."""
    if config.inference_only:
        raise ModelFileError(f"{out}: an inference-only copy (no critic or optimiser state) cannot be resumed")


def check_resumable(out: Path, old: Pix2PixModelConfig, config: Pix2PixModelConfig) -> None:
    """Raise :class:`ModelFileError` unless the checkpoint ``out`` can continue a run on this data."""
    check_not_inference_copy(out, old)
    if old.condition.channels != config.condition.channels:
        raise ModelFileError(f"{out}: cannot resume, the saved condition channels differ from the data's")
    if old.data_hash is not None and old.data_hash != config.data_hash:
        raise ModelFileError(
            f"{out}: cannot resume: it was trained on other data (cases {', '.join(old.training_cases)}) than this "
            f"run's (cases {', '.join(config.training_cases)}) or with other slice settings; pass the same data, or "
            "--overwrite to start afresh"
        )


@dataclass
class TrainingState:
    """What a pix2pix run's model file holds besides its config: the networks, the optimisers and the random streams.

    Args:
        out: the model file.
        config: the run's model config (``epochs_done`` and ``history`` are updated at every save).
        generator: the generator.
        critic: the critic.
        opt_g: the generator's optimiser.
        opt_d: the critic's optimiser.
        augment: the augmentation's (and the epoch order's) random stream.
        random_state: the run's private torch stream (dropout) as it starts.
        epochs_done: epochs already trained (a resumed run's).
        history: per-epoch loss records so far.
    """

    out: Path
    config: Pix2PixModelConfig
    generator: torch.nn.Module
    critic: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    augment: torch.Generator
    random_state: torch.Tensor
    epochs_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def restore(self, resumed: ModelFile) -> None:
        """Continue from a checkpoint: weights, optimiser states, random streams, epochs done and loss history."""
        self.generator.load_state_dict(resumed.state["generator"])
        self.critic.load_state_dict(resumed.state["critic"])
        restore_optimizer(self.opt_g, resumed.tensors, "opt_g")
        restore_optimizer(self.opt_d, resumed.tensors, "opt_d")
        self.augment.set_state(resumed.tensors["rng.augment"])
        self.random_state = resumed.tensors["rng.torch"]
        self.epochs_done = resumed.config.epochs_done
        self.history = list(resumed.config.history)

    def save(self, epochs_done: int, history: list[dict[str, float]]) -> None:
        """Rewrite the model file atomically; called inside the run, so torch's stream is the run's own."""
        self.config.epochs_done = epochs_done
        self.config.history = history
        tensors = {**flatten_optimizer(self.opt_g, "opt_g"), **flatten_optimizer(self.opt_d, "opt_d")}
        tensors["rng.augment"] = self.augment.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        weights = {"generator": self.generator.state_dict(), "critic": self.critic.state_dict()}
        save_model_file(self.out, self.config, weights, tensors)
