"""The label-to-image iteration as a MONAI engine: paired slices in, one critic step and one generator step per batch.

:class:`Pix2PixTrainer` is a thin ``monai.engines.AdversarialTrainer`` whose iteration is pix2pix's (the
critics see the condition beside the image, they step first, the generator adds L1 and pix2pixHD's feature
matching). The data side is MONAI/torch's: a ``Dataset`` of ``{"condition", "image"}`` items, a sampler whose
per-epoch order comes from a generator the checkpoint saves, and a ``prepare_batch`` that augments each pair.
The builder that wires data, networks, checkpoints and handlers into it is
:mod:`~monai_singanseg.engines.pix2pix.trainer`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from monai.engines import AdversarialTrainer
from monai.engines.utils import default_prepare_batch
from monai.utils import AdversarialIterationEvents
from monai.utils import CommonKeys as Keys
from torch.utils.data import DataLoader

from monai_singanseg.engines.pix2pix.losses import critic_loss, feature_matching_loss, generator_adversarial_loss
from monai_singanseg.rng import forked_rng

__all__ = ["Pix2PixTrainer"]


class Pix2PixTrainer(AdversarialTrainer):
    """pix2pix with pix2pixHD's multi-scale critic and feature matching, as a MONAI ``AdversarialTrainer``.

    One iteration trains the critics on the real and the generated pair (both conditioned), then the generator
    against the critics (``gan_loss``: pix2pix's BCE or SPADE's hinge) + ``l1_weight`` x L1 +
    ``feature_matching_weight`` x feature matching (+ ``perceptual_weight`` x ``perceptual``, a VGG-19 term, when
    given). A generator with an appearance code (SPADE with
    ``style_channels``) renders each pair with the code its encoder draws from the real image, and adds
    ``kl_weight`` x the code's KL divergence from N(0, I) (a VAE, as brainSPADE), so codes drawn from N(0, I) render
    plausible contrasts. The iteration
    output holds ``Keys.IMAGE`` (condition), ``Keys.LABEL`` (real image), ``Keys.PRED`` (generated image),
    ``Keys.LOSS`` (the generator's loss) and the floats of :data:`ITERATION_LOSSES` and ``batch_size``, for
    handlers. Any MONAI or ignite handler attaches through ``train_handlers``.

    With ``random_state`` (a CPU generator state), :meth:`run` draws dropout from that private stream and
    leaves the caller's random state untouched; ``random_state`` holds the stream's state after the run.

    Args:
        device: the device the networks are on.
        max_epochs: total epochs (a resumed run sets ``state.epoch`` and ``state.iteration`` first).
        train_data_loader: batches of ``{"condition", "image"}``.
        g_network: the generator (condition -> image).
        g_optimizer: its optimiser.
        d_network: the critic, called as ``d_network(condition, image)`` -> one list of outputs per scale
            (hidden features..., patch logits), as :class:`~monai_singanseg.networks.Pix2PixCritic`.
        d_optimizer: its optimiser.
        l1_weight: weight of the L1 term (100 in pix2pix).
        feature_matching_weight: weight of pix2pixHD's feature matching (0: off).
        gan_loss: ``"bce"`` (pix2pix) or ``"hinge"`` (SPADE).
        kl_weight: weight of the appearance code's KL term (generators with a code).
        perceptual: the perceptual term ``perceptual(fake, real)`` (e.g. :class:`PerceptualLoss`; None: off).
        perceptual_weight: its weight.
        prepare_batch: turns a batch into ``(condition, image)`` on the device (e.g. :class:`AugmentedPairs`).
        train_handlers: handlers to attach, in order.
        random_state: the private random stream's state (None: draw from the global stream).
        kwargs: other ``AdversarialTrainer`` arguments (``epoch_length``, ``non_blocking``, ...).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        g_network: torch.nn.Module,
        g_optimizer: torch.optim.Optimizer,
        d_network: torch.nn.Module,
        d_optimizer: torch.optim.Optimizer,
        l1_weight: float = 100.0,
        feature_matching_weight: float = 10.0,
        gan_loss: str = "bce",
        kl_weight: float = 0.05,
        perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        perceptual_weight: float = 10.0,
        prepare_batch: Callable = default_prepare_batch,
        train_handlers: Sequence | None = None,
        random_state: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            g_network=g_network,
            g_optimizer=g_optimizer,
            g_loss_function=functools.partial(generator_adversarial_loss, kind=gan_loss),
            recon_loss_function=torch.nn.L1Loss(),
            d_network=d_network,
            d_optimizer=d_optimizer,
            d_loss_function=functools.partial(critic_loss, kind=gan_loss),
            prepare_batch=prepare_batch,
            train_handlers=train_handlers,
            decollate=False,
            optim_set_to_none=True,
            **kwargs,
        )
        self.l1_weight = float(l1_weight)
        self.feature_matching_weight = float(feature_matching_weight)
        self.kl_weight = float(kl_weight)
        self.perceptual = perceptual
        self.perceptual_weight = float(perceptual_weight)
        generator = getattr(g_network, "module", g_network)  # DDP wraps the generator
        self.appearance = bool(getattr(generator, "style_channels", 0))
        self.random_state = random_state

    def run(self) -> None:  # type: ignore[override]
        """Train up to ``max_epochs`` (from ``state.epoch``; nothing when it is reached), on the private stream if
        any."""
        if self.state.epoch >= self.state.max_epochs:
            return  # ignite would start afresh from epoch 0
        if self.random_state is None:
            super().run()
            return
        with forked_rng(self.state.device, state=self.random_state):
            try:
                super().run()
            finally:
                self.random_state = torch.get_rng_state()

    def _iteration(self, engine: Pix2PixTrainer, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        cond, real = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        state = engine.state
        state.g_network.train()
        state.d_network.train()
        if engine.appearance:  # the code of each real image, drawn by the generator's encoder (VAE)
            fake = engine.g_inferer(cond, state.g_network, real)
            kl = getattr(state.g_network, "module", state.g_network).kl_loss
        else:
            fake = engine.g_inferer(cond, state.g_network)
            kl = None
        engine.fire_event(AdversarialIterationEvents.GENERATOR_FORWARD_COMPLETED)
        # critics: real pairs -> 1, generated pairs -> 0
        state.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        real_outs = state.d_network(cond, real)
        loss_d = state.d_loss_function(real_outs, state.d_network(cond, fake.detach()))
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_LOSS_COMPLETED)
        loss_d.backward()
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_BACKWARD_COMPLETED)
        state.d_optimizer.step()
        engine.fire_event(AdversarialIterationEvents.DISCRIMINATOR_MODEL_COMPLETED)
        # generator: fool the critics, match their features of the real pair, stay close to the real image
        state.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        fake_outs = state.d_network(cond, fake)
        l1 = state.recon_loss_function(fake, real)
        engine.fire_event(AdversarialIterationEvents.RECONSTRUCTION_LOSS_COMPLETED)
        fm = feature_matching_loss(fake_outs, real_outs) if engine.feature_matching_weight > 0 else l1.new_zeros(())
        loss_g = state.g_loss_function(fake_outs) + engine.l1_weight * l1 + engine.feature_matching_weight * fm
        if kl is not None:
            loss_g = loss_g + engine.kl_weight * kl
        perceptual = engine.perceptual(fake, real) if engine.perceptual is not None else l1.new_zeros(())
        loss_g = loss_g + engine.perceptual_weight * perceptual
        engine.fire_event(AdversarialIterationEvents.GENERATOR_LOSS_COMPLETED)
        loss_g.backward()
        engine.fire_event(AdversarialIterationEvents.GENERATOR_BACKWARD_COMPLETED)
        state.g_optimizer.step()
        engine.fire_event(AdversarialIterationEvents.GENERATOR_MODEL_COMPLETED)
        return {
            Keys.IMAGE: cond,
            Keys.LABEL: real,
            Keys.PRED: fake.detach(),
            Keys.LOSS: loss_g.detach(),
            "loss_g": loss_g.item(),
            "loss_d": loss_d.item(),
            "l1": l1.item(),
            "feature_matching": fm.item(),
            "kl": 0.0 if kl is None else kl.item(),
            "perceptual": perceptual.item(),
            "batch_size": int(cond.shape[0]),
        }
