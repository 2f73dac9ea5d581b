"""ISBI 2012 EM membranes, the U-Net paper's first experiment: recipe and ablation table.

Trains on slices 00-19 of ``../shared/data/isbi2012/train`` and scores slices 20-24 (fixed split):
pixel error, Rand error (1 - foreground-restricted Rand F-score of the 4-connected cell interiors)
at threshold 0.5 and the best over 10 thresholds, and Dice of the cell interiors; and the challenge's
own metrics over the 5 slices (``unetkit.metrics.isbi``): original Rand and pixel error (maximal
F-scores over thresholds 0.00..1.00), V_rand and V_info errors after border thinning.
Runs: recipe paper / default, each with and without (weight maps + elastic deformation).
Each run gets the same CPU-time budget (process CPU time, fair on a busy machine).

Example (the numbers in BENCHMARKS.md):
    .venv/bin/python benchmarks/isbi2012.py --budget-min 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from unetkit.checkpoint import load_model
from unetkit.cpu.info import describe, torch_threads
from unetkit.data.layouts import find_samples, load_sample
from unetkit.inference.predictor import predict_probabilities
from unetkit.metrics.binary import binary_counts, dice, pixel_error
from unetkit.metrics.isbi import isbi_curves, isbi_scores
from unetkit.metrics.rand import rand_error, rand_error_sweep
from unetkit.recipes import resolve_config
from unetkit.training.loop import fit

ISBI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012" / "train"
PAPER_FIGURES = {"rand_error": 0.0382, "pixel_error": 0.0611, "warping_error": 0.000353}

# CPU-sized versions of the two recipes: same ideas, narrower network (base 16 instead of 64).
RUNS = {
    "paper": ("paper", ["model.base_channels=16", "data.patch_size=572", "inference.tile_size=572",
                        "data.samples_per_epoch=20", "train.lr=0.01"]),
    "paper -wmap -elastic": ("paper", ["model.base_channels=16", "data.patch_size=572", "inference.tile_size=572",
                                       "data.samples_per_epoch=20", "train.lr=0.01", "data.weight_map=false",
                                       "augment.elastic=false"]),
    "default": ("default", ["model.base_channels=16", "data.patch_size=256", "inference.tile_size=512",
                            "data.samples_per_epoch=64", "train.batch_size=4", "train.scheduler=cosine-time"]),
    "default +wmap +elastic": ("default", ["model.base_channels=16", "data.patch_size=256",
                                           "inference.tile_size=512", "data.samples_per_epoch=64",
                                           "train.batch_size=4", "train.scheduler=cosine-time",
                                           "data.weight_map=true", "augment.elastic=true"]),
}
COMMON = ["task=binary", "train.epochs=10000", "train.val_every=5", "train.budget_clock=cpu", "train.overlays=2"]


def make_split(source: Path, out: Path) -> tuple[Path, Path]:
    """Symlinked folders: slices 00-19 train, 20-24 validation (the data stays in ../shared)."""
    for name in ("train", "val"):
        for sub in ("images", "labels"):
            (out / name / sub).mkdir(parents=True, exist_ok=True)
    for image in sorted((source / "images").glob("*.png")):
        index = int("".join(ch for ch in image.stem if ch.isdigit()))
        split = "train" if index < 20 else "val"
        for sub in ("images", "labels"):
            link = out / split / sub / image.name
            if not link.exists():
                link.symlink_to((source / sub / image.name).resolve())
    return out / "train", out / "val"


def score(run_dir: Path, val_dir: Path) -> dict:
    model, config = load_model(run_dir / "best.pt")
    rows, curves = [], []
    for sample in find_samples(val_dir):
        image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
        probs = predict_probabilities(model, image, config, "cpu")
        foreground = 1.0 - probs[0]  # probability of cell interior
        truth = labels > 0
        counts = binary_counts(truth, foreground > 0.5)
        best, threshold = rand_error_sweep(truth, foreground)
        rows.append({"pixel_error": pixel_error(counts), "rand_error": rand_error(truth, foreground > 0.5),
                     "rand_error_best": best, "best_threshold": threshold, "dice": dice(counts)})
        curves.append(isbi_curves(truth, foreground))
    summary = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    summary.update(isbi_scores(curves))  # the challenge's metrics over the 5 slices, one threshold for all
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ISBI)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--budget-min", type=float, default=8.0, help="CPU minutes of training per run")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/isbi2012"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    if not args.data.is_dir():
        print(f"ISBI 2012 data not found at {args.data}; see ../shared/data/README.md", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    train_dir, val_dir = make_split(args.data, args.out / "split")
    results = {}
    for name in args.runs:
        recipe, overrides = RUNS[name]
        run_dir = args.out / name.replace(" ", "_")
        started = time.time()
        config = resolve_config(recipe, overrides=COMMON + overrides + [f"train.time_budget_s={args.budget_min * 60}"]
                                + args.overrides)
        result = fit(config, train_dir, run_dir, val_dir=val_dir, progress=False)
        summary = score(run_dir, val_dir)
        summary.update({"recipe": recipe, "epochs": len(result.history), "wall_min": (time.time() - started) / 60,
                        "patches_seen": int(sum(r["patches_per_s"] * r["train_seconds"] for r in result.history))})
        (run_dir / "benchmark.json").write_text(json.dumps(summary, indent=2))
        results[name] = summary
    print(f"\nISBI 2012, train slices 00-19, validation slices 20-24; {args.budget_min} CPU-min per run, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'run':<24} {'pixel_err':>9} {'rand_err':>9} {'rand_best':>9} {'dice':>6} {'patches':>8} "
          f"{'Rand(orig)':>10} {'pixel(orig)':>11} {'V_rand err':>10} {'V_info err':>10}")
    for name, s in results.items():
        print(f"{name:<24} {s['pixel_error']:>9.4f} {s['rand_error']:>9.4f} {s['rand_error_best']:>9.4f} "
              f"{s['dice']:>6.3f} {s['patches_seen']:>8} {s['rand_error_original']:>10.4f} "
              f"{s['pixel_error_original']:>11.4f} {s['rand_error_thinned']:>10.4f} {s['info_error_thinned']:>10.4f}")
    print(f"{'U-Net paper (test set)':<24} {PAPER_FIGURES['pixel_error']:>9.4f} {PAPER_FIGURES['rand_error']:>9.4f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
