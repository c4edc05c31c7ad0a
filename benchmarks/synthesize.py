"""Dataset synthesis throughput: models per hour and samples per second with 1 and N torchrun ranks on CPU.

Runs ``python -m monai_singanseg synthesize`` (one process, then ``torchrun --nproc_per_node N``) over the real
cases of ../shared/data (two TCGA cases, 4 sequences; two BRATS-2013 cases, FLAIR + T1c with 3 -> 1), one
model per case, and prints wall time, models/hour, samples/s, the speed-up and each rank's peak RSS (from the
result records of the manifest).

    python benchmarks/synthesize.py                      # CPU, --iters 60 (the default schedule is --iters 200)
    python benchmarks/synthesize.py --iters 200 --ranks 2
On a GPU machine, every rank takes its own GPU (``torchrun --nproc_per_node <GPUs>``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_threads, brats2013_items, tcga_items, write_datalist_json


def real_datalist(folder: Path) -> Path:
    """Two TCGA cases (four sequences) and two BRATS-2013 cases (FLAIR + T1c) as one datalist."""
    items = tcga_items() + brats2013_items(("brats_2013_pat0001_1", "brats_2013_pat0002_1"))
    return write_datalist_json(items, folder / "real.json")


def run(ranks: int, data: Path, out: Path, args: argparse.Namespace) -> dict:
    options = [
        "--data",
        str(data),
        "--out",
        str(out),
        "--label-map",
        "3:1",
        "--iters",
        str(args.iters),
        "--samples-per-model",
        str(args.samples),
        "--max-size",
        str(args.max_size),
        "--quiet",
    ]
    if ranks == 1:
        cmd = [sys.executable, "-m", "monai_singanseg", "synthesize", *options]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(ranks),
            "-m",
            "monai_singanseg",
            "synthesize",
            *options,
        ]
    env = dict(os.environ, OMP_NUM_THREADS="1" if ranks > 1 else str(args.threads))
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    done = [e for e in manifest["entries"] if e["status"] == "done"]
    rss = {}
    for e in done:
        rank = e["owner"]["rank"]
        rss[rank] = max(rss.get(rank, 0.0), e["peak_rss_mb"])
    return {
        "ranks": ranks,
        "models": len(done),
        "samples": manifest["samples"],
        "wall_s": wall,
        "models_per_hour": 3600 * len(done) / wall,
        "samples_per_s": manifest["samples"] / wall,
        "peak_rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2, help="ranks of the parallel run (default 2)")
    parser.add_argument("--iters", type=int, default=60, help="iterations per scale (default 60; the product's 200)")
    parser.add_argument("--samples", type=int, default=10, help="samples per model (default 10)")
    parser.add_argument("--max-size", type=int, default=128)
    add_threads(parser, 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = real_datalist(Path(tmp))
        one = run(1, data, Path(tmp) / "one", args)
        many = run(args.ranks, data, Path(tmp) / "many", args)
    for r in (one, many):
        print(
            f"{r['ranks']} rank(s): {r['models']} models, {r['samples']} samples in {r['wall_s']:.1f} s -> "
            f"{r['models_per_hour']:.1f} models/hour, {r['samples_per_s']:.2f} samples/s; peak RSS per rank (MB) "
            f"{r['peak_rss_mb']}"
        )
    print(
        f"speed-up {args.ranks} ranks / 1 rank: {one['wall_s'] / many['wall_s']:.2f}x "
        f"(--iters {args.iters}, --max-size {args.max_size}, {args.samples} samples per model)"
    )


if __name__ == "__main__":
    main()
