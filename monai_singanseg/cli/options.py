"""Bounded option types for the command line: a bad number is refused by argparse with the option's name and
its allowed range, before anything is read or written (never a traceback deep inside the code)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from monai_singanseg.synthesis.singanseg import SinGANSegSynthesisOptions

__all__ = ["int_in", "float_in", "SEED", "THREADS", "power_of_two", "TUMOUR_SHIFT", "add_tumour_shift"]

#: largest seed accepted (numpy and MONAI random states take 32-bit seeds).
MAX_SEED = 2**32 - 1


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (``high`` None: no upper bound)."""
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def float_in(
    low: float, high: float | None = None, high_open: bool = False, low_open: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in the interval from ``low`` to ``high`` (open ends as given)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    allowed = (
        f"a number in {left}{low}, {high}{right}" if high is not None else f"a number {'>' if low_open else '>='} {low}"
    )

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        bad = not math.isfinite(value) or value < low or (low_open and value == low)
        bad = bad or (high is not None and (value > high or (high_open and value == high)))
        if bad:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = "float"
    return parse


def power_of_two(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a power of two in ``[low, high]``."""
    base = int_in(low, high)

    def parse(text: str) -> int:
        value = base(text)
        if value & (value - 1):
            raise argparse.ArgumentTypeError(f"must be a power of two in [{low}, {high}], got {value}")
        return value

    parse.__name__ = "int"
    return parse


SEED = int_in(0, MAX_SEED)
THREADS = int_in(1, 1024)


def _tumour_shift(text: str) -> float | None:
    """``off`` -> None, else a fraction of the side in [0, 1]."""
    return None if text == "off" else float_in(0.0, 1.0)(text)


_tumour_shift.__name__ = "tumour shift"
TUMOUR_SHIFT = _tumour_shift


def add_tumour_shift(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--tumour-shift`` option of the SinGAN-Seg sampling commands (default: the synthesis options')."""
    parser.add_argument(
        "--tumour-shift",
        type=TUMOUR_SHIFT,
        default=SinGANSegSynthesisOptions.tumour_shift,
        metavar="F|off",
        help="new tumour layout per sample: the tumour moves by up to F of the side inside the brain, turns and "
        "changes size and outline ('off': the layout of the training slice; default %(default)s)",
    )
