"""The one trained-model file format shared by every entry point (Python API, CLI, bundles, MONAI Label).

A model file is ``torch.save`` of a plain dictionary::

    {
        "format": "monai-singanseg-model",
        "format_version": 1,
        "kind": "singanseg" | "pix2pix" | ...,
        "config": {...},                      # JSON-able: a typed, versioned config per kind (io/model_config.py)
        "state": {"name": {param: Tensor}},  # state dicts of the networks
        "tensors": {"name": Tensor},          # extra tensors (fixed noise maps, ...)
        "versions": {"monai_singanseg": ..., "monai": ..., "torch": ...},
    }

It loads with ``torch.load(..., weights_only=True)``: no pickled classes, so torch >= 2.6 accepts it and
loading needs none of the training code's objects. The config is read through
:func:`~monai_singanseg.io.model_config.config_from_dict` into the kind's dataclass, so every consumer
sees typed fields, and unsafe names in a stranger's file are refused on load.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.io.atomic import atomic_path, hash_file
from monai_singanseg.io.model_config import ModelConfig, ModelConfigError, config_from_dict

__all__ = [
    "ModelFile",
    "ModelFileError",
    "save_model_file",
    "load_model_file",
    "save_inference_copy",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "monai-singanseg-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """Raised for a file that is not a monai-singanseg model, is truncated, or is of the wrong kind."""


@dataclass
class ModelFile:
    """A loaded model file.

    Args:
        kind: which generator family wrote it (``"singanseg"``, ``"pix2pix"``).
        config: the typed config of that kind (:mod:`monai_singanseg.io.model_config`).
        state: network state dicts by name.
        tensors: extra tensors by name.
        versions: package versions at save time.
        path: where it was loaded from, if anywhere.
    """

    kind: str
    config: Any
    state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    def sha256(self) -> str | None:
        """SHA-256 of the file it was loaded from (None for a model that was never on disk)."""
        return None if self.path is None else hash_file(self.path).hexdigest()


def _versions() -> dict[str, str]:
    import monai

    from monai_singanseg import __version__

    return {"monai_singanseg": str(__version__), "monai": str(monai.__version__), "torch": str(torch.__version__)}


def save_model_file(
    path: str | os.PathLike,
    config: ModelConfig,
    state: dict[str, dict[str, torch.Tensor]],
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a model file atomically (a killed process never leaves a truncated model behind).

    Args:
        path: destination file (``.pt`` by convention).
        config: the model's typed config; its class gives the file's ``kind``.
        state: network state dicts by name; tensors are moved to CPU.
        tensors: extra tensors by name; moved to CPU.

    Returns:
        The destination path.
    """
    if not isinstance(config, ModelConfig):
        raise ModelFileError(f"model config must be a ModelConfig dataclass, got {type(config).__name__}")
    try:
        stored = json.loads(json.dumps(config.to_dict()))
    except TypeError as exc:
        raise ModelFileError(f"model config must be JSON-serialisable: {exc}") from exc
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": config.KIND,
        "config": stored,
        "state": {n: {k: v.detach().cpu().clone() for k, v in sd.items()} for n, sd in state.items()},
        "tensors": {n: t.detach().cpu().clone() for n, t in (tensors or {}).items()},
        "versions": _versions(),
    }
    dest = Path(path)
    with atomic_path(dest) as tmp:
        torch.save(payload, tmp)
    return dest


#: the first bytes of a torch archive (``torch.save`` writes zip files).
_ZIP_MAGIC = b"PK\x03\x04"
#: the package's model file names beside a bundle's flat ``models/model.pt``.
_BUNDLE_MODEL_FILES = ("singanseg.pt", "pix2pix.pt")


def _read_payload(p: Path, map_location: str | torch.device) -> Any:
    """The torch payload of ``p`` (``weights_only``), or a :class:`ModelFileError` saying what the file is instead."""
    with open(p, "rb") as fh:
        head = fh.read(512)
    if not head.startswith(_ZIP_MAGIC):
        if not head:
            what = "an empty file"
        elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
            what = "a text file"
        else:
            what = "not a torch file"
        raise ModelFileError(
            f"{p}: not a readable monai-singanseg model file: {what} (model files are torch archives written by "
            "train-singanseg, train-pix2pix, synthesize or a bundle)"
        )
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged archive; all mean the same here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{p}: not a readable monai-singanseg model file (truncated or damaged torch archive): {reason}"
        ) from exc


