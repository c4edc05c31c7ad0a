"""Sub-commands ``label-app``, ``label-serve`` and ``label-datastore`` (MONAI Label integration)."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from monai_singanseg.cli.options import add_run_options

__all__ = [
    "add_parsers",
    "run_app",
    "run_serve",
    "run_datastore",
    "INSTALL_HINT",
    "is_loopback",
    "auth_enabled",
    "exposure_warning",
]

#: how to install MONAI Label next to this package (monailabel's own requirements pull a CUDA torch).
INSTALL_HINT = (
    'pip install -e ".[label]" && pip install --no-deps monailabel==0.8.5 pydicom-seg==0.4.1 (see docs/label.md)'
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``label-app``, ``label-serve`` and ``label-datastore``."""
    a = subparsers.add_parser(
        "label-app",
        help="print the folder of the MONAI Label app shipped with the package",
        description="Print the MONAI Label app folder (for `monailabel start_server --app <folder>`).",
    )
    a.set_defaults(func=run_app)

    s = subparsers.add_parser(
        "label-serve",
        help="start a MONAI Label server with the package's app for a datastore",
        description="Run `monailabel start_server` with the package's app (needs the label extra; docs/label.md).",
    )
    s.add_argument("--studies", required=True, help="the datastore folder (see label-datastore)")
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0: all interfaces, then enable MONAI Label's "
        "authentication: docs/label.md)",
    )
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument(
        "--conf",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="app setting, repeatable, e.g. --conf singanseg_iters 100 (keys: docs/label.md)",
    )
    s.set_defaults(func=run_serve)

    d = subparsers.add_parser(
        "label-datastore",
        help="write a MONAI Label datastore (4D NIfTI images + labels/final/)",
        description="Write BraTS cases (or the embedded demo case) as a MONAI Label datastore; never overwrites.",
    )
    d.add_argument("--out", required=True, help="the datastore folder to write")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--brats", metavar="ROOT", help="folder of BraTS cases (<case>_{flair,t1,t1ce,t2,seg}.nii.gz)")
    src.add_argument("--demo", action="store_true", help="the embedded demo case (TCGA-FG-6692, cropped)")
    add_run_options(d, "--quiet")
    d.set_defaults(func=run_datastore)


def run_app(args: argparse.Namespace) -> int:
    """``label-app``: print the app folder."""
    from monai_singanseg.label import app_dir

    print(app_dir())
    return 0


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach: 127.0.0.0/8, ::1 or ``localhost``."""
    h = host.strip().strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def _monailabel_settings() -> Any:
    """MONAI Label's settings, read as the server will read them (environment, then ``./.env``)."""
    try:
        from monailabel.config import Settings

        return Settings()  # fresh: the environment the server will inherit, not the one of the first import
    except ValueError as exc:  # pydantic's ValidationError: a MONAI_LABEL_* variable that does not parse
        raise ValueError(
            f"MONAI Label's settings (MONAI_LABEL_* environment variables or ./.env) are invalid: {exc}"
        ) from exc


def auth_enabled() -> bool:
    """MONAI Label's ``MONAI_LABEL_AUTH_ENABLE``, read as the server reads it (environment, then ``./.env``)."""
    return bool(_monailabel_settings().MONAI_LABEL_AUTH_ENABLE)


def _check_cors_setting() -> None:
    """MONAI Label 0.8.5's start_server dies with a TypeError when MONAI_LABEL_CORS_ORIGINS is set: say so first."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(x) for x in version("monailabel").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        release = (0, 8)
    if release > (0, 8):  # checked against 0.8.5 only
        return
    origins = _monailabel_settings().MONAI_LABEL_CORS_ORIGINS
    try:
        json.dumps(origins)
    except TypeError:
        raise ValueError(
            "MONAI_LABEL_CORS_ORIGINS is set, and this MONAI Label version's start_server cannot start with it "
            "(it fails with 'Object of type AnyHttpUrl is not JSON serializable'); unset it (docs/label.md, "
            "'Authentication and network exposure')"
        ) from None


def exposure_warning(host: str, port: int, auth: bool) -> str | None:
    """The warning ``label-serve`` prints when it listens beyond loopback without authentication (None otherwise)."""
    if auth or is_loopback(host):
        return None
    return (
        f"warning: --host {host} is not a loopback address and MONAI Label's authentication is off "
        "(MONAI_LABEL_AUTH_ENABLE is not true): anyone who can reach port "
        f"{port} of this machine can read every image and label of the datastore, overwrite labels, upload images, "
        "run inference and training. Listen on 127.0.0.1 (the default), or enable authentication "
        "(MONAI_LABEL_AUTH_ENABLE=true with MONAI_LABEL_AUTH_REALM_URI of an OpenID Connect server such as Keycloak; "
        "see docs/label.md, 'Authentication and network exposure')."
    )


def run_serve(args: argparse.Namespace) -> int:
    """``label-serve``: check the settings and the datastore, then run the MONAI Label server until it stops."""
    from monai_singanseg.label import app_dir, app_settings

    studies = Path(args.studies)
    if not studies.is_dir():
        raise ValueError(
            f"{studies}: datastore folder not found (write one with `label-datastore --out {studies} ...`)"
        )
    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port}: a TCP port must be 1..65535")
    conf = {k: v for k, v in args.conf}
    app_settings(conf, str(studies), str(app_dir()))  # unknown keys and bad values fail here, before the server starts
    if importlib.util.find_spec("monailabel") is None:
        raise RuntimeError(f"MONAI Label is not installed; install it with: {INSTALL_HINT}")
    _check_cors_setting()
    warning = exposure_warning(args.host, args.port, auth_enabled())
    if warning:
        print(warning, file=sys.stderr, flush=True)
    cmd = [
        sys.executable,
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(app_dir()),
        "--studies",
        str(studies.resolve()),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    for key, value in args.conf:
        cmd += ["--conf", key, value]
    return subprocess.call(cmd)


def run_datastore(args: argparse.Namespace) -> int:
    """``label-datastore``: write the cases as a datastore (refusing to replace any file)."""
    from monai_singanseg.data import brats_datalist, demo_case
    from monai_singanseg.label import write_datastore

    items = [demo_case()] if args.demo else brats_datalist(args.brats)
    if not items:
        raise ValueError(f"{args.brats}: no BraTS cases found")
    entries = write_datastore(args.out, items, progress=not args.quiet)
    labelled = sum("label" in e for e in entries)
    print(f"wrote {len(entries)} image(s) ({labelled} with final labels) to {args.out}")
    return 0
