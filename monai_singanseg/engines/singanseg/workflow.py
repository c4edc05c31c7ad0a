"""SinGAN-Seg training as one workflow object (a bundle's ``train#trainer``): prepared case in, model file out.

SinGAN-Seg learns from one image, so one *epoch* (one pass over its training data) is one iteration; the
workflow's ``max_epochs`` is the iterations of every scale, the knob the model zoo's
``--train#trainer#max_epochs`` turns. Each scale still runs as its own MONAI engine
(:class:`~monai_singanseg.engines.singanseg.SinGANSegTrainer`), with the handlers given here attached to each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.engines.singanseg.settings import SinGANSegSettings, with_iterations
from monai_singanseg.engines.singanseg.trainer import SinGANSegTrainer

__all__ = ["SinGANSegWorkflow"]


class SinGANSegWorkflow:
    """Trains one SinGAN-Seg model file from one prepared case; :meth:`run` trains (like a MONAI workflow's).

    Args:
        data: a sequence holding one ``(gan_tensor, metadata)`` item, e.g.
            :class:`~monai_singanseg.synthesis.SinGANSegTrainingSet` of a one-case datalist (SinGAN-Seg trains
            one model per image; a dataset of models is ``synthesize``'s work).
        out: the model file (rewritten after every scale; the resume point).
        settings: training settings.
        max_epochs: iterations per scale (an epoch of a single-image GAN is one iteration; None: the settings');
            read when :meth:`run` starts, so it may be changed after construction.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``/None.
        resume: continue from the scales already in ``out``.
        overwrite: replace an existing ``out`` when not resuming.
        handlers: MONAI or ignite handlers attached to every scale's engine.
        tensorboard: optional TensorBoard folder.
        progress: show progress bars.

    Raises:
        ValueError: ``data`` does not hold exactly one item.
    """

    def __init__(
        self,
        data: Sequence[tuple[torch.Tensor, dict[str, Any]]],
        out: str | os.PathLike,
        settings: SinGANSegSettings | None = None,
        max_epochs: int | None = None,
        device: str | torch.device | None = None,
        resume: bool = False,
        overwrite: bool = False,
        handlers: Sequence[Any] = (),
        tensorboard: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        if len(data) != 1:
            raise ValueError(
                f"SinGAN-Seg trains one model from one case; got {len(data)} datalist entries "
                "(pick one, or train a model per case with `python -m monai_singanseg synthesize`)"
            )
        self.data = data
        self.out = Path(out)
        self.settings = settings or SinGANSegSettings()
        self.max_epochs = max_epochs
        self.device = device
        self.resume = resume
        self.overwrite = overwrite
        self.handlers = tuple(handlers)
        self.tensorboard = tensorboard
        self.progress = progress

    def run(self) -> Path:
        """Train every scale (from the last finished one when resuming) and return the model file."""
        settings = self.settings if self.max_epochs is None else with_iterations(self.settings, self.max_epochs)
        real, metadata = self.data[0]
        trainer = SinGANSegTrainer(settings, self.device, self.progress, self.tensorboard, self.handlers)
        return trainer.fit(real, self.out, metadata, resume=self.resume, overwrite=self.overwrite)
