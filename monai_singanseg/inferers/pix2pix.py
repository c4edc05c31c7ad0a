"""Running a trained pix2pix model: whole synthetic multi-modal volumes rendered from label maps.

For a label volume and its brain mask, every axial slice that holds brain is cut to one square
in-plane box around the brain (:class:`~monai_singanseg.transforms.slices.AxialSliceGrid`, the same
geometry training used), rendered, resized back and pasted into a volume with the label's exact shape
and affine. A 2.5D model (``context_slices`` > 0) reads the condition of the neighbouring slices too, so
neighbouring rendered slices follow one another through the volume. Intensities go back to the training
data's range and dtype; voxels outside the brain (and slices without brain) stay background.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import MAX_SEED, convert_to_tensor

from monai_singanseg.device import resolve_device
from monai_singanseg.io.model_config import PIX2PIX_KIND, Pix2PixModelConfig
from monai_singanseg.io.modelfile import ModelFile, ModelFileError, load_model_file
from monai_singanseg.networks.pix2pix import Pix2PixGenerator
from monai_singanseg.networks.spade import GENERATOR_ARCHITECTURES, SPADEGenerator
from monai_singanseg.rng import forked_rng
from monai_singanseg.transforms.condition.array import (
    BuildCondition,
    ConditionError,
    check_same_grid,
    condition_channel_names,
)
from monai_singanseg.transforms.intensity.array import IntensityFromTanhRange, IntensityStats
from monai_singanseg.transforms.labels.array import LabelToIndex
from monai_singanseg.transforms.slices.grid import AxialSliceGrid

__all__ = [
    "PIX2PIX_KIND",
    "load_pix2pix",
    "generator_from_config",
    "Pix2PixRender",
    "Pix2PixRenderd",
    "RandAppearanced",
    "draw_appearance",
]


def draw_appearance(rng: Any, length: int) -> torch.Tensor | None:
    """A ``(1, length)`` appearance code from N(0, I) drawn with the numpy random state ``rng`` (None: no code)."""
    return torch.as_tensor(rng.standard_normal((1, length)), dtype=torch.float32) if length else None


def generator_from_config(config: Pix2PixModelConfig) -> Pix2PixGenerator | SPADEGenerator:
    """The generator described by a pix2pix model config (untrained weights): its U-Net or SPADE generator."""
    layout = {
        "spatial_dims": 2,
        "in_channels": config.generator_in_channels,
        "out_channels": len(config.modalities),
        "size": config.size,
        "channels": config.generator_channels,
    }
    if config.architecture == "spade":
        return SPADEGenerator(
            **layout,
            max_channels=config.generator_max_channels,
            style_channels=config.style_channels,
            noise=config.noise,
        )
    if config.architecture != "unet":
        raise ModelFileError(
            f"generator architecture {config.architecture!r} is not one this version knows "
            f"({', '.join(GENERATOR_ARCHITECTURES)}): upgrade monai-singanseg"
        )
    return Pix2PixGenerator(**layout, dropout=config.dropout, norm=config.norm, upsample=config.upsample)


def load_pix2pix(
    model: str | os.PathLike | ModelFile, device: str | torch.device = "cpu"
) -> tuple[Pix2PixGenerator, Pix2PixModelConfig]:
    """Load a pix2pix model file (through the one model-file loader) -> ``(generator in eval mode, config)``."""
    mf = model if isinstance(model, ModelFile) else load_model_file(model, expected_kind=PIX2PIX_KIND)
    if mf.kind != PIX2PIX_KIND:
        raise ModelFileError(f"{mf.path}: this is a '{mf.kind}' model, expected a '{PIX2PIX_KIND}' model")
    try:
        with forked_rng("cpu"):  # the initial weights are overwritten: leave the caller's random stream alone
            generator = generator_from_config(mf.config)
        generator.load_state_dict(mf.state["generator"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{mf.path}: the generator weights do not fit the model's config: {exc}") from None
    if not all(torch.isfinite(p).all() for p in generator.parameters()):
        raise ModelFileError(f"{mf.path}: the generator weights hold NaN or infinite values")
    return generator.to(device).eval(), mf.config


class Pix2PixRender(Randomizable, Transform):
    """Render a synthetic multi-modal volume for a label volume with a trained pix2pix model.

    A SPADE model with an appearance code renders every call with a new code drawn from N(0, I) by
    :meth:`randomize` (the transform's own random state: ``set_random_state(seed)`` makes it repeatable), one code
    for all slices of the volume, so one label map renders with many plausible contrasts; ``appearance=`` gives a
    code instead. A SPADE model with noise inputs draws its noise maps from a seed that :meth:`randomize` draws
    too, so its fine detail differs between renders of one label map. A U-Net model (or SPADE without a code or
    noise) renders a deterministic function of the condition.

    Args:
        model: model file path or loaded :class:`ModelFile`.
        device: torch device (``"cpu"``, ``"cuda"``).
        batch_size: slices per generator call.
        dropout: keep dropout active while rendering (pix2pix's only noise; then the render depends on
            the torch seed). Off by default: the render is a deterministic function of the condition.
        inferer: how the generator is called on each batch of condition slices (MONAI ``Inferer``;
            default ``SimpleInferer``).
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        dropout: bool = False,
        inferer: Inferer | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.model = model if isinstance(model, ModelFile) else load_model_file(model, expected_kind=PIX2PIX_KIND)
        self.generator, self.config = load_pix2pix(self.model, self.device)
        if dropout:
            for m in self.generator.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.train()
        cond = self.config.condition
        self.label_values = tuple(cond.label_values)
        self.tissue_classes = cond.tissue_classes
        if list(cond.channels) != condition_channel_names(self.label_values, self.tissue_classes):
            raise ConditionError(f"model condition channels {cond.channels} are not ones this version can build")
        self.stats = IntensityStats.from_dict(dict(self.config.intensity_stats))
        self.size = self.config.size
        self.margin = self.config.margin
        self.batch_size = batch_size
        self.modalities = tuple(self.config.modalities)
        self.style_channels = int(self.config.style_channels)
        self.appearance: torch.Tensor | None = None
        self.noise_seed: int | None = None

    @property
    def varies(self) -> bool:
        """Whether renders of one label map differ (a model with an appearance code or noise inputs)."""
        return bool(self.style_channels or self.config.noise)

    def draw(self, rng: Any) -> tuple[torch.Tensor | None, int | None]:
        """A render's random inputs drawn with the numpy random state ``rng``: its appearance code (None: a model
        without one) and the seed of its noise maps (None: a model without noise inputs)."""
        code = draw_appearance(rng, self.style_channels)
        return code, (int(rng.randint(MAX_SEED)) if self.config.noise else None)

    def randomize(self, data: Any = None) -> None:
        """Draw the next render's appearance code and noise seed (:meth:`draw`)."""
        self.appearance, self.noise_seed = self.draw(self.R)

    def check_appearance(self, appearance: NdarrayOrTensor) -> torch.Tensor:
        """``appearance`` as a ``(1, style_channels)`` code of this model (ValueError naming the lengths)."""
        code = convert_to_tensor(appearance, track_meta=False).float().reshape(1, -1)
        if not self.style_channels:
            raise ValueError(
                f"an appearance code was given, but this model ({self.config.architecture}) renders without one"
            )
        if code.shape[1] != self.style_channels:
            raise ValueError(
                f"appearance code of length {code.shape[1]}; this model's codes have {self.style_channels} values"
            )
        return code

    @torch.no_grad()
    def render_condition(
        self,
        condition: NdarrayOrTensor,
        affine: NdarrayOrTensor,
        appearance: torch.Tensor | None = None,
        noise_seed: int | None = None,
    ) -> torch.Tensor:
        """Condition ``(C, *sp)`` -> rendered volume ``(M, *sp)`` in [-1, 1] (-1 outside the brain), every slice with
        the appearance code ``appearance`` ``(1, style_channels)`` (models with a code) and the noise maps of
        ``noise_seed`` (models with noise inputs); what is None and the model needs is drawn by :meth:`randomize`."""
        if (appearance is None and self.style_channels) or (noise_seed is None and self.config.noise):
            self.randomize()
        code = self.appearance if appearance is None else self.check_appearance(appearance)
        seed = self.noise_seed if noise_seed is None else int(noise_seed)
        extra = () if code is None else (code.to(self.device),)
        noise = {"noise": torch.Generator().manual_seed(seed)} if self.config.noise else {}
        cond = convert_to_tensor(condition, track_meta=False).float()
        if cond.shape[0] != len(self.config.condition.channels):
            raise ConditionError(
                f"condition has {cond.shape[0]} channels but the model was trained with "
                f"{self.config.condition.channels}"
            )
        grid = AxialSliceGrid(cond[:1], affine, self.size, self.margin)
        out = torch.full((len(self.modalities), *cond.shape[1:]), -1.0)
        for start in range(0, len(grid.brain_slices), self.batch_size):
            idx = grid.brain_slices[start : start + self.batch_size]
            x = grid.extract_with_context(cond, idx, self.config.context_slices).to(self.device)
            grid.paste(self.inferer(x, self.generator, *extra, **noise).cpu(), idx, out, mode="bicubic")
        return torch.where(cond[:1] > 0.5, out.clamp(-1.0, 1.0), torch.full_like(out, -1.0))

    def __call__(
        self,
        label: NdarrayOrTensor,
        brain_mask: NdarrayOrTensor,
        tissue: NdarrayOrTensor | None = None,
        appearance: NdarrayOrTensor | None = None,
        noise_seed: int | None = None,
    ) -> MetaTensor:
        """Args:
        label: ``(1, X, Y, Z)`` label map holding the model's label VALUES (e.g. BraTS 0/1/2/4).
        brain_mask: ``(1, X, Y, Z)`` brain mask on the label's grid (non-zero = brain; tumour voxels count as brain).
        tissue: ``(1, X, Y, Z)`` tissue classes (:class:`TissueClasses`), needed iff the model uses them.
        appearance: the appearance code (SPADE models with one; None: a new code from :meth:`randomize`).
        noise_seed: the seed of the noise maps (SPADE models with noise inputs; None: a new one from
            :meth:`randomize`).

        Returns:
            ``(M, X, Y, Z)`` MetaTensor, one channel per modality, in the training intensity range and dtype,
            with the label's metadata and affine; background outside the brain.

        Raises:
            LabelValueError: label values outside the model's set.
            ConditionError: shape/affine mismatch, empty brain mask, tissue map missing or not expected.
        """
        code = None if appearance is None else self.check_appearance(appearance)  # refused before any work
        lab = convert_to_tensor(label, track_meta=False)
        if lab.ndim != 4 or lab.shape[0] != 1:
            raise ConditionError(f"expected a (1, X, Y, Z) label volume, got shape {tuple(lab.shape)}")
        check_same_grid(label, brain_mask, "brain mask")
        brain = convert_to_tensor(brain_mask, track_meta=False) != 0
        if not brain.any():
            raise ConditionError("brain mask is empty (no non-zero voxel)")
        if tissue is not None:
            check_same_grid(label, tissue, "tissue map")
        # work inside the bounding box of brain and label only (every non-zero label voxel lies in it)
        nonzero = torch.nonzero((brain | (lab != 0))[0])
        box = (slice(None),) + tuple(
            slice(int(a), int(b) + 1) for a, b in zip(nonzero.min(0).values, nonzero.max(0).values)
        )
        index = LabelToIndex(self.label_values)(lab[box])
        cropped_tissue = None if tissue is None else convert_to_tensor(tissue, track_meta=False)[box]
        condition = BuildCondition(len(self.label_values), self.tissue_classes)(index, brain[box], cropped_tissue)
        affine = label.affine if isinstance(label, MetaTensor) else torch.eye(4, dtype=torch.float64)
        rendered = self.render_condition(condition, affine, code, noise_seed)
        image = convert_to_tensor(
            IntensityFromTanhRange(self.stats)(rendered, mask=condition[:1] > 0.5), track_meta=False
        )
        background = torch.tensor(self.stats.background, dtype=torch.float64).view(-1, 1, 1, 1)
        out = background.expand(len(self.modalities), *lab.shape[1:]).to(image.dtype).clone()
        out[box] = image
        meta = dict(label.meta) if isinstance(label, MetaTensor) else {}
        meta.update(affine=torch.as_tensor(affine).clone(), source_dtype=self.stats.dtype)
        return MetaTensor(out, meta=meta)


class RandAppearanced(Randomizable, MapTransform):
    """Draw an appearance code from N(0, I) into ``d[key]`` for a renderer whose model has one, and the seed of its
    noise maps into ``d[noise_key]`` for a model with noise inputs (else nothing).

    The pipeline's random step before :class:`Pix2PixRenderd`: the render itself then is a deterministic function
    of its inputs (a resumed synthesis replays this cheap step, not the render).

    Args:
        renderer: the renderer whose code length is drawn.
        key: where the code goes (``(1, style_channels)``).
        noise_key: where the noise seed goes.
    """

    def __init__(self, renderer: Pix2PixRender, key: str = "appearance", noise_key: str = "noise_seed") -> None:
        super().__init__([key, noise_key], allow_missing_keys=True)
        self.renderer, self.key, self.noise_key = renderer, key, noise_key
        self.code: torch.Tensor | None = None
        self.noise_seed: int | None = None

    def randomize(self, data: Any = None) -> None:
        self.code, self.noise_seed = self.renderer.draw(self.R)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if self.code is not None:
            d[self.key] = self.code
        if self.noise_seed is not None:
            d[self.noise_key] = self.noise_seed
        return d


class Pix2PixRenderd(MapTransform):
    """Dictionary :class:`Pix2PixRender`: ``d[output_key] = render(d[label_key], d[brain_key], d[tissue_key])``.

    Args:
        model: model file path, loaded :class:`ModelFile`, or a :class:`Pix2PixRender`.
        label_key: label map (label values).
        brain_key: brain mask.
        output_key: where to store the rendered image.
        tissue_key: tissue map key (used only if the model has tissue channels).
        device: torch device.
        batch_size: slices per generator call.
        appearance_key: the appearance code (:class:`RandAppearanced`; missing: the renderer draws one).
        noise_key: the seed of the noise maps (:class:`RandAppearanced`; missing: the renderer draws one).
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile | Pix2PixRender,
        label_key: str = "label",
        brain_key: str = "brain_mask",
        output_key: str = "image",
        tissue_key: str = "tissue",
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        appearance_key: str = "appearance",
        noise_key: str = "noise_seed",
    ) -> None:
        super().__init__([label_key, brain_key])
        self.label_key, self.brain_key, self.output_key, self.tissue_key = label_key, brain_key, output_key, tissue_key
        self.appearance_key, self.noise_key = appearance_key, noise_key
        self.renderer = (
            model if isinstance(model, Pix2PixRender) else Pix2PixRender(model, device=device, batch_size=batch_size)
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        tissue = d.get(self.tissue_key) if self.renderer.tissue_classes else None
        d[self.output_key] = self.renderer(
            d[self.label_key], d[self.brain_key], tissue, d.get(self.appearance_key), d.get(self.noise_key)
        )
        return d
