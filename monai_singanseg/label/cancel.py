"""Cooperative cancellation of a synthesis request: the server sets an event when the client goes, the work polls it.

A worker thread cannot be stopped from outside, so the request's work checks for cancellation where it can stop
cleanly: after every training iteration of a model trained at request time (:func:`cancel_handlers`, whose
finished scales stay in the model file for the next request to resume) and before the result is stored
(:func:`raise_if_cancelled`). The event reaches the work through a context variable that :func:`run_cancellable`
sets in the thread that runs the request, so nothing between the server route and the task changes signature.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from monai_singanseg.engines.handlers import CancelWhen

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "RequestCancelled",
    "run_cancellable",
    "cancel_requested",
    "raise_if_cancelled",
    "cancel_handlers",
]

T = TypeVar("T")

#: HTTP status of a request whose client closed the connection (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499

_CANCEL: ContextVar[threading.Event | None] = ContextVar("monai_singanseg_cancel", default=None)


class RequestCancelled(RuntimeError):
    """The request's client went away, so its work stopped; nothing was stored."""


def run_cancellable(event: threading.Event, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with :func:`cancel_requested` reporting ``event`` (set it from another thread to
    cancel): a worker thread's entry point."""
    token = _CANCEL.set(event)
    try:
        return fn(*args, **kwargs)
    finally:
        _CANCEL.reset(token)


def cancel_requested() -> bool:
    """True once the current request's cancel event is set (False outside a cancellable request)."""
    event = _CANCEL.get()
    return event is not None and event.is_set()


def raise_if_cancelled(what: str) -> None:
    """Raise :class:`RequestCancelled` (naming ``what`` was stopped) if the current request was cancelled."""
    if cancel_requested():
        raise RequestCancelled(f"{what}: cancelled, the client closed the request")


def cancel_handlers() -> list[CancelWhen]:
    """Handlers that stop a training run of the current request when it is cancelled (none outside a request)."""
    return [CancelWhen(cancel_requested)] if _CANCEL.get() is not None else []
