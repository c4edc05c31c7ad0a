"""The model zoo's ``models/model.pt``: one network of a model file as a flat state dict.

MONAI's bundle tools (``ckpt_export`` for TorchScript, ``CheckpointLoader``, ``verify_net_in_out``) read
weights from a flat state dict into the config's ``network_def``, while the package's model files keep them
under ``state -> <network>`` beside the config that rebuilds the network. Bundles ship both.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from monai_singanseg.io.atomic import atomic_path
from monai_singanseg.io.modelfile import ModelFileError, load_model_file

__all__ = ["save_state_dict"]


def save_state_dict(model_file: str | os.PathLike, filepath: str | os.PathLike, network: str = "generator") -> Path:
    """Write one network of a model file as a flat float32 state dict (the model zoo's ``models/model.pt``).

    MONAI's bundle tools (``ckpt_export``, ``CheckpointLoader``) read such a file into the config's
    ``network_def``; the product's own model file, with its config, stays beside it.

    Args:
        model_file: a model file (training checkpoint or inference copy).
        filepath: the state dict file (written atomically, replaced if it exists).
        network: which of the model file's state dicts (``"generator"``).

    Raises:
        ModelFileError: the model file holds no such network.
    """
    mf = load_model_file(model_file)
    if network not in mf.state:
        raise ModelFileError(f"{model_file}: holds no '{network}' weights (it has {sorted(mf.state)})")
    state = {k: v.float() if v.is_floating_point() else v for k, v in mf.state[network].items()}
    dest = Path(filepath)
    with atomic_path(dest) as tmp:
        torch.save(state, tmp)
    return dest
