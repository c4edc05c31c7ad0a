"""SinGAN-Seg training time of a leave-one-case-out evaluation: every model trained once per (case, slice) in a cache
shared by the folds, against retraining every fold's models in the fold.

It runs the folds' SinGAN-Seg step only (the SinGAN-Seg set and the small-data sets, the benchmark's settings; no
pix2pix, no segmentation) twice over the six BRATS-2013 cases: once with one cache for all folds, once with a fresh
cache per fold, which is what a run without the cache trains. It prints the models trained and reused and the
SinGAN-Seg seconds of each, and checks that the synthetic slices are the same.

    python benchmarks/generator_cache.py --out cache_bench                    # benchmark settings (64 px, 40 iters)
    python benchmarks/generator_cache.py --out cache_bench --singan-iters 10  # the same ratio, a quicker run
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from common import brats2013_items

from monai_singanseg.evaluation.experiment import ExperimentSettings
from monai_singanseg.evaluation.fold import load_fold
from monai_singanseg.evaluation.slice_sets import slice_number
from monai_singanseg.evaluation.synthetic_sets import make_synthetic_sets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="cache_bench")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--singan-slices", type=int, default=1)
    parser.add_argument("--singan-iters", type=int, default=40)
    parser.add_argument("--samples-per-model", type=int, default=10)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = brats2013_items()
    settings = ExperimentSettings(
        size=args.size,
        k_values=tuple(args.k),
        singan_slices=args.singan_slices,
        singan_iters=args.singan_iters,
        samples_per_model=args.samples_per_model,
        label_map={3: 1},
        channel_names=("flair", "t1ce"),
        training_sets=("singanseg", *(f"real{k}+singanseg" for k in args.k)),
    )
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    results: dict[str, dict] = {}
    slices: dict[str, list] = {}
    for mode in ("shared cache", "retrained per fold"):
        trained = reused = 0
        seconds = 0.0
        slices[mode] = []
        for f in range(args.folds):
            train = [it for i, it in enumerate(items) if i != f]
            data = load_fold(train, [items[f]], settings)
            spread = {name: [slice_number(data.real.names[i]) for i in o] for name, o in data.spread.items()}
            tag = "shared" if mode == "shared cache" else f"fold{f}"
            t0 = time.perf_counter()
            synthetic = make_synthetic_sets(
                data.items, spread, out / mode.split()[0] / f"fold{f}", settings, "cpu", True, lambda _: None,
                out / mode.split()[0] / f"cache_{tag}",
            )  # fmt: skip
            seconds += time.perf_counter() - t0
            trained += synthetic.cache["trained"]
            reused += synthetic.cache["reused"]
            slices[mode].append(synthetic.sets["singanseg"].images)
            print(f"{mode}, fold {f}: {synthetic.cache} in {time.perf_counter() - t0:.0f} s", flush=True)
        results[mode] = {"trained": trained, "reused": reused, "seconds": seconds}
    same = all(torch.equal(a, b) for a, b in zip(slices["shared cache"], slices["retrained per fold"]))
    print(f"\n{args.folds} folds, {args.size} px, {args.singan_slices} model(s) per case, k {args.k}, "
          f"{args.singan_iters} iterations per scale, {args.threads} threads")  # fmt: skip
    print("| SinGAN-Seg models | trained | reused | seconds |")
    print("| --- | --- | --- | --- |")
    for mode, r in results.items():
        print(f"| {mode} | {r['trained']} | {r['reused']} | {r['seconds']:.0f} |")
    shared, per_fold = results["shared cache"], results["retrained per fold"]
    ratio = per_fold["seconds"] / max(shared["seconds"], 1e-9)
    print(f"time ratio retrained per fold / shared cache: {ratio:.2f}x (target >= 4x); same synthetic slices: {same}")
    # before the cache, every fold trained a dataset per set: every model asked for was trained, none shared
    before = shared["trained"] + shared["reused"]
    per_model = shared["seconds"] / max(shared["trained"], 1)
    fewer = before / max(shared["trained"], 1)
    print(
        f"before the cache (every model asked for trained, in every fold and set): {before} models, about "
        f"{before * per_model:.0f} s at the measured {per_model:.1f} s per model: {fewer:.2f}x the shared cache's"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
