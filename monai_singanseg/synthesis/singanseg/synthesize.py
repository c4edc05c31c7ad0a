"""The SinGAN-Seg synthesis pipeline: model file + options -> one MONAI ``Compose`` (the only place it is composed).

sample (GAN space: image in [-1, 1], class indices) -> optional style step on the image -> *finish*: source
units and label values -> case writer (BraTS NIfTI, or PNG image + mask for RGB models). The command line,
the bundle's ``inference.json``, MONAI Label and the evaluation all build it here.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from dataclasses import dataclass

import torch
from monai.inferers import Inferer

from monai_singanseg.inferers.singanseg import SinGANSegSampled, SinGANSegSampler
from monai_singanseg.io.model_config import SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFile
from monai_singanseg.io.provenance import provenance_record
from monai_singanseg.options import Settings, check_options, option
from monai_singanseg.synthesis.runner import SynthesisPipeline
from monai_singanseg.transforms.intensity import IntensityFromTanhRanged
from monai_singanseg.transforms.io import SaveBratsCased, SaveCased, SaveImageMaskPngd
from monai_singanseg.transforms.labels import IndexToLabeld
from monai_singanseg.transforms.slices import ResampleToGridd
from monai_singanseg.transforms.style import STYLE_METHODS, StyleTransferd

logger = logging.getLogger(__name__)

__all__ = ["SinGANSegSynthesisSettings", "singanseg_synthesis", "singanseg_case_writer", "singanseg_style"]


def _tumour_shift(text: str) -> float | None:
    """``off`` -> None, else a number (checked against the option's bounds)."""
    if text == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1] or 'off', got {text!r}") from None


@dataclass
class SinGANSegSynthesisSettings(Settings):
    """How samples are drawn and finished (the same defaults for every entry point).

    Every field is an option declared with its help and bounds (:mod:`monai_singanseg.options`).
    """

    start_scale: int = option(
        0, low=0, high=64, help="scale where random noise starts (0: most varied; higher: closer to the training slice)"
    )
    size: tuple[int, ...] | None = option(
        None, low=8, high=4096, help="other output size (H W, or H W D for a 3D model; default: the training size)"
    )
    threshold: float = option(
        0.5,
        low=0.0,
        high=1.0,
        high_open=True,
        help="a pixel is background unless its largest label channel (x + 1) / 2 exceeds this",
    )
    min_component: int = option(
        10, low=0, high=10**7, help="remove tumour components smaller than this many pixels (0: keep all)"
    )
    style: str = option(
        "none",
        choices=("none", *STYLE_METHODS),
        help="SinGAN-Seg's style-transfer step onto every sample, with the model's reconstruction of its training "
        "slice as the style image",
    )
    style_steps: int = option(100, low=0, high=10000, help="optimisation steps of the network style methods")
    style_weights: str | None = option(
        None, metavar="FILE", help="VGG-19 weights file for --style vgg19 / histogram+vgg19"
    )
    tumour_shift: float | None = option(
        0.15,
        low=0.0,
        high=1.0,
        parse=_tumour_shift,
        metavar="F|off",
        help="new tumour layout per sample: the tumour moves by up to F of the side inside the brain (or the "
        "picture's foreground), turns and changes size and outline before the finer scales add detail ('off': the "
        "layout of the training slice; 2D models only, a 3D model keeps its learnt layout)",
    )
    paste: bool = option(
        False,
        help="3D models: write each sample into the whole source volume's grid (shape, spacing, orientation, "
        "origin; zeros outside the model's box) instead of the model's working grid",
    )

    def __post_init__(self) -> None:
        if self.size is not None:
            self.size = tuple(int(s) for s in self.size)
        check_options(self)
        if self.style.endswith("vgg19") and not self.style_weights:
            raise ValueError(
                f"style {self.style} needs a VGG-19 weights file (--style-weights FILE), which cannot be downloaded "
                "here; how to make the file: docs/style_transfer.md"
            )

    def for_model(self, config: SinGANSegModelConfig) -> SinGANSegSynthesisSettings:
        """These settings as a model of ``config`` can use them: a 3D model drops ``tumour_shift`` (with a log line), a
        2D model keeps everything."""
        if config.spatial_dims == 3 and self.tumour_shift is not None:
            logger.info("tumour_shift works on 2D models; the samples of this 3D model keep the layout it learnt")
            return dataclasses.replace(self, tumour_shift=None)
        return self


