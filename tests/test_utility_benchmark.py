"""``benchmarks/utility.py``: the evaluate command it builds (options passed on) and ``--compare`` of two runs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

UTILITY = Path(__file__).resolve().parents[1] / "benchmarks" / "utility.py"


@pytest.fixture(scope="module")
def utility():
    sys.path.insert(0, str(UTILITY.parent))
    try:
        import utility
    finally:
        sys.path.remove(str(UTILITY.parent))
    return utility


@pytest.mark.parametrize("name", ["augment", "regions", "keep_largest"])
@pytest.mark.parametrize(("given", "expected"), [("", False), ("--", True), ("--no-", False)])
def test_switches_reach_evaluate_s_segmentation_settings(utility, tmp_path, name, given, expected):
    from monai_singanseg.cli import build_parser
    from monai_singanseg.cli.evaluate import settings_from_args

    args = utility.build_parser().parse_args(
        ["--out", str(tmp_path), *([given + name.replace("_", "-")] if given else [])]
    )
    cmd = utility.evaluate_command(tmp_path / "d.json", tmp_path / "fold0", args)
    assert cmd[:4] == [sys.executable, "-m", "monai_singanseg", "evaluate"]
    settings = settings_from_args(build_parser().parse_args(cmd[3:]))
    assert getattr(settings.segmentation, name) is expected
    assert settings.size == 64 and settings.segmentation.features == 8  # the CPU headline budget


def _run_folder(root: Path, dice: dict[str, dict[str, float]]) -> Path:
    """A utility run folder of one-fold reports: ``{test case: {seed: WT Dice}}`` of the set ``real``."""
    for f, (case, seeds) in enumerate(dice.items()):
        runs = {
            seed: {r: {"dice": value if r == "WT" else 0.5} for r in ("WT", "TC", "ET")}
            for seed, value in seeds.items()
        }
        fold = {"test_case": case, "runs": {"real": {"runs": runs}}}
        (root / f"fold{f}").mkdir(parents=True)
        (root / f"fold{f}" / "report.json").write_text(json.dumps({"settings": {}, "folds": [fold]}), encoding="utf-8")
    return root


def test_compare_pairs_runs_by_held_out_case_and_seed(utility, tmp_path, capsys):
    # run B lists its folds in another order and has a case run A lacks: pairing is by case and seed, not position
    a = _run_folder(tmp_path / "a", {"p1": {"0": 0.8, "1": 0.6}, "p2": {"0": 0.4, "1": 0.2}})
    b = _run_folder(tmp_path / "b", {"p2": {"0": 0.2, "1": 0.1}, "p1": {"0": 0.4, "1": 0.3}, "p3": {"0": 0.9}})
    assert utility.compare(a, "real", b, "real") == 0
    out = capsys.readouterr().out
    assert "WT: 2.000 [2.000, 2.000] (0.500 / 0.250, n = 4)" in out, out
    assert "TC: 1.000 [1.000, 1.000]" in out
    with pytest.raises(SystemExit, match="no fold\\*/report.json or test_set/report.json under"):
        utility.compare(tmp_path / "none", "real", b, "real")


def test_compare_reads_a_test_set_run_as_merge_does(utility, tmp_path, capsys):
    # a --test-cases run keeps its one report in test_set/; compare and merge read it with the same reader
    a = _run_folder(tmp_path / "a", {"p1": {"0": 0.8, "1": 0.6}})
    (a / "fold0").rename(a / "test_set")
    b = _run_folder(tmp_path / "b", {"p1": {"0": 0.4, "1": 0.3}})
    assert utility.compare(a, "real", b, "real") == 0
    assert "WT: 2.000 [2.000, 2.000] (0.700 / 0.350, n = 2)" in capsys.readouterr().out
    stored = json.loads((a / "test_set" / "report.json").read_text(encoding="utf-8"))
    assert utility.read_reports([a / "test_set"]) == (stored["settings"], stored["folds"])
    with pytest.raises(SystemExit, match="no report.json in"):
        utility.read_reports([a / "test_set", tmp_path / "missing"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--held-out", "0", "6"], "--held-out \\[0, 6\\]: case indices are 0-5"),
        (["--test-cases", "-1"], "--test-cases \\[-1\\]: case indices are 0-5"),
        (["--test-cases", "0", "1", "2", "3", "4", "5"], "leave at least one case to train on"),
        # the budget is checked by evaluate's own parser and settings, before anything is written
        (["--size", "96"], "size \\(--size\\) must be a power of two in \\[32, 512\\], got 96"),
        (["--network", "foo"], "argument --network: invalid choice: 'foo'"),
        (["--sets", "real", "foo"], "unknown training sets \\['foo'\\]"),
    ],
)
def test_unknown_case_indices_are_refused_before_anything_is_written(utility, tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exit_info:
        utility.main(["--out", str(tmp_path / "run"), *option])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
