"""The monai-singanseg MONAI Label app: ``monailabel start_server --app <this folder> --studies <datastore>``.

Models (``GET /info/``): ``singanseg`` synthesises a new labelled image from a labelled datastore image with the
image's own SinGAN-Seg model (trained on first use and cached); ``pix2pix`` (when its model file is found) renders
a whole synthetic 4-modality volume for a deformed copy of the image's label. Trainers: ``singanseg`` trains those models for
all labelled images. Settings: ``--conf KEY VALUE`` (see ``monai_singanseg.label.options.CONF_KEYS``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

from monai_singanseg import __version__
from monai_singanseg.label.infer import LabelRequestError, Pix2PixInferTask, SinGANSegInferTask, SyntheticInferTask
from monai_singanseg.label.options import app_options, label_names
from monai_singanseg.label.train import SinGANSegTrainTask

logger = logging.getLogger(__name__)


class SinGANSegLabelApp(MONAILabelApp):
    """MONAI Label app serving SinGAN-Seg synthesis and training for a datastore of labelled images.

    Args:
        app_dir: this folder.
        studies: the datastore (a local folder of NIfTI images with ``labels/final/``).
        conf: ``--conf`` values (``singanseg_iters``, ``singanseg_max_size``, ``label_values``, ...).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.options = app_options(conf, studies, app_dir)
        logger.info("monai-singanseg app settings: %s", self.options.summary())
        super().__init__(
            app_dir=app_dir, studies=studies, conf=conf, name="monai-singanseg",
            description="Synthetic labelled images from labelled datastore images (SinGAN-Seg, pix2pix)",
            version=__version__, labels=label_names(self.options.label_values),
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {"singanseg": SinGANSegInferTask(self.options, self.datastore())}
        pix2pix = Pix2PixInferTask(self.options, self.datastore())
        if pix2pix.is_valid():
            infers["pix2pix"] = pix2pix
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        return {"singanseg": SinGANSegTrainTask(self.options)}

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Run an infer task; synthesis requests must name a datastore image and never save over its labels."""
        request = dict(request)
        if isinstance(self._infers.get(request.get("model", "")), SyntheticInferTask):
            store = datastore or self.datastore()
            image = request.get("image")
            if isinstance(image, str) and not os.path.exists(image):
                if not store.get_image_uri(image):
                    raise HTTPException(
                        status_code=404,
                        detail=f"image {image!r} is not in the datastore ({len(store.list_images())} images; "
                        "GET /datastore/ lists them)",
                    )
                request["image_id"] = image
            request["save_label"] = False  # the result belongs to the new synthetic image, not to this one
        try:
            return super().infer(request, datastore)
        except LabelRequestError as exc:
            raise HTTPException(status_code=exc.status_code, detail=str(exc)) from exc