def singanseg_case_writer(
    sampler: SinGANSegSampler, output_dir: str | os.PathLike, overwrite: bool = False
) -> SaveCased:
    """The writer that fits the model's input: PNG image + mask for RGB models, else BraTS-named NIfTI; each file says
    it is a SinGAN-Seg sample of the model's source case."""
    provenance = provenance_record("singanseg", sampler.config.source_name)
    if sampler.config.rgb:
        return SaveImageMaskPngd(("image", "label"), output_dir, overwrite=overwrite, provenance=provenance)
    channels = sampler.config.image_channels
    return SaveBratsCased(
        ("image", "label"), output_dir, modalities=channels, overwrite=overwrite, provenance=provenance
    )


def singanseg_style(
    sampler: SinGANSegSampler, options: SinGANSegSynthesisSettings, device: str | torch.device | None = "cpu"
) -> StyleTransferd | None:
    """SinGAN-Seg's style step for a model's samples (None for ``"none"``): the style image is the model's own
    reconstruction of its training slice (a model file holds no patient image)."""
    if options.style == "none":
        return None
    return StyleTransferd(
        "image",
        style=sampler.reference_image(),
        method=options.style,
        steps=options.style_steps,
        weights_path=options.style_weights,
        device=device,
    )


def singanseg_synthesis(
    model: str | os.PathLike | ModelFile | SinGANSegSampler,
    output_dir: str | os.PathLike | None = None,
    options: SinGANSegSynthesisSettings | None = None,
    finish: bool = True,
    overwrite: bool = False,
    device: str | torch.device | None = "cpu",
    inferer: Inferer | None = None,
) -> SynthesisPipeline:
    """The synthesis pipeline of a SinGAN-Seg model; run it with :func:`~monai_singanseg.synthesis.synthesize`.

    Args:
        model: model file, loaded :class:`ModelFile` or :class:`SinGANSegSampler`.
        output_dir: where the writer puts the cases (None: no writer; the pipeline returns the finished pair).
        options: sampling, finishing and style options.
        finish: map the pair back to source units and label values (False: GAN space, image in [-1, 1] and
            class indices; no writer).
        overwrite: replace existing outputs.
        device: device of the generator and the style optimisation.
        inferer: how the generator pyramid is called (see :class:`SinGANSegSampler`; not used when ``model`` is
            a sampler already).

    Returns:
        A :class:`~monai_singanseg.synthesis.SynthesisPipeline` that sets ``"image"`` and ``"label"`` of each item.
    """
    options = options or SinGANSegSynthesisSettings()
    sampler = model if isinstance(model, SinGANSegSampler) else SinGANSegSampler(model, device=device, inferer=inferer)
    cfg = sampler.config
    options = options.for_model(cfg)
    if options.paste and cfg.source_grid_shape is None:
        raise ValueError(
            f"paste: {sampler.model.path} has no source volume grid to paste into (only 3D models, trained with "
            "--volume, have one)"
        )
    steps: list = [
        SinGANSegSampled(
            ("image", "label"),
            sampler,
            start_scale=options.start_scale,
            size=options.size,
            threshold=options.threshold,
            min_component=options.min_component,
            tumour_shift=options.tumour_shift,
        )
    ]
    style = singanseg_style(sampler, options, sampler.device)
    if style is not None:
        steps.append(style)
    if finish:
        steps += [IntensityFromTanhRanged("image"), IndexToLabeld("label", label_values=sampler.label_values)]
        if options.paste:
            steps.append(ResampleToGridd(("image", "label"), cfg.source_grid_affine, cfg.source_grid_shape))
        if output_dir is not None:
            steps.append(singanseg_case_writer(sampler, output_dir, overwrite))
    elif output_dir is not None or options.paste:
        raise ValueError("cases are written (and pasted) in source units: output_dir and paste need finish=True")
    channels = list(cfg.image_channels)
    return SynthesisPipeline(
        steps,
        label_values=sampler.label_values,
        modalities=channels,
        rgb=cfg.rgb,
        description=f"SinGAN-Seg synthetic samples of {cfg.source_name}",
        case_prefix=cfg.source_name,
        extra={"labels": {str(v): str(v) for v in sampler.label_values}, "modality": dict(enumerate(channels))},
        signature={
            "generator": "singanseg",
            "model_sha256": sampler.model.sha256(),
            "options": dataclasses.asdict(options),
            "finish": finish,
        },
        orthogonal_preview=cfg.spatial_dims == 3,
    )
