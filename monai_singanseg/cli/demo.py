"""``demo`` sub-command (placeholder until the data path lands)."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
