"""MONAI Label infer tasks: synthetic image/label pairs for a labelled datastore image.

A synthesis request names a datastore image that has a final label. The task writes the synthetic pair as a NEW
datastore image (``<id>_<model>_<seed>``) with its label in ``labels/final/`` and answers with the synthetic label
(NIfTI on the source image's grid). It never writes over an existing image or label: a seed whose image id is taken
is refused (409), and without a seed the first free seed is used.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from monai_singanseg.device import resolve_device
from monai_singanseg.io.provenance import provenance_record
from monai_singanseg.label.cancel import CLIENT_CLOSED_REQUEST, RequestCancelled, raise_if_cancelled
from monai_singanseg.label.datastore import SYNTHETIC_SOURCE_KEY, write_datastore_case
from monai_singanseg.label.models import SinGANSegModelCache
from monai_singanseg.label.options import LabelAppSettings, label_names
from monai_singanseg.label.synthesis import SyntheticVolume, pix2pix_volume, singanseg_volume
from monai_singanseg.options import MAX_SEED, option_error
from monai_singanseg.synthesis import SinGANSegSynthesisSettings
from monai_singanseg.transforms.style import STYLE_METHODS

__all__ = ["LabelRequestError", "SyntheticInferTask", "SinGANSegInferTask", "Pix2PixInferTask", "is_synthetic"]

logger = logging.getLogger(__name__)

#: style methods a request may ask for (VGG-19 needs a weights file the server does not have).
LABEL_STYLE_METHODS = ("none", *(m for m in STYLE_METHODS if "vgg19" not in m))
#: how many seeds are tried for a free image id when the request gives none.
_MAX_AUTO_SEEDS = 10000
_SYNTHETIC_ID = re.compile(r"_(singanseg|pix2pix)_\d+$")


#: the allowed ranges of the request parameters that are not synthesis settings; the others are checked against
#: :class:`~monai_singanseg.synthesis.SinGANSegSynthesisSettings`'s declared bounds.
REQUEST_PARAM_RANGES: dict[str, tuple[int, int]] = {"seed": (-1, MAX_SEED), "deform": (0, 1)}


def _number(value: Any, integer: bool) -> float | int | None:
    """``value`` as an int (``integer``) or a finite float, from a JSON number or its decimal text; None if it is
    not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if integer:
            return int(text) if re.fullmatch(r"[+-]?\d{1,12}", text) else None
        try:
            value = float(text)
        except ValueError:
            return None
    if integer:
        return int(value) if isinstance(value, int) else None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


