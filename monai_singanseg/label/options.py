"""The MONAI Label app's settings, read from ``monailabel start_server ... --conf KEY VALUE``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.farm.settings import DatasetSettings
from monai_singanseg.options import flag_of, int_in, option_fields, option_help, value_parser
from monai_singanseg.synthesis import default_max_size
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES

__all__ = ["CONF_KEYS", "LabelAppSettings", "app_settings", "label_names"]

#: the folder (inside a local datastore) where per-image SinGAN-Seg models are cached.
MODEL_DIR_NAME = "singanseg_models"


def _values(value: str) -> tuple[int, ...]:
    return tuple(int(v) for v in str(value).replace(" ", "").split(",") if v)


def _conf_key(name: str) -> str:
    """``singanseg_<option>``: an option's flag as a ``--conf`` key (``num_stages`` -> ``singanseg_stages``)."""
    flag = next(flag_of(f) for f in option_fields(SinGANSegSettings) if f.name == name)
    return "singanseg_" + flag.lstrip("-").replace("-", "_")


#: SinGAN-Seg training settings the app takes as ``--conf`` (declared in :class:`SinGANSegSettings`).
TRAINING_CONF = ("iters", "coarsest_iters", "num_stages", "min_size", "schedule", "seed")

#: ``--conf`` keys of the app: key -> (parser, SinGANSegSettings field or None, help). The training settings and the
#: working size come with their declarations (bounds, choices, help); the rest are the app's own.
CONF_KEYS: dict[str, tuple[Callable[[str], Any], str | None, str]] = {
    **{
        _conf_key(name): (value_parser(SinGANSegSettings, name), name, option_help(SinGANSegSettings, name))
        for name in TRAINING_CONF
    },
    "singanseg_max_size": (value_parser(DatasetSettings, "max_size"), None, option_help(DatasetSettings, "max_size")),
    "singanseg_volume": (
        value_parser(DatasetSettings, "volume"),
        None,
        "true: one 3D model per image (its tumour with a 2 cm margin), each sample a synthetic volume in the "
        "image's grid; false (default): one model of its tumour slice",
    ),
    "singanseg_device": (str, None, "cpu, cuda, cuda:N or auto (default)"),
    "singanseg_model_dir": (str, None, "model cache folder (default: <datastore>/singanseg_models)"),
    "label_values": (_values, None, "label values of the datastore's labels (default 0,1,2,4)"),
    "pix2pix_model": (
        str,
        None,
        "pix2pix model file (default: the shipped bundles/pix2pix/models/pix2pix.pt; 'none': off)",
    ),
    "infer_concurrency": (int_in(1, 64), None, "synthesis requests that run at once, in worker threads (default 1)"),
    "infer_queue": (
        int_in(0, 1024),
        None,
        "synthesis requests that wait for a worker; more are answered 503, busy (default 2)",
    ),
}
_PREFIXES = ("singanseg_", "pix2pix_", "label_values", "infer_")

#: BraTS label names (value -> name), shown by MONAI Label clients.
_BRATS_NAMES = {1: "necrotic and non-enhancing tumour core", 2: "peritumoural edema", 4: "GD-enhancing tumour"}


@dataclass
class LabelAppSettings:
    """What the app's infer and train tasks need.

    Args:
        settings: SinGAN-Seg training settings for per-image models.
        max_size: side of the square training slice (3D models: long side of the brain box).
        device: torch device for training and sampling.
        model_dir: where per-image models are cached.
        label_values: the datastore labels' values (background first).
        pix2pix_model: the pix2pix model file of the ``pix2pix`` infer task (None: no such task).
        volume: per-image models are 3D models (``train-singanseg --volume``), not of one slice.
        infer_concurrency: synthesis requests that run at once (in worker threads, off the server's event loop).
        infer_queue: synthesis requests that may wait for a worker; the server answers 503 (busy) beyond.
    """

    settings: SinGANSegSettings = field(default_factory=SinGANSegSettings)
    max_size: int = 128
    device: str = "auto"
    model_dir: Path = Path(MODEL_DIR_NAME)
    label_values: tuple[int, ...] = tuple(BRATS_LABEL_VALUES)
    pix2pix_model: Path | None = None
    volume: bool = False
    infer_concurrency: int = 1
    infer_queue: int = 2

    def summary(self) -> dict[str, Any]:
        """JSON-able form (shown in the app's info)."""
        return {
            "training": self.settings.to_dict(),
            "max_size": self.max_size,
            "device": self.device,
            "model_dir": str(self.model_dir),
            "label_values": list(self.label_values),
            "pix2pix_model": str(self.pix2pix_model) if self.pix2pix_model else None,
            "volume": self.volume,
            "infer_concurrency": self.infer_concurrency,
            "infer_queue": self.infer_queue,
        }


