"""One declaration per option: the settings classes declare their options once, and the command line, the JSON form
and MONAI Label's ``--conf`` keys are derived from those declarations."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import pytest

from monai_singanseg.cli import build_parser, subcommands
from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.evaluation.experiment import ExperimentSettings
from monai_singanseg.evaluation.segmentation import SegmentationSettings
from monai_singanseg.farm import DatasetSettings
from monai_singanseg.label.options import CONF_KEYS, app_settings
from monai_singanseg.options import (
    Settings,
    add_options,
    check_options,
    flag_of,
    from_args,
    given,
    option,
    option_fields,
    option_from,
    value_parser,
)
from monai_singanseg.synthesis import SinGANSegSynthesisSettings

SETTINGS = [
    SinGANSegSettings,
    SinGANSegSynthesisSettings,
    Pix2PixSettings,
    DatasetSettings,
    ExperimentSettings,
    SegmentationSettings,
]


@dataclass
class Toy(Settings):
    size: int = option(64, low=32, high=512, power_of_two=True, help="working size")
    rate: float = option(0.5, low=0.0, high=1.0, high_open=True, help="a rate")
    names: tuple[str, ...] = option(("a",), choices=("a", "b"), help="names")
    on: bool = option(False, help="switch")
    seed: int | None = option(None, flag="--seed-value", low=0, help="seed (default: none)")

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        check_options(self)


def test_a_declaration_makes_the_parser_the_check_and_the_dict():
    parser = argparse.ArgumentParser()
    add_options(parser, Toy)
    args = parser.parse_args(["--size", "128", "--names", "a", "b", "--on", "--seed-value", "3"])
    toy = from_args(Toy, args)
    assert toy == Toy(size=128, rate=0.5, names=("a", "b"), on=True, seed=3)
    assert Toy.from_dict(json.loads(json.dumps(toy.to_dict()))) == toy
    assert "working size (default: 64)" in parser.format_help()
    for bad in (["--size", "48"], ["--rate", "1"], ["--names", "c"], ["--seed-value", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(ValueError, match=r"size \(--size\) must be a power of two in \[32, 512\], got 48"):
        Toy(size=48)
    with pytest.raises(ValueError, match=r"names \(--names\) must be one of \['a', 'b'\]"):
        Toy(names=("c",))


def test_unset_options_are_told_apart_from_defaults():
    parser = argparse.ArgumentParser()
    add_options(parser, Toy, ("size", "rate"), unset=True)
    args = parser.parse_args(["--rate", "0.25"])
    assert given(Toy, args) == {"rate": 0.25}
    assert "(default: 64)" in parser.format_help()  # the help still shows the settings' default


def test_value_parser_reads_server_text_with_the_declared_bounds():
    parse = value_parser(Toy, "size")
    assert parse("256") == 256
    with pytest.raises(ValueError, match="power of two"):
        parse("100")
    assert value_parser(Toy, "on")("true") is True
    with pytest.raises(ValueError):
        value_parser(Toy, "on")("maybe")


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_settings_class_round_trips_through_json_and_declares_help(cls):
    settings = cls()
    assert cls.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    fields = option_fields(cls)
    assert fields and all(f.metadata and flag_of(f).startswith("--") for f in fields)
    assert all(f.metadata["monai_singanseg.option"].help.strip() for f in fields)


@pytest.mark.parametrize(
    "cls,changes",
    [
        (SinGANSegSettings, {"iters": 0}),
        (SinGANSegSettings, {"schedule": "slow"}),
        (SinGANSegSynthesisSettings, {"tumour_shift": 2.0}),
        (Pix2PixSettings, {"size": 48}),
        (DatasetSettings, {"samples_per_model": 0}),
        (ExperimentSettings, {"size": 48}),  # pix2pix's working size, refused before hours of SinGAN-Seg training
        (SegmentationSettings, {"network": "resnet"}),
    ],
)
def test_bad_settings_are_refused_in_python_naming_the_flag(cls, changes):
    (name,) = changes
    with pytest.raises(ValueError, match="--" + name.replace("_", "-")):
        cls(**changes)


def test_a_setting_passed_on_to_another_class_keeps_its_one_declaration():
    """evaluate's ``--tumour-shift`` is synthesize's: the same default, help, bounds and 'off' spelling, and it reaches
    the SinGAN-Seg synthesis settings of the experiment's datasets."""
    from monai_singanseg.evaluation.synthetic_sets import singanseg_dataset_settings

    fields = {f.name: f for f in option_fields(ExperimentSettings)}
    source = {f.name: f for f in option_fields(SinGANSegSynthesisSettings)}
    for name in ("tumour_shift", "style_steps", "style_weights"):
        assert fields[name].metadata == source[name].metadata and fields[name].default == source[name].default
    parser = subcommands(build_parser())["evaluate"]
    help_text = " ".join(parser.format_help().split())
    assert "new tumour layout per sample" in help_text
    from monai_singanseg.cli.evaluate import settings_from_args

    base = ["--data", "d", "--out", "o"]
    assert settings_from_args(parser.parse_args(base)).tumour_shift == SinGANSegSynthesisSettings().tumour_shift
    off = settings_from_args(parser.parse_args([*base, "--tumour-shift", "off"]))
    assert off.tumour_shift is None and singanseg_dataset_settings(off, None).options.tumour_shift is None
    shifted = settings_from_args(parser.parse_args([*base, "--quick", "--tumour-shift", "0.3"]))
    assert singanseg_dataset_settings(shifted, None).options.tumour_shift == 0.3
    with pytest.raises(ValueError, match=r"--tumour-shift\) must be a number in \[0, 1\]"):
        settings_from_args(parser.parse_args([*base, "--tumour-shift", "2"]))
    with pytest.raises(AttributeError, match="no option 'nothing'"):
        option_from(SinGANSegSynthesisSettings, "nothing")


def test_no_two_options_of_a_command_share_a_destination():
    for name, parser in subcommands(build_parser()).items():
        dests = [a.dest for a in parser._actions if a.option_strings and a.dest != "help"]
        assert len(dests) == len(set(dests)), f"{name}: {sorted(d for d in dests if dests.count(d) > 1)}"


def test_monai_label_conf_keys_come_from_the_declarations():
    assert {"singanseg_iters", "singanseg_stages", "singanseg_schedule", "singanseg_max_size"} <= set(CONF_KEYS)
    assert CONF_KEYS["singanseg_stages"][1] == "num_stages"  # the flag --stages names the key
    settings = app_settings({"singanseg_stages": "2", "singanseg_schedule": "singan"}, "/nonexistent", "/tmp")
    assert settings.settings.num_stages == 2 and settings.settings.schedule == "singan"
    with pytest.raises(ValueError, match=r"singanseg_stages '99': must be an integer in \[1, 32\]"):
        app_settings({"singanseg_stages": "99"}, "/nonexistent", "/tmp")