class LabelRequestError(ValueError):
    """A request the app cannot serve; ``status_code`` is the HTTP status the server answers with.

    Args:
        status_code: 404 (no such image), 409 (output id taken), 422 (no label, no tumour, bad parameter), 499 (the
            client closed the request, which was cancelled).
        message: what is wrong and how to fix it.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def is_synthetic(image_id: str, info: Mapping[str, Any]) -> bool:
    """True for datastore images written by this app (by their info, or their ``_<model>_<seed>`` id)."""
    return bool(info.get(SYNTHETIC_SOURCE_KEY)) or bool(_SYNTHETIC_ID.search(image_id))


class SyntheticInferTask(InferTask):
    """Base of the synthesis tasks: checks the request, picks the output id, stores the result in the datastore.

    Subclasses implement :meth:`synthesize`.

    Args:
        name: the model name (part of the new image ids).
        options: the app's settings.
        datastore: the app's datastore (synthetic pairs are added to it).
        description: shown by MONAI Label clients.
        config: the request parameters clients may set, with their defaults.
    """

    def __init__(
        self, name: str, options: LabelAppSettings, datastore: Datastore, description: str, config: dict[str, Any]
    ) -> None:
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=label_names(options.label_values),
            dimension=3,
            description=description,
            config={"seed": -1, **config},
        )
        self.name = name
        self.options = options
        self.datastore = datastore

    def is_valid(self) -> bool:
        return True

    def param(self, request: Mapping[str, Any], name: str) -> Any:
        """Request parameter ``name``: of its default's type, inside its bounds (422 otherwise): those of
        :data:`REQUEST_PARAM_RANGES`, or the synthesis setting's declared bounds.

        Numbers are taken as they are or from their plain decimal text; nothing is coerced (``true`` is not 1,
        ``1.5`` is not an integer), so what the server runs is what the client asked for.
        """
        default = self._config[name]
        value = request.get(name, default)
        if value is None or value == "":
            return default
        if isinstance(default, str):
            if not isinstance(value, str):
                raise LabelRequestError(422, f"parameter {name}={value!r} must be text")
            return value
        kind = "an integer" if isinstance(default, int) and not isinstance(default, bool) else "a number"
        number = _number(value, integer=kind == "an integer")
        if name in REQUEST_PARAM_RANGES:
            low, high = REQUEST_PARAM_RANGES[name]
            error = None if number is not None and low <= number <= high else f"must be {kind} in [{low}, {high}]"
        else:
            error = f"must be {kind}" if number is None else option_error(SinGANSegSynthesisSettings, name, number)
        if error is not None:
            raise LabelRequestError(422, f"parameter {name}={value!r} {error}")
        return number

    def synthesize(
        self, image_id: str, image_path: str, label_path: str, seed: int, request: Mapping[str, Any]
    ) -> tuple[SyntheticVolume, dict[str, Any]]:
        """Make the synthetic pair; returns it and extra result fields. Raise LabelRequestError for bad requests."""
        raise NotImplementedError

    def new_image_id(self, image_id: str, seed: int) -> tuple[str, int]:
        """``(<image_id>_<name>_<seed>, seed)``; seed < 0 takes the first free seed."""
        if seed >= 0:
            new_id = f"{image_id}_{self.name}_{seed}"
            if self._taken(new_id):
                raise LabelRequestError(
                    409,
                    f"image {new_id!r} already exists in the datastore (seed {seed} was used); "
                    "pass another seed, or seed -1 for the next free one",
                )
            return new_id, seed
        for s in range(_MAX_AUTO_SEEDS):
            new_id = f"{image_id}_{self.name}_{s}"
            if not self._taken(new_id):
                return new_id, s
        raise LabelRequestError(
            409, f"all seeds 0..{_MAX_AUTO_SEEDS - 1} of {image_id!r} are taken; pass a larger seed"
        )

    def _taken(self, image_id: str) -> bool:
        if self.datastore.get_image_uri(image_id):
            return True
        root = getattr(self.datastore, "_datastore_path", None)  # files not (yet) registered by a local datastore
        return bool(root) and any(
            p.exists()
            for p in (Path(root) / f"{image_id}.nii.gz", Path(root) / "labels" / "final" / f"{image_id}.nii.gz")
        )

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        image_id = request.get("image_id")
        if not image_id:
            raise LabelRequestError(
                422, f"{self.name} works on datastore images that have a final label; give ?image=<id>"
            )
        label_path = self.datastore.get_label_uri(image_id, DefaultLabelTag.FINAL)
        if not label_path or not os.path.exists(label_path):
            raise LabelRequestError(
                422,
                f"image {image_id!r} has no final label (labels/final/{image_id}.nii.gz); label it and save it "
                "as final first",
            )
        new_id, seed = self.new_image_id(image_id, self.param(request, "seed"))
        try:
            volume, extra = self.synthesize(image_id, str(request["image"]), label_path, seed, request)
            raise_if_cancelled(f"{self.name} of image {image_id!r}")  # a result nobody waits for is not stored
        except LabelRequestError:
            raise
        except RequestCancelled as exc:
            raise LabelRequestError(CLIENT_CLOSED_REQUEST, str(exc)) from exc
        except ValueError as exc:  # unreadable image, no tumour, model of another image, bad parameters
            raise LabelRequestError(422, f"image {image_id!r}: {exc}") from exc
        result = self._store(image_id, new_id, seed, volume, extra)
        result["seconds"] = round(time.perf_counter() - start, 3)
        logger.info("%s: %s -> %s in %.1f s", self.name, image_id, new_id, result["seconds"])
        return result.pop("result_file"), result

    def _store(
        self, image_id: str, new_id: str, seed: int, volume: SyntheticVolume, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """Add the pair to the datastore (image + final label) and return the result fields and response file."""
        info = {SYNTHETIC_SOURCE_KEY: image_id, "model": self.name, "seed": seed, **extra}
        with tempfile.TemporaryDirectory(prefix="singanseg_label_") as tmp:
            image_file, label_file = Path(tmp) / f"{new_id}.nii.gz", Path(tmp) / "label" / f"{new_id}.nii.gz"
            provenance = provenance_record(self.name, image_id)
            write_datastore_case(
                image_file, label_file, volume.image, volume.label, volume.affine, volume.image_dtype, False, provenance
            )
            self.datastore.add_image(new_id, str(image_file), dict(info))
            self.datastore.save_label(new_id, str(label_file), DefaultLabelTag.FINAL, dict(info))
            # the server deletes the file it answers with: hand it a copy, never the datastore's label
            fd, response = tempfile.mkstemp(prefix=f"{new_id}_", suffix=".nii.gz")
            os.close(fd)
            shutil.copyfile(label_file, response)
        values = sorted(int(v) for v in set(volume.label.ravel().tolist()))
        return {
            "result_file": response,
            "synthetic_image": new_id,
            "source_image": image_id,
            "seed": seed,
            "label_values": values,
            "slice_index": volume.slice_index,
            **extra,
        }


class SinGANSegInferTask(SyntheticInferTask):
    """SinGAN-Seg: a synthetic tumour slice from the image's own model, placed at the slice it was learnt from.

    The image's model is trained on first use (or by the ``singanseg`` train task) and cached. Parameters:
    ``seed`` (-1: first free), ``start_scale`` (0: most varied; higher: closer to the source slice), ``threshold``
    (label background threshold), ``min_component`` (drop smaller tumour components, pixels), ``style``
    (SinGAN-Seg's style-transfer step: ``none``, ``histogram``, ``random`` or ``histogram+random``; the label is
    never changed), ``style_steps`` and ``tumour_shift`` (the tumour moves by up to this fraction of the slice side,
    turns and changes size and outline; 0: it stays in place but still changes shape).

    Args:
        options: the app's settings.
        datastore: the app's datastore.
    """

    def __init__(self, options: LabelAppSettings, datastore: Datastore) -> None:
        super().__init__(
            "singanseg",
            options,
            datastore,
            "SinGAN-Seg: a synthetic image/label pair (one tumour slice) from this image's own model, added to the "
            "datastore as a new image",
            {
                "start_scale": 0,
                "threshold": 0.5,
                "min_component": 0,
                "style": "none",
                "style_steps": 100,
                "tumour_shift": SinGANSegSynthesisSettings.tumour_shift,
            },
        )
        self.cache = SinGANSegModelCache(options)

    def synthesize(
        self, image_id: str, image_path: str, label_path: str, seed: int, request: Mapping[str, Any]
    ) -> tuple[SyntheticVolume, dict[str, Any]]:
        style = self.param(request, "style")
        if style not in LABEL_STYLE_METHODS:
            raise LabelRequestError(422, f"style={style!r}: choose one of {', '.join(LABEL_STYLE_METHODS)}")
        names = ("start_scale", "threshold", "min_component", "style_steps", "tumour_shift")
        options = {name: self.param(request, name) for name in names}
        model, trained = self.cache.ensure(image_id, image_path, label_path)  # every parameter is checked first
        volume = singanseg_volume(
            model,
            image_path,
            label_path,
            self.options.label_values,
            seed,
            device=self.options.device,
            style=style,
            **options,
        )
        return volume, {"singanseg_model": str(model), "model_trained_now": trained, "style": style}


class Pix2PixInferTask(SyntheticInferTask):
    """pix2pix: a whole synthetic 4-modality volume rendered for the image's label, deformed by default.

    Parameters: ``seed`` (-1: first free; seeds the deformation) and ``deform`` (1: a deformed copy of the label,
    0: the label itself). The image must hold the model's modalities (flair, t1, t1ce, t2 for the shipped model).

    Args:
        options: the app's settings (``options.pix2pix_model`` is the model file).
        datastore: the app's datastore.
    """

    def __init__(self, options: LabelAppSettings, datastore: Datastore) -> None:
        super().__init__(
            "pix2pix",
            options,
            datastore,
            "pix2pix: a synthetic 4-modality volume rendered for a deformed copy of this image's label, added to "
            "the datastore as a new image",
            {"deform": 1},
        )

    def is_valid(self) -> bool:
        return self.options.pix2pix_model is not None and Path(self.options.pix2pix_model).is_file()

    def synthesize(
        self, image_id: str, image_path: str, label_path: str, seed: int, request: Mapping[str, Any]
    ) -> tuple[SyntheticVolume, dict[str, Any]]:
        volume = pix2pix_volume(
            self.options.pix2pix_model,
            image_path,
            label_path,
            seed,
            deform=bool(self.param(request, "deform")),
            device=resolve_device(self.options.device),
        )
        return volume, {"pix2pix_model": str(self.options.pix2pix_model)}