def app_settings(conf: Mapping[str, Any] | None, studies: str, app_dir: str) -> LabelAppSettings:
    """Parse the app's ``--conf`` values (strings) into :class:`LabelAppSettings`.

    Args:
        conf: MONAI Label's conf dict; keys of other apps' features (without our prefixes) are ignored.
        studies: the datastore (a folder, or a URL for remote datastores).
        app_dir: the app folder (models are cached in ``<app_dir>/model/singanseg`` for remote datastores).

    Raises:
        ValueError: an unknown ``singanseg_*`` key or a value that does not parse, naming the key.
    """
    conf = dict(conf or {})
    unknown = sorted(k for k in conf if k.startswith(_PREFIXES) and k not in CONF_KEYS)
    if unknown:
        raise ValueError(f"unknown --conf key {unknown[0]!r}; known keys: {', '.join(sorted(CONF_KEYS))}")
    parsed: dict[str, Any] = {}
    for key, (parse, _, _) in CONF_KEYS.items():
        if key in conf and conf[key] not in (None, ""):
            try:
                parsed[key] = parse(conf[key])
            except ValueError as exc:
                raise ValueError(f"--conf {key} {conf[key]!r}: {exc} ({CONF_KEYS[key][2]})") from None
    volume = parsed.get("singanseg_volume", False)
    fields = {CONF_KEYS[k][1]: v for k, v in parsed.items() if CONF_KEYS[k][1]}
    settings = SinGANSegSettings.for_volume(**fields) if volume else SinGANSegSettings(**fields)
    if "singanseg_model_dir" in parsed:
        model_dir = Path(parsed["singanseg_model_dir"])
    elif os.path.isdir(studies):
        model_dir = Path(studies) / MODEL_DIR_NAME
    else:
        model_dir = Path(app_dir) / "model" / "singanseg"
    label_values = parsed.get("label_values", tuple(BRATS_LABEL_VALUES))
    if len(label_values) < 2 or label_values[0] != 0 or len(set(label_values)) != len(label_values):
        raise ValueError(f"--conf label_values must list distinct values starting with 0, got {label_values}")
    max_size = parsed.get("singanseg_max_size", default_max_size(volume))
    if max_size < settings.min_size:
        raise ValueError(f"--conf singanseg_max_size {max_size} is below the coarsest scale's size {settings.min_size}")
    return LabelAppSettings(
        settings,
        max_size,
        parsed.get("singanseg_device", "auto"),
        model_dir,
        label_values,
        _pix2pix_model(parsed.get("pix2pix_model")),
        volume,
        parsed.get("infer_concurrency", 1),
        parsed.get("infer_queue", 2),
    )


def _pix2pix_model(value: str | None) -> Path | None:
    """The given pix2pix model file (which must exist), else the shipped bundle's if it can be found."""
    if value is not None:
        if value.lower() == "none":
            return None
        if not Path(value).is_file():
            raise ValueError(f"--conf pix2pix_model {value}: file not found")
        return Path(value)
    from monai_singanseg.bundle import bundle_root

    try:
        shipped = Path(bundle_root("pix2pix")) / "models" / "pix2pix.pt"
    except FileNotFoundError:  # an installed (not editable) package has no bundles/ folder
        return None
    return shipped if shipped.is_file() else None


def label_names(label_values: tuple[int, ...]) -> dict[str, int]:
    """Label name -> value for MONAI Label clients (BraTS names for BraTS values), background left out."""
    brats = tuple(label_values) == tuple(BRATS_LABEL_VALUES)
    return {(_BRATS_NAMES[v] if brats else f"label {v}"): v for v in label_values[1:]}
