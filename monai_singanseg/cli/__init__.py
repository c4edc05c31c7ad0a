"""Command line: ``python -m monai_singanseg COMMAND``; ``--help`` lists every subcommand (read from the parser,
:func:`subcommands`).

Each subcommand lives in its own module exposing ``add_parsers(subparsers)``; this module only wires them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monai_singanseg import __version__
from monai_singanseg.cli import demo, evaluate, export, label, pix2pix, singanseg, synthesize

__all__ = ["main", "build_parser", "subcommands"]

_MODULES = (demo, singanseg, synthesize, export, pix2pix, evaluate, label)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_singanseg",
        description="Synthetic labelled medical images from a handful of annotated cases (SinGAN-Seg, pix2pix).",
    )
    parser.add_argument("--version", action="version", version=f"monai-singanseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of errors (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _MODULES:
        module.add_parsers(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"
    return parser


def subcommands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's name and parser, as registered (default: :func:`build_parser`'s)."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors are printed, not raised as tracebacks)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: still no traceback unless asked for
        if args.debug:
            raise
        print(
            f"error: {type(exc).__name__}: {exc} (this is a bug: please report it with the output of "
            f"`python -m monai_singanseg --debug {args.command} ...`)",
            file=sys.stderr,
        )
        return 1
