"""Reading and writing: model files, synthetic cases, datalists, previews; always atomically."""

from __future__ import annotations

from monai_singanseg.io.atomic import OutputExistsError, atomic_path, check_outputs_free
from monai_singanseg.io.model_config import Pix2PixModelConfig, SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFile, ModelFileError, load_model_file, save_model_file

__all__ = [
    "OutputExistsError",
    "atomic_path",
    "check_outputs_free",
    "Pix2PixModelConfig",
    "SinGANSegModelConfig",
    "ModelFile",
    "ModelFileError",
    "load_model_file",
    "save_model_file",
]
