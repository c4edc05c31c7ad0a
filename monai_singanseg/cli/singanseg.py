"""Sub-commands of the singanseg generator (filled in by the singanseg work)."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register this module's sub-commands."""