def _what_it_is(p: Path, payload: Any) -> str:
    """What a torch file that is not one of this package's model files holds, and where the right file may be."""
    if isinstance(payload, dict) and payload and all(torch.is_tensor(v) for v in payload.values()):
        beside = [name for name in _BUNDLE_MODEL_FILES if (p.parent / name).is_file() and p.name != name]
        where = (
            f"use the package's model file beside it: {', '.join(str(p.parent / n) for n in beside)}"
            if beside
            else "a bundle keeps the package's model file beside it (models/singanseg.pt or models/pix2pix.pt)"
        )
        return (
            f"a bare state dict of {len(payload)} tensors (like a bundle's models/model.pt, for MONAI's bundle "
            f"tools), not a monai-singanseg model file; {where}"
        )
    return f"not a monai-singanseg model file (no '{FORMAT_NAME}' header)"


def load_model_file(
    path: str | os.PathLike, expected_kind: str | None = None, map_location: str | torch.device = "cpu"
) -> ModelFile:
    """Load a model file safely (``weights_only=True``) and check that it is ours.

    Args:
        path: the model file.
        expected_kind: if given, the kind the caller can use; another kind is an error.
        map_location: device to load tensors onto.

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: not a model file of this package, truncated/corrupt, wrong kind or newer format.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: model file not found")
    payload = _read_payload(p, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{p}: {_what_it_is(p, payload)}")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{p}: a monai-singanseg model file without a valid format version ({version!r}): damaged")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: written by a newer monai-singanseg (model format version {version}; this package reads versions "
            f"up to {FORMAT_VERSION}): update monai-singanseg to use it"
        )
    kind = payload.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise ModelFileError(f"{p}: this is a '{kind}' model, expected a '{expected_kind}' model")
    try:
        config = config_from_dict(str(kind), payload.get("config", {}))
    except ModelConfigError as exc:
        raise ModelFileError(f"{p}: {exc}") from None
    parts = {name: payload.get(name, {}) for name in ("state", "tensors", "versions")}
    bad = [name for name, value in parts.items() if not isinstance(value, dict)]
    bad += [f"state.{n}" for n, sd in parts["state"].items() if not isinstance(sd, dict)] if not bad else []
    if bad:
        raise ModelFileError(f"{p}: not a monai-singanseg model file ({', '.join(bad)} is not a dictionary)")
    return ModelFile(
        kind=str(kind),
        config=config,
        state=dict(parts["state"]),
        tensors=dict(parts["tensors"]),
        versions=dict(parts["versions"]),
        path=str(p),
    )


def save_inference_copy(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    keep_state: Sequence[str],
    keep_tensors: Sequence[str] = (),
    half: bool = True,
) -> Path:
    """Write a smaller copy of a model file holding only what inference needs (e.g. for shipping in a bundle).

    Critics, optimiser and random states are dropped; floating-point weights are stored in float16 if
    ``half`` (they load into float32 networks unchanged). The copy's config has ``"inference_only": True``,
    and trainers refuse to resume from it.

    Args:
        src: a training model file.
        dst: the copy.
        keep_state: names of the state dicts to keep (e.g. ``["generator"]``).
        keep_tensors: names of extra tensors to keep (e.g. fixed noise maps).
        half: store floating-point tensors as float16.
    """
    mf = load_model_file(src)
    missing = [n for n in keep_state if n not in mf.state] + [n for n in keep_tensors if n not in mf.tensors]
    if missing:
        raise ModelFileError(f"{src}: has no {missing} to keep")

    def shrink(t: torch.Tensor) -> torch.Tensor:
        return t.half() if half and t.is_floating_point() else t

    state = {n: {k: shrink(v) for k, v in mf.state[n].items()} for n in keep_state}
    tensors = {n: mf.tensors[n] for n in keep_tensors}  # noise maps etc. stay exact
    config = dataclasses.replace(mf.config, inference_only=True)
    return save_model_file(dst, config, state, tensors)
