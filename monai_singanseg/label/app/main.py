"""The monai-singanseg MONAI Label app: ``monailabel start_server --app <this folder> --studies <datastore>``.

Models (``GET /info/``): ``singanseg`` synthesises a new labelled image from a labelled datastore image with the
image's own SinGAN-Seg model (trained on first use and cached); ``pix2pix`` (when its model file is found) renders
a whole synthetic 4-modality volume for a deformed copy of the image's label. Trainers: ``singanseg`` trains those
models for
all labelled images. Settings: ``--conf KEY VALUE`` (see ``monai_singanseg.label.options.CONF_KEYS``).

Bad infer requests are client errors: MONAI Label 0.8.5 answers 500 for an unknown model, a request without image
and a ``params`` form field that is not JSON (the last two are raised in its endpoint, before the app is called), so
the app checks them first (:func:`guard_infer_endpoint`) and answers 404/422 with a message.

Inference runs off the server's event loop (:func:`serve_infer_off_the_event_loop`): MONAI Label 0.8.5 runs it on the
loop, so one long synthesis would hold up every other request; here ``--conf infer_concurrency`` syntheses run at once
in worker threads, ``--conf infer_queue`` more wait, and a request beyond that is answered 503 (busy); a request
whose client closes the connection is cancelled and frees its worker.

Authentication (``MONAI_LABEL_AUTH_ENABLE=true``): MONAI Label 0.8.5 decodes bearer tokens with ``jwt.decode``
without the ``algorithms`` argument that PyJWT 2 (its own requirement) demands, so it refuses every token, valid
or not. The app passes the RSA algorithms of an OpenID Connect realm key (:func:`fix_token_decoding`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import inspect
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

from monai_singanseg import __version__
from monai_singanseg.label.cancel import CLIENT_CLOSED_REQUEST, run_cancellable
from monai_singanseg.label.infer import LabelRequestError, Pix2PixInferTask, SinGANSegInferTask, SyntheticInferTask
from monai_singanseg.label.options import app_settings, label_names
from monai_singanseg.label.train import SinGANSegTrainTask

logger = logging.getLogger(__name__)

_GUARDED = "_monai_singanseg_guarded"
_OFF_LOOP = "_monai_singanseg_off_the_event_loop"
#: the signature algorithms accepted for bearer tokens: those of the realm's RSA public key (Keycloak signs RS256).
TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_PARAMS_EXAMPLE = '{"seed": 7}'


def _unknown_model(model: Any, models: Any) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"model {model!r} is not served by this app; its models: {', '.join(sorted(models)) or 'none'} "
        "(GET /info/ lists them)",
    )


def check_infer_request(
    models: Any, model: Any, image: Any, params: Any, has_file: bool = False, session_id: Any = ""
) -> None:
    """Refuse an infer request MONAI Label would answer with 500: unknown model, no image, ``params`` not a JSON object.

    Raises:
        HTTPException: 404 for an unknown model, 422 for a missing/empty image or bad ``params``.
    """
    if model not in models:
        raise _unknown_model(model, models)
    if not has_file and not session_id and not (isinstance(image, str) and image.strip()):
        raise HTTPException(
            status_code=422,
            detail=f"missing 'image': give a datastore image id, POST /infer/{model}?image=<id> "
            "(GET /datastore/ lists the ids)",
        )
    if isinstance(params, str) and params.strip():
        try:
            value = json.loads(params)
        except json.JSONDecodeError as exc:
            raise HTTPException(
                status_code=422,
                detail=f"form field 'params' is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                f"give a JSON object, e.g. params={_PARAMS_EXAMPLE}",
            ) from exc
        if not isinstance(value, dict):
            raise HTTPException(
                status_code=422,
                detail=f"form field 'params' must be a JSON object, e.g. params={_PARAMS_EXAMPLE}, not a JSON "
                f"{type(value).__name__}",
            )


def guard_infer_endpoint() -> bool:
    """Wrap MONAI Label's ``POST /infer/<model>`` handler so that bad requests are 4xx, not 500.

    MONAI Label 0.8.5's ``monailabel.endpoints.infer.run_inference`` (called by the route for every request) raises
    ``HTTPException(500)`` when neither ``image``, a file nor a session is given, and lets ``json.loads(params)`` and
    the app's "no such model" error escape as 500 Internal Server Error. The route looks the function up in its
    module at each call, so replacing it there puts :func:`check_infer_request` in front of it. Idempotent; returns
    False (and changes nothing) when MONAI Label's handler does not have the expected form.
    """
    try:
        from monailabel.endpoints import infer as endpoint
        from monailabel.interfaces.utils.app import app_instance
    except Exception:  # not running inside a MONAI Label server installation
        return False
    original: Callable[..., Any] | None = getattr(endpoint, "run_inference", None)
    if original is None:
        return False
    if getattr(original, _GUARDED, False):
        return True
    signature = inspect.signature(original)
    if not {"model", "image", "session_id", "params", "file"} <= set(signature.parameters):
        logger.warning("MONAI Label's infer endpoint has an unexpected form; bad infer requests may answer 500")
        return False

    @functools.wraps(original)
    def run_inference(*args: Any, **kwargs: Any) -> Any:
        values = signature.bind_partial(*args, **kwargs).arguments
        models = getattr(app_instance(), "_infers", {}) or {}
        check_infer_request(
            models,
            values.get("model"),
            values.get("image", ""),
            values.get("params", "{}"),
            has_file=bool(values.get("file")),
            session_id=values.get("session_id", ""),
        )
        return original(*args, **kwargs)

    setattr(run_inference, _GUARDED, True)
    endpoint.run_inference = run_inference
    return True


class InferGate:
    """At most ``concurrency`` syntheses run at once and ``queue`` more wait; a request beyond that is refused as busy.

    Args:
        concurrency: syntheses that run at the same time (each in a worker thread).
        queue: requests that may wait for a free worker.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency, self.queue = int(concurrency), int(queue)
        self._running = asyncio.Semaphore(self.concurrency)
        self._admitted = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a worker for the block (waiting for one if all are busy).

        Raises:
            HTTPException: 503 when ``concurrency`` requests run and ``queue`` wait already.
        """
        if self._admitted >= self.concurrency + self.queue:
            raise HTTPException(
                status_code=503,
                detail=f"busy: {self.concurrency} synthesis request(s) running and {self.queue} waiting (the most "
                "this server takes, --conf infer_concurrency / infer_queue); try again later",
                headers={"Retry-After": "30"},
            )
        self._admitted += 1
        try:
            async with self._running:
                yield
        finally:
            self._admitted -= 1


async def _cancel_on_disconnect(request: Any, cancel: threading.Event, every: float = 0.5) -> None:
    """Set ``cancel`` once the client of ``request`` has closed its connection (polled every ``every`` seconds)."""
    while not await request.is_disconnected():
        await asyncio.sleep(every)
    logger.info("client of %s closed the request: cancelling it", request.url.path)
    cancel.set()


def release_memory() -> None:
    """Give the memory a finished request freed back to the system: a garbage collection, then glibc's
    ``malloc_trim`` (worker threads allocate from their own malloc arenas, which glibc keeps otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def serve_infer_off_the_event_loop(concurrency: int, queue: int) -> bool:
    """Run MONAI Label's ``POST /infer/<model>`` in worker threads, so the server keeps answering while it runs.

    MONAI Label 0.8.5's route is an ``async`` function that calls the whole inference synchronously, on the server's
    event loop: while one synthesis runs (minutes, when a model trains at request time), ``/info``, ``/datastore``
    and every other request wait. This replaces that route in the running server by one with the same parameters
    that awaits the inference in a worker thread (``run_in_threadpool``) behind an :class:`InferGate`. A request
    whose client has gone while it waited never starts; one whose client goes while it runs is cancelled
    (:mod:`~monai_singanseg.label.cancel`: a model in training stops after its current iteration, nothing is
    stored) and frees its worker. After each request the freed memory goes back to the system
    (:func:`release_memory`). Idempotent; returns False (and changes nothing) outside a
    MONAI Label server or when the route does not have the expected form.
    """
    if "monailabel.app" not in sys.modules:  # not inside a running MONAI Label server
        return False
    try:
        from fastapi.routing import APIRoute
        from monailabel.endpoints import infer as endpoint
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
    except Exception:  # not a MONAI Label installation
        return False
    router = endpoint.router  # the server includes this router (FastAPI reads its routes at each request)
    route = next(
        (r for r in router.routes if isinstance(r, APIRoute) and r.path.endswith("/{model}") and "POST" in r.methods),
        None,
    )
    if route is None or getattr(route.endpoint, _OFF_LOOP, False):
        return route is not None
    signature = inspect.signature(route.endpoint)
    if not {"background_tasks", "model", "image", "params", "file", "user"} <= set(signature.parameters):
        logger.warning("MONAI Label's infer route has an unexpected form; inference runs on the event loop")
        return False
    gate = InferGate(concurrency, queue)

    async def api_run_inference(http_request: Request, **kwargs: Any) -> Any:
        ran = False
        try:
            async with gate.slot():
                if await http_request.is_disconnected():  # the client left while the request waited
                    raise HTTPException(
                        status_code=CLIENT_CLOSED_REQUEST, detail="client closed the request before it started"
                    )
                kwargs.pop("user", None)  # the route's authentication dependency, already checked
                cancel, ran = threading.Event(), True
                watcher = asyncio.create_task(_cancel_on_disconnect(http_request, cancel))
                try:
                    return await run_in_threadpool(run_cancellable, cancel, endpoint.run_inference, **kwargs)
                finally:
                    watcher.cancel()
        finally:
            if ran:  # once the worker is free for the next request; a refused request freed nothing
                await run_in_threadpool(release_memory)

    parameters = [inspect.Parameter("http_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    parameters += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    api_run_inference.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    setattr(api_run_inference, _OFF_LOOP, True)
    router.routes.remove(route)
    path = route.path.removeprefix(router.prefix)  # add_api_route adds the router's prefix again
    router.add_api_route(path, api_run_inference, methods=["POST"], summary=route.summary, name=route.name)
    logger.info("inference runs in worker threads: %d at a time, %d waiting at most", concurrency, queue)
    return True


class _JWTWithAlgorithms:
    """The ``jwt`` module as MONAI Label's auth module sees it, with ``algorithms`` given to ``decode``."""

    _monai_singanseg_shim = True

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("algorithms", list(TOKEN_ALGORITHMS))
        return self._module.decode(*args, **kwargs)


def fix_token_decoding() -> bool:
    """Make MONAI Label 0.8.5's token check work under PyJWT 2 (see the module docstring); idempotent.

    ``monailabel.endpoints.user.auth.from_token`` calls ``jwt.decode(token, key, options=...)``; PyJWT 2 raises
    "It is required that you pass in a value for the 'algorithms' argument" for that, which MONAI Label answers
    with 401 for every request. Only that module's ``jwt`` is replaced, by one whose ``decode`` defaults
    ``algorithms`` to :data:`TOKEN_ALGORITHMS` (never HMAC: the key is the realm's public key). Signature, expiry
    and role checks stay MONAI Label's own.
    """
    try:
        import jwt
        from monailabel.endpoints.user import auth
    except Exception:  # MONAI Label or PyJWT not installed
        return False
    current = getattr(auth, "jwt", None)
    if getattr(current, "_monai_singanseg_shim", False):
        return True
    if current is not jwt:
        return False
    auth.jwt = _JWTWithAlgorithms(jwt)
    return True


class SinGANSegLabelApp(MONAILabelApp):
    """MONAI Label app serving SinGAN-Seg synthesis and training for a datastore of labelled images.

    Args:
        app_dir: this folder.
        studies: the datastore (a local folder of NIfTI images with ``labels/final/``).
        conf: ``--conf`` values (``singanseg_iters``, ``singanseg_max_size``, ``label_values``, ...).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        guard_infer_endpoint()
        fix_token_decoding()
        self.options = app_settings(conf, studies, app_dir)
        serve_infer_off_the_event_loop(self.options.infer_concurrency, self.options.infer_queue)
        logger.info("monai-singanseg app settings: %s", self.options.summary())
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-singanseg",
            description="Synthetic labelled images from labelled datastore images (SinGAN-Seg, pix2pix)",
            version=__version__,
            labels=label_names(self.options.label_values),
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {"singanseg": SinGANSegInferTask(self.options, self.datastore())}
        pix2pix = Pix2PixInferTask(self.options, self.datastore())
        if pix2pix.is_valid():
            infers["pix2pix"] = pix2pix
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        return {"singanseg": SinGANSegTrainTask(self.options)}

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Run an infer task; synthesis requests must name a datastore image and never save over its labels."""
        request = dict(request)
        model = request.get("model")
        if model not in self._infers:
            raise _unknown_model(model, self._infers)
        image = request.get("image")
        if image is None or (isinstance(image, str) and not image.strip()):
            raise HTTPException(
                status_code=422, detail=f"missing 'image': give a datastore image id, POST /infer/{model}?image=<id>"
            )
        if isinstance(self._infers.get(request.get("model", "")), SyntheticInferTask):
            store = datastore or self.datastore()
            image = request.get("image")
            if isinstance(image, str) and not os.path.exists(image):
                if not store.get_image_uri(image):
                    raise HTTPException(
                        status_code=404,
                        detail=f"image {image!r} is not in the datastore ({len(store.list_images())} images; "
                        "GET /datastore/ lists them)",
                    )
                request["image_id"] = image
            request["save_label"] = False  # the result belongs to the new synthetic image, not to this one
        try:
            return super().infer(request, datastore)
        except LabelRequestError as exc:
            if exc.status_code == CLIENT_CLOSED_REQUEST:
                logger.info("request cancelled: %s", exc)
            raise HTTPException(status_code=exc.status_code, detail=str(exc)) from exc
