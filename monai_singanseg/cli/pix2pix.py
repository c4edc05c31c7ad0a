"""Sub-commands of the pix2pix generator (filled in by the pix2pix work)."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register this module's sub-commands."""
