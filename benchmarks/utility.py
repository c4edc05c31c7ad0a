"""Downstream-utility headline: does synthetic data train a segmentation network?

Leave-one-case-out over the six expert-labelled BRATS-2013 cases of ``../shared/data/brats2013`` (FLAIR + T1c,
label 3 counted as 1, described by a datalist with their own file names). Each fold makes its synthetic sets with
``synthesize`` over the five training cases, trains a 2D segmentation network on every training set and seed
(stopping on a validation-Dice plateau), predicts every axial slice of the held-out case and scores it in 3D
(BraTS Dice and HD95 per region). It prints real-only WT Dice and the headline ratios with paired bootstrap
95 % intervals:

- real-only WT Dice on held-out cases                                     -- target >= 0.75
- Dice(synthetic only: SinGAN-Seg + pix2pix) / Dice(all real slices)     -- target >= 0.9
- Dice(all real + synthetic) / Dice(all real)                              -- > 1
- Dice(k real + their SinGAN-Seg samples) / Dice(k real), k = 1 and 5      -- target >= 1.3 (at the smallest k)
- Dice(SinGAN-Seg + histogram style transfer) / Dice(SinGAN-Seg)           -- > 1
- Dice(SPADE renders) / Dice(pix2pix U-Net renders), the same budget          -- > 1 (which renderer trains better)

The CPU headline budget (the defaults below) runs the folds as ``--jobs`` processes side by side (one torch thread
each) and merges their reports; the folds share one SinGAN-Seg model cache (``OUT/singanseg_cache``: each case's
models trained once). On a GPU, raise ``--size``, ``--features``, ``--steps`` and the generator budgets.

    python benchmarks/utility.py --out utility_report                  # 6 folds, 2 processes
    python benchmarks/utility.py --out u --held-out 0 1 --seeds 0 1 2     # some folds only
    python benchmarks/utility.py --merge u/fold0 u/fold1 ...          # headline of fold reports
    python benchmarks/utility.py --compare u_aug real u real          # one run's set against another run's, paired
    python benchmarks/utility.py --out u --held-out 0 1 --sets real singanseg real1 real1+singanseg   # some sets only
    python benchmarks/utility.py --out u --test-cases 4 5       # train once on cases 0-3, test on 4 and 5

``--test-cases`` runs ``evaluate --test-datalist`` (one process: everything trains once on the other cases).

``--gpu`` is the headline at full size on one CUDA GPU (:data:`GPU_BUDGET`: ``evaluate``'s own defaults, the six
folds as ``--jobs`` processes sharing the GPU); an option given beside it replaces its value. Without a GPU it stops
and says so. Its time on a GPU has not been measured in this project yet.

    python benchmarks/utility.py --gpu --out utility_gpu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import brats2013_items, write_datalist_json

STYLE = "histogram"  # the style-transfer step of SinGAN-Seg (no weights file needed)
HEADLINE_SETS = (
    "real",
    "singanseg",
    f"singanseg+style:{STYLE}",
    "pix2pix",
    "spade",
    "synthetic",
    "real+synthetic",
    "real1",
    "real1+singanseg",
    "real5",
    "real5+singanseg",
)

#: evaluate's on/off segmentation options that this script passes on when given (default: evaluate's; their help is
#: the one declared in ``SegmentationSettings``).
SWITCHES = ("augment", "regions", "keep_largest")

#: ``--gpu``: the headline at full size on one GPU: ``evaluate``'s own defaults (None: the flag is left out, so
#: evaluate's default applies: 128 px, five SinGAN-Seg models per case at the schedule's iterations, 60 renderer
#: epochs on four volumes per case, its default segmentation network and steps), on CUDA. A value given on the
#: command line replaces the budget's.
GPU_BUDGET = {
    "size": None,
    "singan_slices": None,
    "singan_iters": None,
    "pix2pix_epochs": None,
    "pix2pix_volumes": None,
    "network": None,
    "features": None,
    "steps": None,
    "batch_size": None,
    "device": "cuda",
}


def datalist(folder: Path, items: list[dict]) -> Path:
    """The BRATS-2013 cases as a decathlon datalist (their own file names, two sequences)."""
    return write_datalist_json(items, folder / "brats2013.json")


def fold_datalist(data: Path, fold: int, out: Path) -> Path:
    """The datalist with case ``fold`` first (``evaluate --folds 1`` holds out the first case)."""
    items = json.loads(data.read_text(encoding="utf-8"))["training"]
    items = [items[fold]] + [it for i, it in enumerate(items) if i != fold]
    path = out / f"fold{fold}.json"
    path.write_text(json.dumps({"training": items}, indent=1), encoding="utf-8")
    return path


def split_datalist(data: Path, test: list[int], out: Path) -> Path:
    """The datalist split into ``training`` (the other cases) and ``testing`` (cases ``test``)."""
    items = json.loads(data.read_text(encoding="utf-8"))["training"]
    split = {
        "training": [it for i, it in enumerate(items) if i not in test],
        "testing": [it for i, it in enumerate(items) if i in test],
    }
    path = out / "split.json"
    path.write_text(json.dumps(split, indent=1), encoding="utf-8")
    return path


def _budget_flags(args: argparse.Namespace) -> list[str]:
    """The budget options of ``evaluate``; one whose value is None is left out (evaluate's default applies)."""
    values = {
        "--size": args.size,
        "--seeds": args.seeds,
        "--k": [1, 5],
        "--singan-slices": args.singan_slices,
        "--singan-iters": args.singan_iters,
        "--samples-per-model": args.samples_per_model,
        "--tumour-shift": args.tumour_shift,
        "--pix2pix-epochs": args.pix2pix_epochs,
        "--pix2pix-volumes": args.pix2pix_volumes,
        "--pix2pix-samples": 100,
        "--network": args.network,
        "--features": args.features,
        "--steps": args.steps,
        "--batch-size": args.batch_size,
    }
    flags = []
    for flag, value in values.items():
        if value is not None:
            flags += [flag, *map(str, value if isinstance(value, list) else [value])]
    for name in SWITCHES:
        value = getattr(args, name)
        if value is not None:
            flags.append(("--" if value else "--no-") + name.replace("_", "-"))
    return flags


def check_budget(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``evaluate``'s own parser and settings check this run's budget before anything is written: a value outside
    evaluate's bounds (e.g. ``--size 96``: a power of two is needed) is this script's usage error, naming them."""
    from monai_singanseg.cli import subcommands
    from monai_singanseg.cli.evaluate import settings_from_args

    evaluate = subcommands()["evaluate"]
    evaluate.error = lambda message: parser.error(f"{message} (evaluate's check of the budget)")  # type: ignore
    flags = evaluate_command(Path("budget.json"), Path("budget"), args)[4:]  # after "python -m ... evaluate"
    try:
        settings_from_args(evaluate.parse_args(flags))
    except ValueError as exc:
        parser.error(f"{exc} (evaluate's check of the budget)")


def evaluate_command(data: Path, out: Path, args: argparse.Namespace, test_datalist: Path | None = None) -> list[str]:
    """One ``evaluate`` process: the first case of ``data`` held out, or every case of ``test_datalist`` tested."""
    split = ["--folds", "1"] if test_datalist is None else ["--test-datalist", str(test_datalist)]
    return [
        sys.executable,
        "-m",
        "monai_singanseg",
        "evaluate",
        "--datalist",
        str(data),
        "--out",
        str(out),
        "--model-cache",
        str(out.parent / "singanseg_cache"),  # the folds share each case's SinGAN-Seg models
        *split,
        "--label-map",
        "3:1",
        "--channel-names",
        "flair",
        "t1ce",
        *_budget_flags(args),
        "--val-every",
        "50",
        "--patience",
        "3",
        "--style",
        STYLE,
        "--sets",
        *args.sets,
        "--threads",
        "1",
        "--device",
        args.device,
        "--quiet",
        *(["--overwrite"] if args.overwrite else []),
    ]


def read_reports(dirs: list[Path]) -> tuple[dict, list[dict]]:
    """The settings (of the first) and every fold of the ``evaluate`` reports ``DIR/report.json`` of ``dirs``."""
    missing = [str(d) for d in dirs if not (d / "report.json").is_file()]
    if missing or not dirs:
        raise SystemExit(f"no report.json in {missing or 'the given folders'}")
    reports = [json.loads((d / "report.json").read_text(encoding="utf-8")) for d in dirs]
    return reports[0]["settings"], [fold for r in reports for fold in r["folds"]]


def run_reports(folder: Path) -> list[Path]:
    """The report folders of a finished utility run: its folds (``fold*/``) or its test set (``test_set/``)."""
    found = sorted(d.parent for d in folder.glob("*/report.json") if d.parent.name.startswith(("fold", "test_set")))
    if not found:
        raise SystemExit(f"no fold*/report.json or test_set/report.json under {folder}")
    return found


def merge(dirs: list[Path]) -> int:
    from monai_singanseg.evaluation.experiment import ExperimentSettings, headline, summarise_folds
    from monai_singanseg.evaluation.report import headline_text

    stored, folds = read_reports(dirs)
    settings = ExperimentSettings.from_dict(stored)
    summary = summarise_folds(folds, settings)
    print(f"{len(folds)} fold(s), seeds {settings.seeds}; mean ± sd over folds x seeds (3D per held-out case)")
    for name, stats in summary.items():
        print(
            f"  {name:<26} Dice WT {stats['WT']['dice']['mean']:.3f} ± {stats['WT']['dice']['sd']:.3f}  TC "
            f"{stats['TC']['dice']['mean']:.3f}  ET {stats['ET']['dice']['mean']:.3f}  HD95 WT "
            f"{stats['WT']['hd95']['mean']:.1f} mm"
        )
    print("\n".join(headline_text(headline(summary, settings.k_values, settings.style_methods, "WT", folds))))
    return 0


def compare(dir_a: Path, set_a: str, dir_b: Path, set_b: str) -> int:
    """Paired ratio ``Dice(set_a of run A) / Dice(set_b of run B)`` per region, over the (test case, seed) runs the two
    utility runs share: e.g. the same set with and without an option, two runs' folds being the same held-out cases.
    """
    from monai_singanseg.evaluation.headline import paired_ratio

    folds_a, folds_b = (read_reports(run_reports(d))[1] for d in (dir_a, dir_b))
    print(f"Dice({dir_a}: {set_a}) / Dice({dir_b}: {set_b}), paired by held-out case and seed")
    compared = 0
    for region in ("WT", "TC", "ET"):
        try:
            ci = paired_ratio(folds_a, set_a, set_b, region, denominator_folds=folds_b)
        except ValueError as exc:  # fewer than 2 pairs, or a denominator mean of 0 in some resamples
            print(f"  {region}: no interval: {exc}")
            continue
        compared += 1
        print(
            f"  {region}: {ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] "
            f"({ci['mean_numerator']:.3f} / {ci['mean_denominator']:.3f}, n = {ci['n']})"
        )
    return 0 if compared else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="utility_report")
    parser.add_argument(
        "--held-out", type=int, nargs="+", default=None, help="indices of the held-out cases to run (default: all six)"
    )
    parser.add_argument(
        "--test-cases",
        type=int,
        nargs="+",
        default=None,
        help="cases to test on, trained once on the others (evaluate --test-datalist; default: leave one out)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="folds run side by side (default 2: one per core)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--singan-slices", type=int, default=1, help="SinGAN-Seg models per training case")
    parser.add_argument("--singan-iters", type=int, default=40)
    parser.add_argument("--samples-per-model", type=int, default=10)
    parser.add_argument(
        "--tumour-shift", default=None, metavar="F|off", help="SinGAN-Seg tumour layout (default: evaluate's)"
    )
    parser.add_argument("--pix2pix-epochs", type=int, default=10)
    parser.add_argument("--pix2pix-volumes", type=int, default=1)
    parser.add_argument("--network", default="basicunet")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    from monai_singanseg.evaluation.segmentation import SegmentationSettings
    from monai_singanseg.options import option_help

    for name in SWITCHES:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"{option_help(SegmentationSettings, name)} (evaluate's option; default: evaluate's)",
        )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--sets", nargs="+", default=list(HEADLINE_SETS), help="training sets (default: the headline's)"
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--merge", nargs="+", default=None, metavar="DIR", help="print the headline of fold reports")
    parser.add_argument(
        "--compare",
        nargs=4,
        default=None,
        metavar=("DIR_A", "SET_A", "DIR_B", "SET_B"),
        help="paired ratio of one run's set to another run's set (the same held-out cases and seeds)",
    )
    parser.add_argument(
        "--gpu", action="store_true", help="the full-size budget on one CUDA GPU (GPU_BUDGET; options given replace it)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.merge:
        return merge([Path(d) for d in args.merge])
    if args.compare:
        dir_a, set_a, dir_b, set_b = args.compare
        return compare(Path(dir_a), set_a, Path(dir_b), set_b)
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            parser.exit(2, "--gpu needs a CUDA GPU: torch.cuda.is_available() is False on this machine\n")
        for key, value in GPU_BUDGET.items():
            if getattr(args, key) == parser.get_default(key):  # not given: the GPU budget's
                setattr(args, key, value)
    items = brats2013_items()
    for option, chosen in (("--held-out", args.held_out), ("--test-cases", args.test_cases)):
        if chosen is not None and not set(chosen) <= set(range(len(items))):
            parser.error(f"{option} {chosen}: case indices are 0-{len(items) - 1} ({len(items)} BRATS-2013 cases)")
    if args.test_cases is not None and set(args.test_cases) == set(range(len(items))):
        parser.error(f"--test-cases {args.test_cases}: leave at least one case to train on")
    check_budget(parser, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = datalist(out, items)
    if args.test_cases is not None:
        split = split_datalist(data, args.test_cases, out)
        start = time.perf_counter()
        with (out / "test_set.log").open("w", encoding="utf-8") as log:
            cmd = evaluate_command(split, out / "test_set", args, test_datalist=split)
            code = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=log, stderr=subprocess.STDOUT)
        print(f"test set {args.test_cases}: exit {code.returncode} after {time.perf_counter() - start:.0f} s")
        return merge([out / "test_set"]) if code.returncode == 0 else 1
    folds = args.held_out if args.held_out is not None else list(range(len(items)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    pending, running, failed = list(folds), {}, []
    while pending or running:
        while pending and len(running) < args.jobs:
            f = pending.pop(0)
            log = (out / f"fold{f}.log").open("w", encoding="utf-8")
            cmd = evaluate_command(fold_datalist(data, f, out), out / f"fold{f}", args)
            running[f] = (
                subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
                log,
                time.perf_counter(),
            )
        time.sleep(5)
        for f, (proc, log, t0) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                print(f"fold {f}: exit {proc.returncode} after {time.perf_counter() - t0:.0f} s", flush=True)
                if proc.returncode:
                    failed.append(f)
                del running[f]
    print(f"wall time {time.perf_counter() - start:.0f} s for {len(folds)} fold(s), {args.jobs} process(es) x 1 thread")
    done = [out / f"fold{f}" for f in folds if f not in failed]
    if failed:
        print(f"failed folds: {failed} (logs in {out})")
    return merge(done) if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
