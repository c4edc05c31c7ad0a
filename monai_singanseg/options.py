"""One declaration per option: a settings dataclass field carries its help, bounds and command-line flag, and
everything else is derived from it: the argparse options (:func:`add_options`, :func:`from_args`), the bounds check
(:func:`check_options`), the JSON-able dict of the settings and back (:class:`Settings`), and MONAI Label's
``--conf`` keys.

Vocabulary used across the package: *settings* are what a user chooses (these dataclasses); a *config* is what a model
file records about its model; *options* are their spellings on a command line or a server's ``--conf``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from monai.utils.misc import str2bool

__all__ = [
    "OptionSpec",
    "OptionValueError",
    "option",
    "option_from",
    "option_fields",
    "flag_of",
    "add_options",
    "from_args",
    "value_parser",
    "option_help",
    "given",
    "replace_given",
    "check_options",
    "option_error",
    "Settings",
    "jsonable",
    "settings_from_dict",
    "int_in",
    "float_in",
    "power_of_two",
    "MAX_SEED",
]

#: the metadata key of a field's :class:`OptionSpec`.
OPTION = "monai_singanseg.option"
#: largest seed accepted (numpy and MONAI random states take 32-bit seeds).
MAX_SEED = 2**32 - 1

T = TypeVar("T")


class OptionValueError(argparse.ArgumentTypeError, ValueError):
    """A value outside an option's bounds: argparse shows its message, and Python callers catch a ValueError."""


@dataclass(frozen=True)
class OptionSpec:
    """What a settings field says about itself besides its name, type and default.

    Args:
        help: what the option does, for ``--help`` and the docs (its default is added when not None).
        flag: the command-line flag (default: ``--`` + the field name with dashes).
        low: smallest allowed value (numbers, or each element of a sequence).
        high: largest allowed value.
        low_open: ``low`` itself is not allowed.
        high_open: ``high`` itself is not allowed.
        power_of_two: the value must be a power of two.
        choices: the allowed values.
        metavar: the placeholder shown in ``--help``.
        parse: the command line's parser of a value, where the field's type alone cannot say (e.g. ``off`` -> None).
    """

    help: str
    flag: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    power_of_two: bool = False
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None


