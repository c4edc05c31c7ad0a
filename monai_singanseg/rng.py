"""A private torch random stream: library code draws from it and leaves the caller's random state untouched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["forked_rng"]


@contextlib.contextmanager
def forked_rng(
    device: torch.device | str, seed: int | None = None, state: torch.Tensor | None = None
) -> Iterator[None]:
    """Run a block on its own torch random stream; the caller's random state is unchanged afterwards.

    Library code never seeds the global generators (only entry points may): a trainer draws its noise,
    initial weights and dropout masks inside this block, seeded from its settings or restored from a
    checkpoint, so a run is reproducible and leaves no trace on the caller's random state.

    Args:
        device: the training device (its CUDA generator is forked too).
        seed: seed of the stream (None: leave the forked state as it was).
        state: a CPU generator state to restore instead (from :func:`torch.get_rng_state` inside a block).
    """
    dev = torch.device(device)
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(int(seed))
        if state is not None:
            torch.set_rng_state(state)
        yield
