"""TorchScript export of a model file's generator (what ``monai.bundle ckpt_export`` does for flat checkpoints).

``ckpt_export`` reads weights from one level of a checkpoint dictionary, while our model files keep them
under ``state -> generator`` next to their config; this builds the generator from the model file's own
config and saves it with MONAI's ``save_net_with_metadata``, the function ``ckpt_export`` uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from monai.data import save_net_with_metadata

from monai_singanseg.inferers.pix2pix import load_pix2pix
from monai_singanseg.io.atomic import atomic_path, check_outputs_free
from monai_singanseg.io.modelfile import load_model_file

__all__ = ["export_torchscript"]


def export_torchscript(model_file: str | os.PathLike, filepath: str | os.PathLike, overwrite: bool = True) -> Path:
    """Script a pix2pix model file's generator and save it as a TorchScript file with its config as metadata.

    Args:
        model_file: a pix2pix model file.
        filepath: the ``.ts`` file.
        overwrite: replace an existing file.

    Raises:
        ModelFileError: not a pix2pix model file (SinGAN-Seg samples through a pyramid with noise maps,
            not one network call, so it has no single network to export).
    """
    mf = load_model_file(model_file, expected_kind="pix2pix")
    generator, config = load_pix2pix(mf, torch.device("cpu"))
    scripted = torch.jit.script(generator)
    dest = Path(filepath)
    check_outputs_free([dest], overwrite)
    with atomic_path(dest, suffix="") as tmp:
        save_net_with_metadata(scripted, str(tmp), include_config_vals=False, append_timestamp=False,
                               meta_values={"monai_singanseg_config": json.dumps(config.to_dict())})
        if not tmp.exists() and Path(f"{tmp}.ts").exists():  # save_net_with_metadata adds .ts to bare names
            os.replace(f"{tmp}.ts", tmp)
    return dest