def option(default: Any = MISSING, *, help: str, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field declared as an option (``default``/``default_factory`` as in ``dataclasses.field``)."""
    return field(default=default, default_factory=default_factory, metadata={OPTION: OptionSpec(help=help, **spec)})


def option_from(cls: type, name: str) -> Any:
    """The option ``name`` of the settings class ``cls`` as a field of another settings class: the same default,
    help, bounds and flag, so that a setting passed on from one class to the other is declared once."""
    source = _option_field(cls, name, AttributeError)
    return field(default=source.default, default_factory=source.default_factory, metadata=dict(source.metadata))


def option_fields(cls: type) -> list[Field]:
    """The fields of a settings dataclass that are declared with :func:`option`, in order."""
    return [f for f in fields(cls) if OPTION in f.metadata]


def _option_field(cls: type, name: str, error: type[Exception] = ValueError) -> Field:
    """The option field ``name`` of ``cls``; ``error`` (naming the class and the option) when it has none."""
    found = next((f for f in option_fields(cls) if f.name == name), None)
    if found is None:
        raise error(f"{cls.__name__} has no option {name!r}")
    return found


def _spec(f: Field) -> OptionSpec:
    return f.metadata[OPTION]


def flag_of(f: Field) -> str:
    """The command-line flag of an option field."""
    return _spec(f).flag or "--" + f.name.replace("_", "-")


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _shape(hint: Any) -> tuple[type, bool, bool]:
    """``(element type, optional, many)`` of a field's type hint (``int | None``, ``tuple[int, ...]``, ...)."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    origin = typing.get_origin(hint)
    if origin in (tuple, list) or origin is Sequence or (isinstance(origin, type) and issubclass(origin, Sequence)):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return (args[0] if args else str), optional, True
    return hint, optional, False


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _allowed(spec: OptionSpec, kind: type) -> str:
    what = "an integer" if kind is int else "a number"
    if spec.power_of_two:
        what = "a power of two"
    if spec.low is not None and spec.high is not None:
        left, right = "(" if spec.low_open else "[", ")" if spec.high_open else "]"
        return f"{what} in {left}{_number(spec.low)}, {_number(spec.high)}{right}"
    if spec.low is not None:
        return f"{what} {'>' if spec.low_open else '>='} {_number(spec.low)}"
    if spec.high is not None:
        return f"{what} {'<' if spec.high_open else '<='} {_number(spec.high)}"
    return what


def _in_bounds(value: float, spec: OptionSpec) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
        return False
    if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
        return False
    return not spec.power_of_two or (int(value) == value and value > 0 and int(value) & (int(value) - 1) == 0)


def _number_parser(kind: type, spec: OptionSpec) -> Callable[[str], Any]:
    """An argparse ``type`` for an int or float option, refusing values outside its bounds (naming them)."""
    allowed = _allowed(spec, kind)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise OptionValueError(f"must be {allowed}, got {text!r}") from None
        if not _in_bounds(value, spec):
            raise OptionValueError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (``high`` None: no upper bound)."""
    return _number_parser(int, OptionSpec(help="", low=low, high=high))


def float_in(
    low: float, high: float | None = None, high_open: bool = False, low_open: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (open ends as given)."""
    return _number_parser(float, OptionSpec(help="", low=low, high=high, low_open=low_open, high_open=high_open))


def power_of_two(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a power of two in ``[low, high]``."""
    return _number_parser(int, OptionSpec(help="", low=low, high=high, power_of_two=True))


def _help(spec: OptionSpec, default: Any) -> str:
    if default is None or default is False or "default" in spec.help:
        return spec.help
    shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    return f"{spec.help} (default: {shown})"


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    names: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    unset: bool = False,
) -> None:
    """Add the options of settings class ``cls`` to ``parser`` (each option's ``dest`` is its field name).

    Args:
        parser: the parser or argument group.
        cls: a settings dataclass whose fields are declared with :func:`option`.
        names: only these fields, in this order (default: every option field).
        defaults: command-line defaults that differ from the dataclass's.
        unset: options not given are left out of the parsed namespace (``argparse.SUPPRESS``), so that a command
            can tell them apart, also from a given value that parses as None (``--tumour-shift off``), and fill them
            from other settings (:func:`replace_given`); ``--help`` still shows the dataclass's defaults.

    Raises:
        ValueError: a name that is not an option of ``cls``, or a type a command line cannot spell.
    """
    by_name = {f.name: f for f in option_fields(cls)}
    unknown = [n for n in (names or ()) if n not in by_name]
    if unknown:
        raise ValueError(f"{cls.__name__} has no options {unknown}; it has {sorted(by_name)}")
    hints = typing.get_type_hints(cls)
    for name in names or list(by_name):
        f, spec = by_name[name], _spec(by_name[name])
        default = (defaults or {}).get(name, _default(f))
        kind, _, many = _shape(hints[name])
        kwargs: dict[str, Any] = {
            "dest": name,
            "help": _help(spec, default),
            "default": argparse.SUPPRESS if unset else default,
        }
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if default or unset else "store_true"
        elif kind in (int, float, str):
            kwargs["type"] = spec.parse or (str if kind is str else _number_parser(kind, spec))
            if spec.choices is not None:
                kwargs["choices"] = spec.choices
            if many:
                kwargs["nargs"] = "+"
            if spec.metavar is not None:
                kwargs["metavar"] = spec.metavar
        else:
            raise ValueError(f"{cls.__name__}.{name}: a {hints[name]} option has no command-line form")
        parser.add_argument(flag_of(f), **kwargs)


def _given_names(cls: type, names: Sequence[str] | None) -> list[str]:
    return [f.name for f in option_fields(cls)] if names is None else list(names)


def value_parser(cls: type, name: str) -> Callable[[str], Any]:
    """The parser of option ``name`` of ``cls`` from text, with its bounds and choices (e.g. for a server's
    ``--conf KEY VALUE``); it raises ValueError naming what is allowed."""
    spec = _spec(_option_field(cls, name))
    kind, _, _ = _shape(typing.get_type_hints(cls)[name])

    def parse(text: str) -> Any:
        if kind is bool:
            return str2bool(str(text).strip())  # MONAI's: raises ValueError naming the accepted words
        try:
            value = spec.parse(text) if spec.parse else (str(text) if kind is str else _number_parser(kind, spec)(text))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"must be one of {list(spec.choices)}, got {value!r}")
        return value

    return parse


def option_help(cls: type, name: str) -> str:
    """The declared help of option ``name`` of ``cls``, with its default."""
    f = _option_field(cls, name)
    return _help(_spec(f), _default(f))


def from_args(cls: type[T], args: argparse.Namespace, names: Sequence[str] | None = None, **overrides: Any) -> T:
    """The settings ``cls`` from parsed arguments: its options ``names`` (the ones :func:`add_options` added; default:
    every option ``args`` holds), then ``overrides``; other fields keep their defaults.

    Pass ``names`` when two settings classes of one command share a field name (e.g. ``size``): only the names added
    for ``cls`` then belong to it.
    """
    values = {n: getattr(args, n) for n in _given_names(cls, names) if hasattr(args, n)}
    return cls(**{**values, **overrides})


def given(cls: type, args: argparse.Namespace, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The options ``names`` of ``cls`` (default: all) given on the command line: those ``args`` holds, but not a None
    that is the option's own default (a parser made without ``unset`` holds every option, None where not given)."""
    defaults = {f.name: _default(f) for f in option_fields(cls)}
    return {
        n: getattr(args, n)
        for n in _given_names(cls, names)
        if hasattr(args, n) and (getattr(args, n) is not None or defaults.get(n) is not None)
    }


def replace_given(settings: T, args: argparse.Namespace, names: Sequence[str] | None = None, **overrides: Any) -> T:
    """``settings`` with the options given on the command line (:func:`given`) and ``overrides`` replaced."""
    return dataclasses.replace(settings, **{**given(type(settings), args, names), **overrides})


def option_error(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for option ``name`` of ``cls`` ("must be ..., got ..."), or None if it is allowed
    (None always is: decided later)."""
    spec = _spec(_option_field(cls, name))
    if value is None:
        return None
    kind, _, many = _shape(typing.get_type_hints(cls)[name])
    values = list(value) if many else [value]
    if spec.choices is not None and any(v not in spec.choices for v in values):
        return f"must be one of {list(spec.choices)}, got {value!r}"
    if kind in (int, float) and any(isinstance(v, bool) or not _in_bounds(v, spec) for v in values):
        return f"must be {_allowed(spec, kind)}, got {value!r}"
    return None


def check_options(settings: Any) -> None:
    """Check every declared option of a settings object against its bounds and choices (None passes: decided later).

    Raises:
        ValueError: naming the field, its flag, the allowed values and the value given.
    """
    for f in option_fields(type(settings)):
        error = option_error(type(settings), f.name, getattr(settings, f.name))
        if error is not None:
            raise ValueError(f"{f.name} ({flag_of(f)}) {error}")


def jsonable(value: Any) -> Any:
    """A JSON-able copy: dataclasses as dicts of their fields, tuples as lists, mapping keys as strings."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def settings_from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
    """The settings ``cls`` of a dict written by :func:`jsonable` (unknown keys ignored, nested settings rebuilt)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        kind, _, many = _shape(hints[f.name])
        if isinstance(value, Mapping) and is_dataclass(kind):
            value = settings_from_dict(kind, value)
        elif many and isinstance(value, list) and typing.get_origin(hints[f.name]) is not list:
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


class Settings:
    """Base of the settings dataclasses: :meth:`to_dict` / :meth:`from_dict` derived from the fields."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in model files, run records and reports)."""
        return jsonable(self)

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return settings_from_dict(cls, d)
