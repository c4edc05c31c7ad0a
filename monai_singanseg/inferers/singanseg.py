"""Running a trained SinGAN-Seg model: the sampler and the MONAI transforms that draw synthetic pairs from it.

:class:`SinGANSegSampler` loads a model file and draws GAN tensors (image channels + tumour channels in
[-1, 1]). :class:`SinGANSegSample` / :class:`SinGANSegSampled` wrap it as randomisable MONAI transforms
that yield an ``(image, label)`` pair of MetaTensors carrying the source slice's affine, so a pair can be
written, resampled or fed to a segmentation network like the real slice.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import MapTransform, Randomizable, Transform

from monai_singanseg.device import resolve_device
from monai_singanseg.io.model_config import SINGANSEG_KIND, SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFile, ModelFileError, load_model_file
from monai_singanseg.networks.singan import SinGANPyramid
from monai_singanseg.rng import forked_rng
from monai_singanseg.transforms.gan import RandTumourDisplacement, SplitGANTensor
from monai_singanseg.transforms.intensity import INTENSITY_STATS_KEY, IntensityFromTanhRange, IntensityStats
from monai_singanseg.transforms.labels import IndexToLabel

__all__ = ["SinGANSegSampler", "SinGANSegSample", "SinGANSegSampled"]


class SinGANSegSampler:
    """Draws synthetic (image, label) pairs from a SinGAN-Seg model file.

    Args:
        model: a model file path or a loaded :class:`~monai_singanseg.io.modelfile.ModelFile`.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``/None.
        allow_incomplete: accept a model whose training was interrupted (samples at its finest trained scale).
        inferer: how the generator pyramid is called (MONAI ``Inferer``; default ``SimpleInferer``): with the
            per-scale noise list first, then the pyramid, amplitudes and sizes, as
            :meth:`~monai_singanseg.networks.SinGANPyramid.forward` takes them.

    Raises:
        ModelFileError: not a SinGAN-Seg model file, truncated, or incomplete (unless allowed).
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile,
        device: str | torch.device | None = None,
        allow_incomplete: bool = False,
        inferer: Inferer | None = None,
    ) -> None:
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.model = model if isinstance(model, ModelFile) else load_model_file(model, expected_kind=SINGANSEG_KIND)
        if self.model.kind != SINGANSEG_KIND:
            raise ModelFileError(f"{self.model.path}: this is a '{self.model.kind}' model, expected '{SINGANSEG_KIND}'")
        cfg: SinGANSegModelConfig = self.model.config
        if not cfg.complete and not allow_incomplete:
            raise ModelFileError(
                f"{self.model.path}: training was interrupted after {cfg.finished_scales} of {cfg.num_scales} scales; "
                "finish it with `train-singanseg ... --resume`"
            )
        if cfg.finished_scales < 1:
            raise ModelFileError(f"{self.model.path}: no trained scale to sample from")
        self.config = cfg
        self.device = resolve_device(device)
        n = cfg.finished_scales
        self.sizes: list[list[int]] = [list(s) for s in cfg.scale_sizes[:n]]
        self.amplitudes: list[float] = [float(a) for a in cfg.noise_amplitudes[:n]]
        with forked_rng("cpu"):  # the initial weights are overwritten: draw them without touching the caller's stream
            self.pyramid = SinGANPyramid(
                cfg.spatial_dims, cfg.channels, cfg.features[:n], cfg.num_layers, cfg.pad_as_background
            )
        try:
            self.pyramid.load_state_dict(self.model.state["generator"])
            self.rec_noise = self.model.tensors["reconstruction_noise"].float().to(self.device)
        except (KeyError, RuntimeError) as exc:
            raise ModelFileError(
                f"{self.model.path}: the generator weights do not fit the model's config: {exc}"
            ) from None
        if tuple(self.rec_noise.shape) != (1, cfg.channels, *self.sizes[0]):
            raise ModelFileError(
                f"{self.model.path}: reconstruction noise of shape {tuple(self.rec_noise.shape)} does not fit"
            )
        self.pyramid.to(self.device).eval().requires_grad_(False)
        if not all(torch.isfinite(p).all() for p in self.pyramid.parameters()):
            raise ModelFileError(f"{self.model.path}: the generator weights hold NaN or infinite values")
        if self.pyramid.spatial_dims == 2:  # NHWC convolutions: ~1.4x faster sampling on CPU
            self.pyramid.to(memory_format=torch.channels_last)
        self.num_image_channels = cfg.num_image_channels
        self.label_values: tuple[int, ...] = tuple(cfg.label_values)
        self.stats = IntensityStats.from_dict(dict(cfg.intensity_stats))

    @property
    def num_scales(self) -> int:
        """Number of trained scales."""
        return len(self.sizes)

    @property
    def affine(self) -> torch.Tensor:
        """4x4 affine of the source slice (the geometry samples are written with)."""
        return torch.tensor(self.config.source_affine, dtype=torch.float64)

    def affine_for(self, size: Sequence[int] | None = None) -> torch.Tensor:
        """The source affine with the pixel spacing scaled for an output of another spatial ``size``."""
        affine = self.affine.clone()
        if size is not None:
            for i, (f, o) in enumerate(zip(self.sizes[-1], size)):
                affine[:3, i] *= f / int(o)
        return affine

    def scaled_sizes(self, size: Sequence[int] | None) -> list[list[int]]:
        """Every scale's size for an output of spatial ``size`` (None: the trained sizes)."""
        if size is None:
            return self.sizes
        size = [int(s) for s in size]
        finest = self.sizes[-1]
        if len(size) != len(finest) or min(size) < 1:
            raise ValueError(f"output size must have {len(finest)} positive entries, got {size}")
        return [[max(1, round(s * o / f)) for s, o, f in zip(sz, size, finest)] for sz in self.sizes[:-1]] + [size]

    @torch.inference_mode()
    def reconstruction(self, last_scale: int | None = None) -> torch.Tensor:
        """The reconstruction of the training tensor (fixed noise) at ``last_scale`` ``(1, C, *spatial)``."""
        noise = [self.rec_noise] + [
            torch.zeros((1, self.rec_noise.shape[1], *s), device=self.device) for s in self.sizes[1:]
        ]
        return self.inferer(noise, self.pyramid, self.amplitudes, self.sizes, last_scale=last_scale)

    def reference_image(self) -> torch.Tensor:
        """The training slice's image channels as the model reconstructs them: ``(Ci, *spatial)`` in [-1, 1] on CPU.

        A model file holds no copy of its training image; the fixed-noise reconstruction at the finest scale
        (trained to match it) stands in for it, e.g. as the style image of SinGAN-Seg's style-transfer step.
        """
        return self.reconstruction()[0, : self.num_image_channels].clamp(-1.0, 1.0).cpu()

    @torch.inference_mode()
    def iter_samples(
        self,
        num: int = 1,
        start_scale: int = 0,
        size: Sequence[int] | None = None,
        batch_size: int = 16,
        seed: int | None = None,
        tumour_shift: float | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield batches of GAN tensors ``(n, C, *spatial)`` clamped to [-1, 1], ``num`` samples in all.

        Sample ``i`` depends only on ``seed`` and ``i``, not on ``batch_size`` (up to float rounding).

        Args:
            num: number of samples.
            start_scale: scale where random noise starts; the scales below follow the reconstruction path,
                so a higher start scale stays closer to the training image.
            size: output spatial size (another size/aspect: every scale's noise is scaled alike).
            batch_size: samples per forward pass.
            seed: random seed (None: unseeded).
            tumour_shift: give each sample a new tumour layout: the output of ``start_scale`` is warped by
                :class:`~monai_singanseg.transforms.gan.RandTumourDisplacement` (largest shift: this fraction of
                the short side; the tumour also turns, changes size and outline) before the finer scales add
                detail. None: the layout the model learnt (2D models only).
        """
        if num < 1 or batch_size < 1:
            raise ValueError("num and batch_size must be >= 1")
        if not 0 <= start_scale < self.num_scales:
            raise ValueError(f"start_scale must lie in [0, {self.num_scales - 1}], got {start_scale}")
        displace = None
        if tumour_shift is not None:
            if self.pyramid.spatial_dims != 2:
                raise ValueError("tumour_shift works on 2D models only")
            displace = RandTumourDisplacement(self.num_image_channels, max_shift=tumour_shift)
        sizes = self.scaled_sizes(size)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        channels = self.pyramid.channels
        base = self.reconstruction(start_scale - 1) if start_scale > 0 else None
        for first in range(0, num, batch_size):
            count = min(batch_size, num - first)
            per_sample, layout_seeds = [], []
            for _ in range(count):  # sample by sample: its noise, then its layout's seed
                per_sample.append([torch.randn((1, channels, *s), generator=gen) for s in sizes[start_scale:]])
                if displace is not None:
                    layout_seeds.append(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            noise: list[Any] = [None] * start_scale + [
                torch.cat([p[k] for p in per_sample]).to(self.device) for k in range(len(sizes) - start_scale)
            ]
            start = None if base is None else base.expand(count, *base.shape[1:])
            x = self.inferer(
                noise,
                self.pyramid,
                self.amplitudes,
                sizes,
                start=start,
                first_scale=start_scale,
                last_scale=start_scale,
            )
            if displace is not None:
                x = torch.stack([displace.set_random_state(s)(item) for s, item in zip(layout_seeds, x)])
            if start_scale + 1 < len(sizes):
                x = self.inferer(noise, self.pyramid, self.amplitudes, sizes, start=x, first_scale=start_scale + 1)
            yield x.clamp(-1.0, 1.0)

    def sample(
        self,
        num: int = 1,
        start_scale: int = 0,
        size: Sequence[int] | None = None,
        batch_size: int = 16,
        seed: int | None = None,
        tumour_shift: float | None = None,
    ) -> torch.Tensor:
        """Draw ``num`` GAN tensors ``(num, C, *spatial)`` in [-1, 1] (arguments as :meth:`iter_samples`)."""
        return torch.cat(list(self.iter_samples(num, start_scale, size, batch_size, seed, tumour_shift)))

    def split(
        self, x: torch.Tensor, threshold: float = 0.5, min_component: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GAN tensors -> image channels in [-1, 1] ``(N, Ci, *sp)`` and class-index labels ``(N, 1, *sp)``.

        Args:
            x: ``(N, C, *spatial)`` from :meth:`sample`.
            threshold: a pixel is background unless its largest label channel ``(x + 1) / 2`` exceeds it.
            min_component: remove tumour components smaller than this many pixels.
        """
        split = SplitGANTensor(self.num_image_channels, threshold, min_component)
        pairs = [split(sample) for sample in x]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def to_source(self, image: torch.Tensor, label: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One sample back to source units: image ``(Ci, *sp)`` in the source dtype, label values ``(1, *sp)``.

        Pixels outside the tumour whose image channels are all at the background level (-1) get the source's
        background value.
        """
        img = IntensityFromTanhRange(self.stats)(image.detach().cpu())
        values = IndexToLabel(self.label_values)(label.detach().cpu())
        return np.asarray(img), np.asarray(values)


class SinGANSegSample(Randomizable, Transform):
    """Draw one synthetic ``(image, label)`` pair of MetaTensors from a SinGAN-Seg model.

    The image is ``(Ci, *sp)`` in [-1, 1] (or the source units and dtype with ``source_units=True``), the
    label ``(1, *sp)`` class indices ``0..K-1`` (or label values, e.g. BraTS 0/1/2/4, with
    ``label_values=True``). Both carry the
    source slice's affine and ``meta["source_name"]``, ``meta["synthetic"] = True``, ``meta["label_values"]``
    and ``meta["intensity_stats"]`` (so :class:`~monai_singanseg.transforms.IntensityFromTanhRanged` and
    :class:`~monai_singanseg.transforms.IndexToLabeld` take them back to source units and label values).

    Args:
        model: model file path, a loaded :class:`ModelFile` or a :class:`SinGANSegSampler`.
        start_scale: scale where random noise starts (higher = closer to the training slice).
        size: output spatial size (None: the training size); the pixel spacing of the affine is scaled to match.
        threshold: background unless the largest label channel exceeds it.
        min_component: remove tumour components smaller than this many pixels.
        source_units: image in source units/dtype instead of [-1, 1].
        label_values: label values instead of class indices.
        device: device to run the generator on.
        tumour_shift: a new tumour layout per sample, shifted by up to this fraction of the side (None: the
            model's own layout; see :meth:`SinGANSegSampler.iter_samples`).
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile | SinGANSegSampler,
        start_scale: int = 0,
        size: Sequence[int] | None = None,
        threshold: float = 0.5,
        min_component: int = 0,
        source_units: bool = False,
        label_values: bool = False,
        device: str | torch.device | None = "cpu",
        tumour_shift: float | None = None,
    ) -> None:
        self.sampler = model if isinstance(model, SinGANSegSampler) else SinGANSegSampler(model, device=device)
        if not 0 <= start_scale < self.sampler.num_scales:
            raise ValueError(f"start_scale must lie in [0, {self.sampler.num_scales - 1}], got {start_scale}")
        self.start_scale = start_scale
        self.size = None if size is None else [int(v) for v in size]
        self.sampler.scaled_sizes(self.size)  # validates the size
        self.split = SplitGANTensor(self.sampler.num_image_channels, threshold, min_component)
        self.source_units = source_units
        self.label_values = label_values
        self.tumour_shift = tumour_shift
        self._seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw the seed of the next sample from this transform's random state (``set_random_state``)."""
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def _meta(self) -> dict[str, Any]:
        cfg = self.sampler.config
        return {
            "affine": self.sampler.affine_for(self.size),
            "source_name": cfg.source_name,
            "source_slice_index": cfg.source_slice_index,
            "filename_or_obj": f"{cfg.source_name}_synthetic_{self._seed}",
            "synthetic": True,
            "sample_seed": self._seed,
            "label_values": list(self.sampler.label_values),
            "image_channels": list(cfg.image_channels),
            INTENSITY_STATS_KEY: self.sampler.stats.to_dict(),
        }

    def __call__(self, data: Any = None, randomize: bool = True) -> tuple[MetaTensor, MetaTensor]:
        """Return a new synthetic ``(image, label)`` pair (``data`` is ignored)."""
        if randomize:
            self.randomize()
        x = self.sampler.sample(
            1, start_scale=self.start_scale, size=self.size, seed=self._seed, tumour_shift=self.tumour_shift
        )
        image, label = self.split(x[0])
        image, label = image.cpu(), label.cpu()
        if self.source_units or self.label_values:
            src_image, src_label = self.sampler.to_source(image, label)
            image = torch.from_numpy(src_image) if self.source_units else image
            label = torch.from_numpy(src_label) if self.label_values else label
        meta = self._meta()
        return MetaTensor(image, meta=dict(meta)), MetaTensor(label, meta=dict(meta))


class SinGANSegSampled(Randomizable, MapTransform):
    """Dictionary form of :class:`SinGANSegSample`: sets ``keys = (image_key, label_key)`` to a synthetic pair.

    Other entries of the dictionary are kept, so it can replace (or stand beside) a real-data loader.

    Args:
        keys: the image key and the label key, in that order.
        model: model file path, :class:`ModelFile` or :class:`SinGANSegSampler`.
        kwargs: the other arguments of :class:`SinGANSegSample`.
    """

    def __init__(
        self, keys: KeysCollection, model: str | os.PathLike | ModelFile | SinGANSegSampler, **kwargs: Any
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {self.keys}")
        self.sample = SinGANSegSample(model, **kwargs)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> SinGANSegSampled:
        super().set_random_state(seed, state)
        self.sample.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.sample.randomize()

    def __call__(self, data: Mapping[Hashable, Any] | None = None) -> dict[Hashable, Any]:
        d = dict(data or {})
        self.randomize()
        image, label = self.sample(randomize=False)
        image_key, label_key = self.keys
        d[image_key], d[label_key] = image, label
        return d
