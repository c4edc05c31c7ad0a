"""The iterations of one SinGAN-Seg scale for M models at once, run as a MONAI engine (ConSinGAN's loop, batched)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from ignite.engine import Engine
from monai.engines import Trainer
from monai.handlers import LrScheduleHandler, TensorBoardStatsHandler

from monai_singanseg.engines.handlers import ProgressBar
from monai_singanseg.engines.singanseg import losses
from monai_singanseg.engines.singanseg.checkpoint import ModelInTraining
from monai_singanseg.engines.singanseg.settings import SinGANSegSettings
from monai_singanseg.engines.singanseg.stacked import StackedModules
from monai_singanseg.networks.singan import resize_to

__all__ = ["ScaleLoop", "draw", "reconstruction_noise", "mean_losses"]


def draw(
    models: Sequence[ModelInTraining], shape: Sequence[int], device: torch.device, uniform: bool = False
) -> torch.Tensor:
    """One ``shape`` draw per model from its own stream, stacked ``(M, *shape)``."""
    fn = torch.rand if uniform else torch.randn
    return torch.stack([fn(tuple(shape), generator=m.stream, device=device) for m in models])


def reconstruction_noise(rec_noise: torch.Tensor, sizes: list[list[int]]) -> list[torch.Tensor]:
    """The reconstruction noise of every scale: the fixed map at the coarsest scale, zeros above."""
    return [rec_noise] + [torch.zeros((1, rec_noise.shape[1], *sz), device=rec_noise.device) for sz in sizes[1:]]


def _resize_models(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """:func:`resize_to` of an ``(M, N, C, *spatial)`` batch (model and sample dims folded together)."""
    return resize_to(x.flatten(0, 1), size).unflatten(0, x.shape[:2])


class ScaleLoop:
    """The iterations of one scale for all models of a batch (one model is a batch of one).

    Args:
        settings: the training settings.
        device: the device the models are on.
        progress: show a progress bar.
        k: the scale.
        first: the lowest trained (concurrent) stage.
        models: the models.
        gens: stacked generators of scales ``0..k`` (those below ``first`` frozen, in eval mode).
        critic: the stacked critics of scale ``k``.
        amps: noise amplitudes ``(M, k + 1)`` (float64, like the single trainer's Python floats).
        pyr_reals: stacked real pyramids ``(M, 1, C, *size)`` per scale.
        sizes: spatial sizes per scale.
    """

    def __init__(
        self,
        settings: SinGANSegSettings,
        device: torch.device,
        progress: bool,
        k: int,
        first: int,
        models: list[ModelInTraining],
        gens: list[StackedModules],
        critic: StackedModules,
        amps: torch.Tensor,
        pyr_reals: list[torch.Tensor],
        sizes: list[list[int]],
    ) -> None:
        self.s, self.dev, self.progress = settings, device, progress
        self.k, self.first, self.models, self.gens, self.critic = k, first, models, gens, critic
        self.amps, self.sizes, self.real = amps, sizes, pyr_reals[k]
        self.n_img = models[0].config.num_image_channels
        self.rec_zeros = [torch.stack([m.rec_noise for m in models])] + [
            torch.zeros((len(models), 1, self.real.shape[2], *sz), device=self.dev) for sz in sizes[1:]
        ]
        self.rec_base = self._rec_base() if first > 0 else None

    def _rec_base(self) -> torch.Tensor:
        """Frozen part of the reconstruction path (per model with its pyramid, exactly as the single trainer)."""
        with torch.no_grad():
            outs = [
                m.pyramid(
                    reconstruction_noise(m.rec_noise, self.sizes),
                    m.config.noise_amplitudes,
                    self.sizes,
                    last_scale=self.first - 1,
                )
                for m in self.models
            ]
        return torch.stack(outs)

    def _pyramid(self, noise: list[torch.Tensor], start: torch.Tensor | None, first: int, last: int) -> torch.Tensor:
        """``SinGANPyramid.forward`` over the stacked models: scales ``first..last`` on ``(M, N, C, *size)`` noise."""
        x = start
        for j in range(first, last + 1):
            z = noise[j]
            prev = torch.zeros_like(z) if x is None else _resize_models(x, self.sizes[j])
            amp = self.amps[:, j].to(z.dtype).view(-1, *([1] * (z.ndim - 1)))  # as a Python float times z
            x = self.gens[j](amp * z, prev)
        if x is None:
            raise ValueError("no scale to run: first_scale > last_scale")
        return x

    def generate(self, noise: list[torch.Tensor], base: torch.Tensor | None) -> torch.Tensor:
        """The trained stages on ``noise`` from the frozen stages' output ``base``."""
        return self._pyramid(noise, base, self.first, self.k)

    def random_fake(self) -> torch.Tensor:
        """One random sample per model ``(M, 1, C, *size)`` (noise from each model's stream, scale by scale)."""
        noise = [draw(self.models, (1, self.real.shape[2], *sz), self.dev) for sz in self.sizes[: self.k + 1]]
        base = None
        if self.first > 0:
            with torch.no_grad():
                base = self._pyramid(noise, None, 0, self.first - 1)
        return self.generate(noise, base)

    def critic_step(self, opt: torch.optim.Optimizer) -> torch.Tensor:
        """One critic update of every model; returns the per-model critic losses."""
        with torch.no_grad():
            fake = self.random_fake()
        loss = losses.per_model_mean(self.critic(fake)) - losses.per_model_mean(self.critic(self.real))
        alpha = draw(self.models, (self.real.shape[1],) + (1,) * (self.real.ndim - 2), self.dev, uniform=True)
        loss = loss + self.s.gp_weight * losses.gradient_penalty(self.critic, self.real, fake, alpha)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        return loss.detach()

    def generator_step(self, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """One generator update of every model; returns the per-model adversarial and reconstruction losses."""
        s = self.s
        fake = self.random_fake()
        loss_adv = -losses.per_model_mean(self.critic(fake))
        loss_rec = torch.vmap(F.mse_loss)(self.generate(self.rec_zeros, self.rec_base), self.real)
        loss = loss_adv + s.rec_weight * loss_rec
        if s.label_area_weight > 0 and self.n_img < self.real.shape[2]:
            n = self.n_img
            loss = loss + s.label_area_weight * torch.vmap(losses.label_area_loss)(fake[:, :, n:], self.real[:, :, n:])
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        return loss_adv.detach(), loss_rec.detach()

    def _optimisers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer, list[Any], int]:
        """Adam over the stacked parameters (per-stage learning rates), MultiStepLR, iteration count."""
        s, k = self.s, self.k
        groups = [
            {"params": self.gens[j].parameters(), "lr": s.lr * s.lr_scale ** (k - j)} for j in range(self.first, k + 1)
        ]
        opt_g = torch.optim.Adam(groups, lr=s.lr, betas=s.betas)
        opt_d = torch.optim.Adam(self.critic.parameters(), lr=s.lr, betas=s.betas)
        iters = s.coarsest_iters if k == 0 else s.iters
        milestone = [max(1, int(s.lr_decay_at * iters))]
        scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestone, gamma=0.1) for o in (opt_g, opt_d)]
        return opt_g, opt_d, scheds, iters

    def iteration(self, engine: Engine, batchdata: Any = None) -> dict[str, torch.Tensor]:
        """One iteration (the scale engine's ``iteration_update``): critic steps, then generator steps, every model.

        Returns:
            Per-model losses ``{"critic", "adv", "rec"}`` (each ``(M,)``, on the device).
        """
        s = self.s
        zeros = torch.zeros(len(self.models), device=self.dev)
        loss_d = loss_adv = loss_rec = zeros
        self.critic.requires_grad_(True)
        for _ in range(s.critic_steps):
            loss_d = self.critic_step(self.opt_d)
        self.critic.requires_grad_(False)
        for _ in range(s.generator_steps):
            loss_adv, loss_rec = self.generator_step(self.opt_g)
        return {"critic": loss_d, "adv": loss_adv, "rec": loss_rec}

    def _scalars(self, output: dict[str, torch.Tensor]) -> dict[str, float]:
        """TensorBoard scalars of an iteration: ``model_<m>/scale_<k>/<loss>``."""
        return {
            f"model_{m}/scale_{self.k}/{name}": float(v[m])
            for name, v in output.items()
            for m in range(len(self.models))
        }

    def run(self, writer: Any, handlers: Sequence[Any] = ()) -> None:
        """All iterations of the scale, as a MONAI ``Trainer`` (one epoch of ``iters`` iterations).

        The learning rates decay through MONAI's ``LrScheduleHandler`` (per iteration); progress, TensorBoard
        (every 25 iterations) and ``handlers`` (any MONAI or ignite handler) attach to the scale's engine.
        """
        k = self.k
        self.opt_g, self.opt_d, scheds, iters = self._optimisers()
        desc = f"scale {k + 1}/{len(self.sizes)} {'x'.join(map(str, self.sizes[k]))} x{len(self.models)} models"
        engine_handlers: list[Any] = [LrScheduleHandler(sched, epoch_level=False, print_lr=False) for sched in scheds]
        engine_handlers.append(
            ProgressBar(desc, _mean_losses, per="iteration", every=25, disable=not self.progress, leave=False)
        )
        if writer is not None:
            engine_handlers.append(
                TensorBoardStatsHandler(
                    summary_writer=writer, iteration_log=25, epoch_log=False, output_transform=self._scalars
                )
            )
        engine = Trainer(
            device=self.dev,
            max_epochs=1,
            data_loader=range(iters),
            epoch_length=iters,
            iteration_update=self.iteration,
            handlers=[*engine_handlers, *handlers],
            decollate=False,
        )
        engine.run()


def mean_losses(output: dict[str, torch.Tensor]) -> dict[str, float]:
    """A scale engine's output as scalars: each loss averaged over the models (e.g. a ``StatsHandler``'s
    ``output_transform``)."""
    return {name: v.mean().item() for name, v in output.items()}


def _mean_losses(engine: Engine) -> dict[str, float]:
    """The progress bar's figures: the last iteration's :func:`mean_losses`."""
    return mean_losses(engine.state.output)
