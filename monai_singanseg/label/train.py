"""MONAI Label train task: per-image SinGAN-Seg models for every labelled image of the datastore."""

from __future__ import annotations

import logging
import time
from typing import Any

from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.train import TrainTask

from monai_singanseg.label.infer import is_synthetic
from monai_singanseg.label.models import SinGANSegModelCache
from monai_singanseg.label.options import LabelAppSettings

__all__ = ["SinGANSegTrainTask"]

logger = logging.getLogger(__name__)


class SinGANSegTrainTask(TrainTask):
    """Train the SinGAN-Seg model of every labelled (non-synthetic) datastore image; up-to-date models are skipped.

    MONAI Label runs train tasks in a subprocess and shows its log lines at ``GET /train/``: one line per image
    (trained, up to date or failed) and one per finished scale. The optional request parameter ``image`` restricts
    the run to one image id. Images that fail (e.g. a label without tumour) are logged and the others still train;
    the task then ends with an error listing them.

    Args:
        options: the app's settings (training settings, slice size, device, model folder).
    """

    def __init__(self, options: LabelAppSettings) -> None:
        super().__init__("Train per-image SinGAN-Seg models for all labelled datastore images (skips up-to-date ones)")
        self.options = options
        self.cache = SinGANSegModelCache(options)

    def config(self) -> dict[str, Any]:
        return {"image": ""}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        labelled = datastore.get_labeled_images()
        ids = sorted(i for i in labelled if not is_synthetic(i, datastore.get_image_info(i)))
        only = str(request.get("image") or "")
        if only:
            if only not in labelled:
                raise ValueError(f"image {only!r} is not a labelled datastore image")
            ids = [only]
        logger.info("SinGAN-Seg: %d labelled image(s) to check; models in %s", len(ids), self.options.model_dir)
        results: dict[str, dict[str, Any]] = {}
        for n, image_id in enumerate(ids, 1):
            image = datastore.get_image_uri(image_id)
            label = datastore.get_label_uri(image_id, DefaultLabelTag.FINAL)
            start = time.perf_counter()
            try:
                path = self.cache.model_path(image_id, image, label)
                if self.cache.is_complete(path):
                    logger.info("image %d/%d %s: model up to date (%s)", n, len(ids), image_id, path.name)
                    results[image_id] = {"status": "up to date", "model": str(path)}
                    continue
                logger.info("image %d/%d %s: training", n, len(ids), image_id)
                path, _ = self.cache.ensure(image_id, image, label)
            except (ValueError, OSError) as exc:
                logger.error("image %d/%d %s: failed: %s", n, len(ids), image_id, exc)
                results[image_id] = {"status": "failed", "error": str(exc)}
                continue
            seconds = round(time.perf_counter() - start, 1)
            logger.info("image %d/%d %s: trained in %.1f s -> %s", n, len(ids), image_id, seconds, path)
            results[image_id] = {"status": "trained", "model": str(path), "seconds": seconds}
        failed = sorted(k for k, v in results.items() if v["status"] == "failed")
        counts = {s: sum(v["status"] == s for v in results.values()) for s in ("trained", "up to date", "failed")}
        logger.info("SinGAN-Seg: %s", ", ".join(f"{v} {k}" for k, v in counts.items()))
        if failed:
            raise RuntimeError(
                f"SinGAN-Seg training failed for {len(failed)} image(s): {', '.join(failed)} (see the log)"
            )
        return {"images": results, **counts}
