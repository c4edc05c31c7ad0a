"""Does keeping each prediction's largest connected tumour component change the utility headline?

For every fold of a finished ``benchmarks/utility.py`` run, this retrains the segmentation network of each requested
set and seed (the run's own settings and its own synthetic datasets, read back, not remade) and scores the held-out
case twice from the same network: as predicted, and with only its largest connected tumour component kept
(``evaluate --keep-largest``, MONAI ``KeepLargestConnectedComponent`` over all tumour classes). It prints, for both
scorings, each set's Dice and the paired ratio of each set to ``real`` (same fold and seed).

    python benchmarks/keep_largest.py RUN                           # the sets real and synthetic, every fold of RUN
    python benchmarks/keep_largest.py RUN --sets real singanseg pix2pix --no-augment --out RUN/kl_plain

The folds run as ``--jobs`` processes with one torch thread each; each writes ``fold<i>.json`` under ``--out``
(default ``RUN/keep_largest``). ``--augment/--no-augment`` and ``--seeds`` replace the run's own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SCORINGS = ("as predicted", "largest component")


def run_one_fold(
    run: Path, fold: int, set_names: list[str], seeds: list[int] | None, augment: bool | None, out: Path
) -> Path:
    """Both scorings of every set and seed of fold ``fold`` of ``run`` (``seeds`` and ``augment`` None: the run's),
    written to ``out/fold<fold>.json``."""
    import torch

    from monai_singanseg.evaluation.fold import load_fold, training_sets
    from monai_singanseg.evaluation.scoring import case_scores
    from monai_singanseg.evaluation.segmentation import train_segmentation
    from monai_singanseg.evaluation.settings import ExperimentSettings
    from monai_singanseg.evaluation.slice_sets import slice_number
    from monai_singanseg.evaluation.synthetic_sets import make_synthetic_sets
    from monai_singanseg.evaluation.volumes import keep_largest_tumour, predict_case
    from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES

    torch.set_num_threads(1)
    report = json.loads((run / f"fold{fold}" / "report.json").read_text(encoding="utf-8"))
    items = json.loads((run / f"fold{fold}.json").read_text(encoding="utf-8"))["training"]
    base = ExperimentSettings.from_dict(report["settings"])
    segmentation = base.segmentation.to_dict() | ({} if augment is None else {"augment": augment})
    changed = {"training_sets": set_names, "segmentation": segmentation} | ({"seeds": seeds} if seeds else {})
    settings = ExperimentSettings.from_dict(base.to_dict() | changed)
    data = load_fold(items[1:], items[:1], settings)
    case_slices = {name: [slice_number(data.real.names[i]) for i in order] for name, order in data.spread.items()}
    synthetic = make_synthetic_sets(  # the run's finished datasets are read back, nothing is trained again
        data.items,
        case_slices,
        run / f"fold{fold}" / "models" / "fold0",
        settings,
        "cpu",
        False,
        lambda _: None,
        run / "singanseg_cache",
    )
    if synthetic.cache["trained"]:
        raise SystemExit(f"fold {fold}: {synthetic.cache['trained']} SinGAN-Seg model(s) were not in the run's cache")
    sets = training_sets(data, synthetic, settings)
    test, num_classes = data.tests[0], len(BRATS_LABEL_VALUES)
    folds = {scoring: {"test_case": test.name, "runs": {}} for scoring in SCORINGS}  # the report's fold shape
    for name in set_names:
        for seed in settings.seeds:
            net, _ = train_segmentation(
                sets[name].images,
                sets[name].labels,
                num_classes,
                settings.segmentation,
                seed,
                "cpu",
                False,
                validation=(data.validation.images, data.validation.labels),
            )
            predicted = predict_case(net, test, num_classes)
            wt = []
            for scoring, prediction in zip(SCORINGS, (predicted, keep_largest_tumour(predicted, num_classes))):
                case = case_scores(prediction, test.target, BRATS_LABEL_VALUES, spacing=test.spacing)
                folds[scoring]["runs"].setdefault(name, {"runs": {}})["runs"][str(seed)] = case
                wt.append(case["WT"]["dice"])
            print(f"fold {fold} {name} seed {seed}: WT {wt[0]:.3f} -> {wt[1]:.3f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"fold{fold}.json").write_text(json.dumps(folds), encoding="utf-8")
    return out / f"fold{fold}.json"


def summary(files: list[Path], set_names: list[str]) -> None:
    """Mean Dice per set and the paired ratio to ``real`` (same test case and seed), for both scorings."""
    from monai_singanseg.evaluation.headline import paired_ratio, paired_values

    results = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    for scoring in SCORINGS:
        folds = [result[scoring] for result in results]
        print(f"\n{scoring} ({len(folds)} fold(s)):")
        for region in ("WT", "TC", "ET"):
            means = []
            for name in set_names:
                values = list(paired_values(folds, name, region).values())
                means.append(f"{name} {sum(values) / max(1, len(values)):.3f}")
            print(f"  {region} Dice: " + ", ".join(means))
            for name in set_names if "real" in set_names else []:
                if name == "real":
                    continue
                try:
                    ci = paired_ratio(folds, name, "real", region)
                except ValueError as exc:
                    print(f"    {name} / real: no interval ({exc})")
                    continue
                print(f"    {name} / real: {ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] (n = {ci['n']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished benchmarks/utility.py output folder")
    parser.add_argument("--sets", nargs="+", default=["real", "synthetic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="segmentation seeds (default: the run's)")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="segmentation augmentation (default: the run's)",
    )
    parser.add_argument("--out", type=Path, default=None, help="where the fold results go (default: RUN/keep_largest)")
    parser.add_argument("--jobs", type=int, default=2, help="folds run side by side (one thread each)")
    parser.add_argument("--fold", type=int, default=None, help=argparse.SUPPRESS)  # one fold, in a worker process
    args = parser.parse_args()
    out = args.out or args.run / "keep_largest"
    if args.fold is not None:
        run_one_fold(args.run, args.fold, args.sets, args.seeds, args.augment, out)
        return 0
    folds = sorted(int(p.name[4:]) for p in args.run.glob("fold*") if (p / "report.json").is_file())
    if not folds:
        raise SystemExit(f"no fold*/report.json under {args.run}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    pending, running = list(folds), []
    while pending or running:
        while pending and len(running) < args.jobs:
            fold = pending.pop(0)
            cmd = [
                sys.executable,
                __file__,
                str(args.run),
                "--fold",
                str(fold),
                "--out",
                str(out),
                "--sets",
                *args.sets,
            ]
            cmd += ["--seeds", *map(str, args.seeds)] if args.seeds else []
            cmd += [] if args.augment is None else ["--augment" if args.augment else "--no-augment"]
            running.append(subprocess.Popen(cmd, env=env))
        running[0].wait()
        if running[0].returncode:
            raise SystemExit(f"a fold failed (exit {running[0].returncode})")
        running.pop(0)
    summary([out / f"fold{f}.json" for f in folds], args.sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
