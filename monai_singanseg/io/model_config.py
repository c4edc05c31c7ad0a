"""The typed, versioned configuration stored in a model file: one dataclass per model kind.

A model file (:mod:`monai_singanseg.io.modelfile`) stores its config as a plain JSON-able dict;
:func:`config_from_dict` is the one function that turns it into a :class:`SinGANSegModelConfig` or a
:class:`Pix2PixModelConfig` (checking types and every string that becomes part of a file name), and
``to_dict`` writes it back. Files written before configs carried a ``config_version`` are version 1, the
layout of these dataclasses, and load unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monai_singanseg.io.names import check_name
from monai_singanseg.options import jsonable

__all__ = [
    "ModelConfig",
    "SinGANSegModelConfig",
    "Pix2PixModelConfig",
    "ConditionConfig",
    "MODEL_CONFIGS",
    "SINGANSEG_KIND",
    "PIX2PIX_KIND",
    "ModelConfigError",
    "config_from_dict",
]

SINGANSEG_KIND = "singanseg"
PIX2PIX_KIND = "pix2pix"


class ModelConfigError(ValueError):
    """A model file's config is missing a field, has a field of the wrong type, or an unsafe name."""


def _fail(kind: str, key: str, value: Any, wanted: str) -> ModelConfigError:
    return ModelConfigError(f"{kind} model config: {key}={value!r} is not {wanted}")


