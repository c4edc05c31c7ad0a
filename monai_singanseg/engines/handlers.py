"""Ignite event handlers the product's trainers share: per-epoch loss means, a model-file checkpoint, progress.

They follow MONAI's handler shape (a class with ``attach(engine)``), so they sit in a ``train_handlers`` list
beside MONAI's own (``StatsHandler``, ``TensorBoardStatsHandler``, ``LrScheduleHandler``, ``ValidationHandler``,
``EarlyStopHandler``...). Each epoch's mean losses are written to ``engine.state.metrics``, where MONAI's
stats handlers read epoch-level values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from tqdm.auto import tqdm

__all__ = [
    "EpochLossHistory",
    "EpochCallback",
    "ModelFileCheckpoint",
    "ProgressBar",
    "RunCancelled",
    "CancelWhen",
    "close_when_done",
]


def close_when_done(engine: Engine, close: Callable[[], Any]) -> None:
    """Call ``close`` when ``engine``'s run completes, is terminated or fails; a failure is re-raised after it.

    Ignite re-raises an error only when no handler listens to ``EXCEPTION_RAISED``; this one closes the
    resource (a progress bar, a TensorBoard writer) and raises the error on.
    """

    def close_and_raise(_: Engine, error: BaseException) -> None:
        close()
        raise error

    engine.add_event_handler(Events.COMPLETED, lambda _: close())
    engine.add_event_handler(Events.TERMINATE, lambda _: close())
    engine.add_event_handler(Events.EXCEPTION_RAISED, close_and_raise)


class EpochLossHistory:
    """Means over each epoch's samples of scalar losses in ``engine.state.output``, kept in ``engine.state.history``.

    Each epoch appends ``{loss: mean, ..., "epoch", "seconds", "lr"}`` to ``engine.state.history`` (a list that
    may start with a resumed run's records) and copies it into ``engine.state.metrics``.

    Args:
        keys: the losses to average (keys of the iteration output dictionary).
        optimizer: the optimiser whose learning rate is recorded (as it was during the epoch).
        size_key: the output key holding the iteration's number of samples (the weight of its losses).
        history: the records of earlier epochs (resume).
    """

    def __init__(
        self,
        keys: Sequence[str],
        optimizer: torch.optim.Optimizer,
        size_key: str = "batch_size",
        history: Sequence[dict[str, float]] = (),
    ) -> None:
        self.keys = tuple(keys)
        self.optimizer = optimizer
        self.size_key = size_key
        self.history = list(history)
        self._sums: dict[str, float] = {}
        self._count = 0
        self._lr = 0.0
        self._started = 0.0

    def attach(self, engine: Engine) -> None:
        """Register with ``engine`` and expose the records as ``engine.state.history``."""
        engine.state.history = self.history
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def epoch_started(self, engine: Engine) -> None:
        self._sums = dict.fromkeys(self.keys, 0.0)
        self._count = 0
        self._lr = float(self.optimizer.param_groups[0]["lr"])
        self._started = time.perf_counter()

    def iteration_completed(self, engine: Engine) -> None:
        output = engine.state.output
        k = int(output[self.size_key])
        for key in self.keys:
            self._sums[key] += float(output[key]) * k
        self._count += k

    def epoch_completed(self, engine: Engine) -> None:
        record = {key: total / max(self._count, 1) for key, total in self._sums.items()}
        record.update(epoch=engine.state.epoch, seconds=time.perf_counter() - self._started, lr=self._lr)
        self.history.append(record)
        engine.state.metrics.update({key: record[key] for key in (*self.keys, "lr")})


class EpochCallback:
    """Calls ``fn(record)`` with each epoch's loss record; a True return stops training after that epoch.

    Attach after :class:`EpochLossHistory`. Sets ``engine.state.stop_requested`` for the checkpoint handler.
    """

    def __init__(self, fn: Callable[[dict[str, float]], bool | None]) -> None:
        self.fn = fn

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.fn(engine.state.history[-1]):
            engine.state.stop_requested = True
            engine.terminate()


class RunCancelled(RuntimeError):
    """A training run stopped by :class:`CancelWhen` (its model file holds the last checkpoint written before)."""


class CancelWhen:
    """Stops a run after any iteration at which ``cancelled()`` is True, by raising :class:`RunCancelled`.

    Raising (not ``engine.terminate()``) ends the caller's work too: a SinGAN-Seg trainer runs one engine per scale
    and would start the next one after a terminated scale. Checkpoints already written stay (resume continues).

    Args:
        cancelled: polled after every iteration (cheap: e.g. ``threading.Event.is_set``).
    """

    def __init__(self, cancelled: Callable[[], bool]) -> None:
        self.cancelled = cancelled

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.cancelled():
            raise RunCancelled(f"cancelled at iteration {engine.state.iteration}")


class ModelFileCheckpoint:
    """Writes the model file through ``save(engine)`` every ``every`` epochs, after the last and on an early stop.

    Attach after the handlers whose state the file records (history, callbacks). ``save`` is expected to
    write atomically (the product's model files are), so a killed run leaves the previous checkpoint.
    """

    def __init__(self, save: Callable[[Engine], None], every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"checkpoint every must be >= 1 epoch, got {every}")
        self.save = save
        self.every = every

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        if (
            getattr(engine.state, "stop_requested", False)
            or epoch % self.every == 0
            or epoch == engine.state.max_epochs
        ):
            self.save(engine)


class ProgressBar:
    """A tqdm bar over a run's epochs or iterations (a resumed run starts where it is), with a few live figures.

    Args:
        desc: the bar's label.
        postfix: ``engine -> {name: value}`` shown beside the bar (e.g. the last epoch's losses).
        per: advance per ``"epoch"`` or per ``"iteration"``.
        every: refresh the figures every N steps (reading them may wait for the GPU).
        disable: no bar (e.g. not a terminal, or tests).
        leave: keep the finished bar on screen.
    """

    def __init__(
        self,
        desc: str,
        postfix: Callable[[Engine], dict[str, float]] | None = None,
        per: str = "epoch",
        every: int = 1,
        disable: bool = False,
        leave: bool = True,
    ) -> None:
        if per not in ("epoch", "iteration"):
            raise ValueError(f"per must be 'epoch' or 'iteration', got {per!r}")
        self.desc, self.postfix, self.per, self.every = desc, postfix, per, max(1, int(every))
        self.disable, self.leave = disable, leave
        self._bar: Any = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        step = Events.EPOCH_COMPLETED if self.per == "epoch" else Events.ITERATION_COMPLETED
        engine.add_event_handler(step, self.step)
        close_when_done(engine, self.close)

    def started(self, engine: Engine) -> None:
        state = engine.state
        total, done = (
            (state.max_epochs, state.epoch)
            if self.per == "epoch"
            else (state.max_epochs * state.epoch_length, state.iteration)
        )
        self._bar = tqdm(
            desc=self.desc, total=total, initial=done, disable=self.disable, leave=self.leave, mininterval=1.0
        )

    def step(self, engine: Engine) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        done = engine.state.epoch if self.per == "epoch" else engine.state.iteration
        if self.postfix is not None and (done % self.every == 0 or done == self._bar.total):
            self._bar.set_postfix({name: f"{value:.4g}" for name, value in self.postfix(engine).items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
