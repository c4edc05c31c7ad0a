"""Command-line options that are not settings of a model or a run: the options every working command shares, each
declared once here (the settings' own options are declared with their fields, :mod:`monai_singanseg.options`).

A bad value is refused by argparse with the option's name and its allowed values, before anything is read or
written (never a traceback deep inside the code).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from monai_singanseg.options import MAX_SEED, float_in, int_in, power_of_two

__all__ = [
    "int_in",
    "float_in",
    "SEED",
    "THREADS",
    "power_of_two",
    "RUN_OPTIONS",
    "add_run_options",
    "parse_label_map",
    "check_resumable_output",
]

SEED = int_in(0, MAX_SEED)
THREADS = int_in(1, 1024)

#: options shared by the commands that run work: flag -> argparse keyword arguments.
RUN_OPTIONS: dict[str, dict[str, Any]] = {
    "--seed": {"type": SEED, "default": 0, "help": "random seed (default 0)"},
    "--device": {"default": None, "help": "cpu, cuda, cuda:N or auto (default: auto, cuda if available)"},
    "--threads": {"type": THREADS, "default": None, "help": "CPU threads for torch (default: torch's)"},
    "--overwrite": {"action": "store_true", "help": "replace existing outputs"},
    "--resume": {
        "action": "store_true",
        "help": "continue an interrupted run into the same outputs (same inputs, options and seed)",
    },
    "--quiet": {"action": "store_true", "help": "no progress bars or log lines"},
    "--label-map": {
        "nargs": "+",
        "default": [],
        "metavar": "FROM:TO",
        "help": "replace label values on load, e.g. 3:1 (BRATS-2013)",
    },
    "--channel-names": {"nargs": "+", "default": None, "help": "names of the image channels (e.g. flair t1ce)"},
}


def add_run_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *flags: str, **helps: str) -> None:
    """Add these :data:`RUN_OPTIONS` to ``parser``; ``helps`` (by dest, e.g. ``seed=``) words one for this command."""
    for flag in flags:
        kwargs = dict(RUN_OPTIONS[flag])
        dest = flag.lstrip("-").replace("-", "_")
        if dest in helps:
            kwargs["help"] = helps[dest]
        parser.add_argument(flag, **kwargs)


def parse_label_map(pairs: list[str]) -> dict[int, int]:
    """``--label-map`` values ``["3:1", ...]`` -> ``{3: 1}``.

    Raises:
        ValueError: naming the bad pair and the form.
    """
    out = {}
    for pair in pairs:
        try:
            source, target = (int(v) for v in pair.split(":"))
        except ValueError:
            raise ValueError(f"--label-map {pair!r} must be FROM:TO label values, e.g. 3:1") from None
        out[source] = target
    return out


def check_resumable_output(out: Path, resume: bool) -> None:
    """``--resume`` continues a model file that exists: with nothing to resume, say so instead of starting afresh.

    Raises:
        FileNotFoundError: ``resume`` and ``out`` does not exist.
    """
    if resume and not out.exists():
        raise FileNotFoundError(
            f"--resume: {out} does not exist, so there is nothing to resume; run without --resume to start training"
        )