def _int(kind: str, key: str, value: Any, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise _fail(kind, key, value, f"an integer{'' if low is None else f' >= {low}'}")
    return int(value)


def _float(kind: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise _fail(kind, key, value, "a finite number")
    return float(value)


def _list(kind: str, key: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise _fail(kind, key, value, "a list")
    return list(value)


def _names(kind: str, key: str, value: Any) -> list[str]:
    return [check_name(v, f"{kind} model config: {key}") for v in _list(kind, key, value)]


def _ints(kind: str, key: str, value: Any, low: int | None = None) -> list[int]:
    return [_int(kind, key, v, low) for v in _list(kind, key, value)]


@dataclass(kw_only=True)
class ModelConfig:
    """Fields every model kind shares.

    Args:
        inference_only: a copy holding only what inference needs (trainers refuse to resume from it).
        extra: fields of the stored dict that this version does not know (kept, written back unchanged).
    """

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    #: stored keys that are derived from other fields (read, not kept).
    DERIVED: ClassVar[tuple[str, ...]] = ()

    inference_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict stored in the model file (with ``config_version``)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **jsonable(d), "config_version": self.VERSION}

    def validate(self) -> None:
        """Check field types and names; raise :class:`ModelConfigError`."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        """The config of a stored dict (unknown keys go to ``extra``).

        Raises:
            ModelConfigError: a required field is missing, a field has the wrong type, or the version is newer.
        """
        if not isinstance(d, Mapping):
            raise ModelConfigError(f"{cls.KIND} model config is not a dictionary")
        version = d.get("config_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= cls.VERSION:
            raise ModelConfigError(f"{cls.KIND} model config version {version!r} is not supported (1..{cls.VERSION})")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ]
        missing = [n for n in required if n not in d]
        if missing:
            raise ModelConfigError(f"{cls.KIND} model config lacks {', '.join(missing)} (not a complete model file)")
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k not in ("config_version", *cls.DERIVED)}
        try:
            config = cls(**known, extra=extra)
        except TypeError as exc:
            raise ModelConfigError(f"{cls.KIND} model config: {exc}") from None
        try:
            config.validate()
        except ModelConfigError:
            raise
        except ValueError as exc:  # an unsafe name
            raise ModelConfigError(str(exc)) from None
        return config


def _affine(kind: str, name: str, value: Any) -> list[list[float]]:
    """A 4x4 matrix of floats, or a :class:`ModelConfigError` naming the field."""
    rows = _list(kind, name, value)
    if len(rows) != 4 or any(len(_list(kind, name, r)) != 4 for r in rows):
        raise _fail(kind, name, value, "a 4x4 matrix")
    return [[_float(kind, name, v) for v in r] for r in rows]


@dataclass(kw_only=True)
class SinGANSegModelConfig(ModelConfig):
    """A SinGAN-Seg model: the pyramid's layout, its training state and what sampling needs to write cases.

    Args:
        spatial_dims: 2 (slices) or 3 (volumes).
        channels: channels of the GAN tensor (image channels + tumour classes).
        num_image_channels: image channels (the rest are one-hot label channels).
        scale_sizes: spatial size of every scale, coarse to fine.
        features: feature width of every scale's generator.
        num_layers: convolutions per generator.
        pad_as_background: the networks' input is shifted by +1 so that zero padding reads as background (False in
            model files written before the option existed).
        noise_amplitudes: noise amplitude of every trained scale.
        finished_scales: scales trained so far.
        num_scales: scales in all.
        complete: training finished.
        training: the training settings (:class:`~monai_singanseg.engines.singanseg.SinGANSegSettings` as a dict).
        train_seconds: training time so far.
        image_channels: names of the image channels (file-name parts of written cases).
        label_values: label values, background first.
        intensity_stats: :class:`~monai_singanseg.transforms.intensity.IntensityStats` of the source, as a dict.
        input_kind: ``"volume"`` (MR slices) or ``"rgb"`` (a 2D picture with a mask).
        use_foreground: intensity statistics were computed inside the foreground.
        source_name: name of the training case (part of written case names).
        source_files: the training files.
        source_slice_index: the axial slice of the volume (None: a 2D picture).
        source_affine: 4x4 affine of the training slice.
        source_size: spatial size of the training slice before resizing to the finest scale.
        source_grid_shape: spatial shape of the whole source volume (3D models: where ``--paste`` puts samples).
        source_grid_affine: 4x4 affine of the whole source volume (3D models).
        data_hash: SHA-256 of the training tensor (a resumed run must train on the same data).
    """

    KIND: ClassVar[str] = SINGANSEG_KIND
    DERIVED: ClassVar[tuple[str, ...]] = ("num_label_channels",)

    spatial_dims: int
    channels: int
    num_image_channels: int
    scale_sizes: list[list[int]]
    features: list[int]
    num_layers: int
    pad_as_background: bool = False
    noise_amplitudes: list[float]
    finished_scales: int
    num_scales: int
    complete: bool = False
    training: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    image_channels: list[str]
    label_values: list[int]
    intensity_stats: dict[str, Any]
    input_kind: str = "volume"
    use_foreground: bool = True
    source_name: str = "singanseg"
    source_files: list[str] = field(default_factory=list)
    source_slice_index: int | None = None
    source_affine: list[list[float]] = field(
        default_factory=lambda: [[float(i == j) for j in range(4)] for i in range(4)]
    )
    source_size: list[int] = field(default_factory=list)
    source_grid_shape: list[int] | None = None
    source_grid_affine: list[list[float]] | None = None
    data_hash: str | None = None

    @property
    def num_label_channels(self) -> int:
        """One-hot tumour-class channels (background dropped)."""
        return len(self.label_values) - 1

    @property
    def rgb(self) -> bool:
        """The model learnt an RGB picture (cases are written as PNG image + mask)."""
        return self.input_kind == "rgb"

    def validate(self) -> None:
        k = self.KIND
        self.spatial_dims = _int(k, "spatial_dims", self.spatial_dims, 2)
        if self.spatial_dims > 3:
            raise _fail(k, "spatial_dims", self.spatial_dims, "2 or 3")
        self.channels = _int(k, "channels", self.channels, 1)
        self.num_image_channels = _int(k, "num_image_channels", self.num_image_channels, 1)
        self.scale_sizes = [_ints(k, "scale_sizes", s, 1) for s in _list(k, "scale_sizes", self.scale_sizes)]
        if any(len(s) != self.spatial_dims for s in self.scale_sizes):
            raise _fail(k, "scale_sizes", self.scale_sizes, f"a list of {self.spatial_dims}-entry sizes")
        self.features = _ints(k, "features", self.features, 1)
        self.num_layers = _int(k, "num_layers", self.num_layers, 1)
        if not isinstance(self.pad_as_background, bool):
            raise _fail(k, "pad_as_background", self.pad_as_background, "true or false")
        self.noise_amplitudes = [
            _float(k, "noise_amplitudes", a) for a in _list(k, "noise_amplitudes", self.noise_amplitudes)
        ]
        self.finished_scales = _int(k, "finished_scales", self.finished_scales, 0)
        self.num_scales = _int(k, "num_scales", self.num_scales, 0)
        if not self.finished_scales <= min(self.num_scales, len(self.scale_sizes), len(self.features)):
            raise _fail(k, "finished_scales", self.finished_scales, "at most the number of scales")
        if len(self.noise_amplitudes) < self.finished_scales:
            raise _fail(k, "noise_amplitudes", self.noise_amplitudes, "one amplitude per trained scale")
        self.label_values = _ints(k, "label_values", self.label_values, 0)
        if len(self.label_values) < 2 or self.num_image_channels + len(self.label_values) - 1 != self.channels:
            raise _fail(
                k, "label_values", self.label_values, f"background + {self.channels - self.num_image_channels} classes"
            )
        self.image_channels = _names(k, "image_channels", self.image_channels)
        if len(self.image_channels) != self.num_image_channels:
            raise _fail(k, "image_channels", self.image_channels, f"{self.num_image_channels} names")
        self.source_name = check_name(self.source_name, f"{k} model config: source_name")
        if self.input_kind not in ("volume", "rgb"):
            raise _fail(k, "input_kind", self.input_kind, "'volume' or 'rgb'")
        if not isinstance(self.training, Mapping) or not isinstance(self.intensity_stats, Mapping):
            raise _fail(k, "training/intensity_stats", type(self.training).__name__, "a dictionary")
        if self.source_slice_index is not None:
            self.source_slice_index = _int(k, "source_slice_index", self.source_slice_index, 0)
        self.source_affine = _affine(k, "source_affine", self.source_affine)
        if (self.source_grid_shape is None) != (self.source_grid_affine is None):
            raise _fail(k, "source_grid_shape/source_grid_affine", self.source_grid_shape, "both or neither")
        if self.source_grid_shape is not None:
            self.source_grid_shape = _ints(k, "source_grid_shape", self.source_grid_shape, 1)
            if len(self.source_grid_shape) != self.spatial_dims:
                raise _fail(k, "source_grid_shape", self.source_grid_shape, f"{self.spatial_dims} sizes")
            self.source_grid_affine = _affine(k, "source_grid_affine", self.source_grid_affine)


@dataclass
class ConditionConfig:
    """What a pix2pix condition holds.

    Args:
        channels: channel names (brain, tumour classes, tissue classes).
        label_values: label values, background first.
        tissue_classes: tissue channels (0: none).
        tissue_modality: the modality clustered into tissue classes.
        tissue_method: how the tissue classes were computed (documentation).
    """

    channels: list[str] = field(default_factory=list)
    label_values: list[int] = field(default_factory=lambda: [0, 1, 2, 4])
    tissue_classes: int = 0
    tissue_modality: str | None = None
    tissue_method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return jsonable(self)


@dataclass(kw_only=True)
class Pix2PixModelConfig(ModelConfig):
    """A pix2pix model: generator layout, the condition it reads, the intensity range it renders in.

    Args:
        size: working resolution of the generator.
        generator_channels: ``ngf``.
        critic_channels: ``ndf``.
        dropout: dropout of the innermost decoder blocks.
        norm: normalisation layer name.
        margin: background voxels around the brain's in-plane box.
        modalities: names of the rendered channels (file-name parts of written cases).
        condition: the condition's layout.
        intensity_stats: the rendering range (per-modality mean of the training cases').
        case_intensity_stats: each training case's own range.
        training_cases: names of the training cases.
        num_slices: training slices.
        settings: the training settings (:class:`~monai_singanseg.engines.pix2pix.Pix2PixSettings` as a dict).
        epochs_done: epochs trained so far.
        history: per-epoch losses.
        data_hash: SHA-256 of the training slices (a resumed run must train on the same data).
        upsample: the generator's decoder upsampling (``"resize"`` or ``"transposed"``; files written before
            the resize decoder have none and load as ``"transposed"``).
        context_slices: neighbouring slices on each side whose condition the generator also reads (0: 2D).
        critic_scales: critics of the multi-scale critic (training only).
        architecture: the generator, ``"unet"`` (files written before SPADE have none) or ``"spade"``.
        style_channels: length of a SPADE generator's appearance code (0: none).
        noise: a SPADE generator with per-pixel noise inputs (files written before them have none).
        generator_max_channels: a SPADE generator's widest feature map.
    """

    KIND: ClassVar[str] = PIX2PIX_KIND

    size: int
    generator_channels: int
    critic_channels: int = 32
    dropout: float = 0.5
    norm: str = "INSTANCE"
    margin: int = 4
    modalities: list[str]
    condition: ConditionConfig
    intensity_stats: dict[str, Any]
    case_intensity_stats: dict[str, Any] = field(default_factory=dict)
    training_cases: list[str] = field(default_factory=list)
    num_slices: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    epochs_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    data_hash: str | None = None
    upsample: str = "transposed"
    context_slices: int = 0
    critic_scales: int = 1
    architecture: str = "unet"
    style_channels: int = 0
    noise: bool = False
    generator_max_channels: int = 256

    @property
    def generator_in_channels(self) -> int:
        """Condition channels the generator reads: the slice's and its context slices'."""
        return len(self.condition.channels) * (2 * self.context_slices + 1)

    @property
    def label_values(self) -> list[int]:
        """The condition's label values."""
        return list(self.condition.label_values)

    @property
    def tissue_channel(self) -> int | None:
        """Index of the tissue modality among :attr:`modalities` (None: no tissue classes)."""
        if not self.condition.tissue_classes:
            return None
        if self.condition.tissue_modality not in self.modalities:
            raise _fail(
                self.KIND, "condition.tissue_modality", self.condition.tissue_modality, f"one of {self.modalities}"
            )
        return self.modalities.index(str(self.condition.tissue_modality))

    def validate(self) -> None:
        k = self.KIND
        if isinstance(self.condition, Mapping):
            names = {f.name for f in dataclasses.fields(ConditionConfig)}
            self.condition = ConditionConfig(**{n: v for n, v in self.condition.items() if n in names})
        self.size = _int(k, "size", self.size, 1)
        self.generator_channels = _int(k, "generator_channels", self.generator_channels, 1)
        self.critic_channels = _int(k, "critic_channels", self.critic_channels, 1)
        self.margin = _int(k, "margin", self.margin, 0)
        self.dropout = _float(k, "dropout", self.dropout)
        self.context_slices = _int(k, "context_slices", self.context_slices, 0)
        self.critic_scales = _int(k, "critic_scales", self.critic_scales, 1)
        self.modalities = _names(k, "modalities", self.modalities)
        if not self.modalities:
            raise _fail(k, "modalities", self.modalities, "at least one modality name")
        c = self.condition
        c.label_values = _ints(k, "condition.label_values", c.label_values, 0)
        c.tissue_classes = _int(k, "condition.tissue_classes", c.tissue_classes, 0)
        if not isinstance(c.channels, (list, tuple)) or not all(isinstance(n, str) for n in c.channels):
            raise _fail(k, "condition.channels", c.channels, "a list of channel names")
        if not isinstance(self.intensity_stats, Mapping):
            raise _fail(k, "intensity_stats", self.intensity_stats, "a dictionary")
        self.training_cases = [str(n) for n in _list(k, "training_cases", self.training_cases)]
        self.epochs_done = _int(k, "epochs_done", self.epochs_done, 0)
        self.tissue_channel  # noqa: B018 - checks the tissue modality


#: model kind -> its config class.
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {SINGANSEG_KIND: SinGANSegModelConfig, PIX2PIX_KIND: Pix2PixModelConfig}


def config_from_dict(kind: str, d: Mapping[str, Any]) -> ModelConfig:
    """The typed config of model kind ``kind`` from its stored dict (the one place configs are read).

    Raises:
        ModelConfigError: unknown kind, or a config that does not describe a usable model.
    """
    if kind not in MODEL_CONFIGS:
        raise ModelConfigError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[kind].from_dict(d)
