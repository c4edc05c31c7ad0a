"""Per-image SinGAN-Seg models for a datastore: trained on first use, cached, retrained when the label changes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from filelock import FileLock

from monai_singanseg.engines.handlers import RunCancelled
from monai_singanseg.engines.singanseg import MODEL_KIND, SinGANSegTrainer
from monai_singanseg.io.atomic import hash_file
from monai_singanseg.io.modelfile import ModelFileError, load_model_file
from monai_singanseg.io.names import safe_name
from monai_singanseg.io.writers import BRATS_MODALITIES
from monai_singanseg.label.cancel import RequestCancelled, cancel_handlers
from monai_singanseg.label.options import LabelAppSettings
from monai_singanseg.synthesis import singanseg_training_input

__all__ = ["SinGANSegModelCache"]

logger = logging.getLogger(__name__)


class SinGANSegModelCache:
    """The per-image SinGAN-Seg models of a datastore.

    A model learns one image's tumour slice (the axial slice with most tumour in its final label), or with
    ``options.volume`` its tumour box (a 3D model). It is stored as
    ``<model_dir>/<image id>/<key>.pt`` where ``key`` hashes the image file, the label file and the training
    settings, so an edited label (or other ``--conf`` settings) trains a new model; superseded models of that image
    are deleted once the new one is complete. Training is serialised per image by a file lock (``.lock`` in the
    image's folder), so the train task and an infer request never train the same model twice; an interrupted
    training (or one cancelled with its request, :mod:`~monai_singanseg.label.cancel`) resumes from its last finished
    scale.

    Args:
        options: the app's settings (training settings, slice size, device, model folder, label values).
    """

    def __init__(self, options: LabelAppSettings) -> None:
        self.options = options

    def key(self, image_path: str | os.PathLike, label_path: str | os.PathLike) -> str:
        """Content hash of the image, the label and the training settings (16 hex digits)."""
        digest = hashlib.sha256()
        for path in (image_path, label_path):
            hash_file(path, digest)
        o = self.options
        settings = {
            "training": o.settings.to_dict(),
            "max_size": o.max_size,
            "label_values": list(o.label_values),
            "volume": o.volume,
        }
        digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
        return digest.hexdigest()[:16]

    def model_path(self, image_id: str, image_path: str | os.PathLike, label_path: str | os.PathLike) -> Path:
        """Where the model for this image and label content lives."""
        return Path(self.options.model_dir) / image_id / f"{self.key(image_path, label_path)}.pt"

    @staticmethod
    def is_complete(path: str | os.PathLike) -> bool:
        """True if ``path`` is a SinGAN-Seg model file whose training finished."""
        try:
            return bool(load_model_file(path, expected_kind=MODEL_KIND).config.complete)
        except (FileNotFoundError, ModelFileError):
            return False

    def ensure(self, image_id: str, image_path: str | os.PathLike, label_path: str | os.PathLike) -> tuple[Path, bool]:
        """The image's up-to-date model, trained now if there is none.

        Args:
            image_id: the datastore image id.
            image_path: its image file (a 4D multi-modal or 3D NIfTI).
            label_path: its final label file.

        Returns:
            ``(model path, trained now)``.

        Raises:
            ValueError: the label has no tumour, or the image cannot be read (naming the file).
            RequestCancelled: the request that trains the model was cancelled (the model file keeps the finished
                scales).
        """
        path = self.model_path(image_id, image_path, label_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.parent / ".lock")):
            if self.is_complete(path):
                return path, False
            o = self.options
            gan, metadata = singanseg_training_input(
                str(image_path), str(label_path), "auto", o.max_size, o.label_values, volume=o.volume
            )
            if metadata["num_image_channels"] == len(BRATS_MODALITIES):
                metadata["image_channels"] = list(BRATS_MODALITIES)  # the datastore's 4D order
            metadata["source_name"] = safe_name(image_id)
            logger.info(
                "training SinGAN-Seg for image %s: %s, %s, %d channels -> %s",
                image_id,
                "volume (3D)" if o.volume else f"slice {metadata['source_slice_index']}",
                "x".join(map(str, gan.shape[1:])),
                gan.shape[0],
                path,
            )
            trainer = SinGANSegTrainer(o.settings, device=o.device, progress=False, handlers=cancel_handlers())
            try:
                trainer.fit(gan, path, metadata, resume=True)
            except RunCancelled as exc:  # the finished scales stay in the model file: the next request resumes
                raise RequestCancelled(f"training the model of image {image_id}: {exc}") from exc
            for old in path.parent.glob("*.pt"):
                if old != path:
                    logger.info("removing superseded model %s", old)
                    old.unlink(missing_ok=True)
        return path, True
