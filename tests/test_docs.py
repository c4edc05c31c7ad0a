"""The docs cannot drift from the command line: every ``python -m monai_singanseg ...`` command written in README.md,
docs/ and the bundles' docs names a real subcommand and only flags that subcommand's parser has."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from monai_singanseg.cli import build_parser, subcommands

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "bundles").glob("*/docs/*.md")])
#: where a command starts: ``python -m monai_singanseg`` (also under torchrun) or the installed script
START = re.compile(r"(?:-m\s+monai_singanseg|^monai-singanseg|\smonai-singanseg)\s")


def _snippets(text: str) -> list[str]:
    """Shell lines of fenced code blocks (continuations joined) and inline code spans."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        out += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    out += re.findall(r"`([^`\n]+)`", prose)
    return out


def _commands(path: Path) -> list[list[str]]:
    """The argument lists after ``monai_singanseg`` in ``path``'s commands (comments and pipes cut off)."""
    found = []
    for line in _snippets(path.read_text(encoding="utf-8")):
        match = START.search(line)
        if not match:
            continue
        rest = re.split(r"\s(?:&&|\|\||\||;|>|2>)\s", line[match.end() :])[0]
        if "$(" in line[: match.start()]:  # a command substitution ends at its parenthesis
            rest = rest.split(")")[0]
        rest = rest.split(" #")[0]
        try:
            found.append(shlex.split(rest))
        except ValueError:  # an unbalanced quote in prose: read it word by word
            found.append(rest.split())
    return found


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


COMMANDS = [(path, args) for path in DOCS for args in _commands(path)]


def test_the_docs_hold_commands_to_check():
    assert len(COMMANDS) >= 30 and {p.name for p, _ in COMMANDS} >= {"README.md"}


@pytest.mark.parametrize("path,args", COMMANDS, ids=[f"{p.relative_to(REPO)}:{' '.join(a)[:60]}" for p, a in COMMANDS])
def test_documented_command_matches_the_parser(path, args):
    parser = build_parser()
    names = subcommands(parser)
    words = [a for a in args if a not in ("--debug",)]
    if not words or words[0] in ("-h", "--help", "--version", "...", "COMMAND"):
        return
    command = words[0]
    assert command in names, f"{path.name}: `{' '.join(args)}` names no subcommand (there are {sorted(names)})"
    known = _options(names[command])
    unknown = [w.split("=")[0] for w in words[1:] if w.startswith("--") and w.split("=")[0] not in known]
    assert not unknown, f"{path.name}: `{' '.join(args)}`: {command} has no {unknown} (it has {sorted(known)})"


def test_the_check_catches_a_wrong_flag_and_a_wrong_subcommand(tmp_path):
    doc = tmp_path / "x.md"
    fence = "```"
    doc.write_text(
        f"{fence}bash\npython -m monai_singanseg generate --model m.pt \\\n  --no-such-flag 3\n{fence}\n"
        "`python -m monai_singanseg nope`\n"
    )
    (gen,), (nope,) = [c for c in _commands(doc) if c[0] == "generate"], [c for c in _commands(doc) if c[0] == "nope"]
    names = subcommands(build_parser())
    assert "--no-such-flag" not in _options(names["generate"]) and "--model" in _options(names["generate"])
    assert gen[-2:] == ["--no-such-flag", "3"] and nope == ["nope"] and "nope" not in names


def test_the_cli_lists_every_subcommand_from_its_parser():
    parser = build_parser()
    names = subcommands(parser)
    assert {"demo", "train-singanseg", "generate", "synthesize", "train-pix2pix", "render", "evaluate"} <= set(names)
    assert all(name in parser.format_help() for name in names)
