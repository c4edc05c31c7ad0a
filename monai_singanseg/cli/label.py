"""Sub-commands ``label-app``, ``label-serve`` and ``label-datastore`` (MONAI Label integration)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

__all__ = ["add_parsers", "run_app", "run_serve", "run_datastore", "INSTALL_HINT"]

#: how to install MONAI Label next to this package (monailabel's own requirements pull a CUDA torch).
INSTALL_HINT = (
    'pip install -e ".[label]" && pip install --no-deps monailabel==0.8.5 pydicom-seg==0.4.1 '
    "(see docs/label.md)"
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``label-app``, ``label-serve`` and ``label-datastore``."""
    a = subparsers.add_parser(
        "label-app", help="print the folder of the MONAI Label app shipped with the package",
        description="Print the MONAI Label app folder (for `monailabel start_server --app <folder>`).",
    )
    a.set_defaults(func=run_app)

    s = subparsers.add_parser(
        "label-serve", help="start a MONAI Label server with the package's app for a datastore",
        description="Run `monailabel start_server` with the package's app (needs the label extra; docs/label.md).",
    )
    s.add_argument("--studies", required=True, help="the datastore folder (see label-datastore)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--conf", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="app setting, repeatable, e.g. --conf singanseg_iters 100 (keys: docs/label.md)")
    s.set_defaults(func=run_serve)

    d = subparsers.add_parser(
        "label-datastore", help="write a MONAI Label datastore (4D NIfTI images + labels/final/)",
        description="Write BraTS cases (or the embedded demo case) as a MONAI Label datastore; never overwrites.",
    )
    d.add_argument("--out", required=True, help="the datastore folder to write")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--brats", metavar="ROOT", help="folder of BraTS cases (<case>_{flair,t1,t1ce,t2,seg}.nii.gz)")
    src.add_argument("--demo", action="store_true", help="the embedded demo case (TCGA-FG-6692, cropped)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=run_datastore)


def run_app(args: argparse.Namespace) -> int:
    """``label-app``: print the app folder."""
    from monai_singanseg.label import app_dir

    print(app_dir())
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``label-serve``: check the settings and the datastore, then run the MONAI Label server until it stops."""
    from monai_singanseg.label import app_dir, app_options

    studies = Path(args.studies)
    if not studies.is_dir():
        raise ValueError(f"{studies}: datastore folder not found (write one with `label-datastore --out {studies} ...`)")
    conf = {k: v for k, v in args.conf}
    app_options(conf, str(studies), str(app_dir()))  # unknown keys and bad values fail here, before the server starts
    if importlib.util.find_spec("monailabel") is None:
        raise RuntimeError(f"MONAI Label is not installed; install it with: {INSTALL_HINT}")
    cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app_dir()), "--studies",
           str(studies.resolve()), "--host", args.host, "--port", str(args.port)]
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
