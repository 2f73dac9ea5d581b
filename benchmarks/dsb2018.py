"""DSB 2018 nuclei: train U-Net variants on a fixed 85/15 split and score semantic and instance quality.

Variants (each trained with the same CPU time budget):
  binary       2-class U-Net (nucleus vs background); instances = connected components
  three-class  background / interior / boundary U-Net; instances = seeded watershed
  weight-map   2-class U-Net trained with the paper's weight map (w0 = 10, sigma = 5); components

Post-processing parameters are tuned on 24 training images (never on the validation split), then
the validation split is scored: DSB score (mean over IoU 0.5..0.95 of TP/(TP+FP+FN)), AP50, Dice, IoU,
per image type (fluorescence / brightfield / histology). Prediction speed is measured too.

Example (the numbers in BENCHMARKS.md):
    .venv/bin/python benchmarks/dsb2018.py --variants binary three-class --budget-min 25 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from unetkit.checkpoint import load_model
from unetkit.cpu.info import describe, torch_threads
from unetkit.data.io import read_image
from unetkit.data.layouts import find_samples, load_sample, split_samples
from unetkit.data.targets import instance_labels
from unetkit.inference.postprocess import postprocess, tune_postprocess
from unetkit.inference.predictor import predict_probabilities
from unetkit.metrics.binary import binary_counts, dice, iou
from unetkit.metrics.instances import instance_scores
from unetkit.recipes import resolve_config
from unetkit.tasks import get_task
from unetkit.training.loop import fit

DSB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dsb2018" / "stage1_train"

# 128 px patches (192 before 2026-12-02, the nuclei model's versions 1-7): 3x the patches per CPU-second,
# and validation every 24 epochs instead of 4; DSB 0.608 / AP50 0.811 from scratch in 60 CPU-min against
# 0.550 / 0.765 (BENCHMARKS.md, "From scratch in 60 CPU-minutes")
COMMON = [
    "model.depth=5", "model.base_channels=16", "model.padding=same", "model.norm=batch",
    "data.patch_size=128", "data.samples_per_epoch=512", "data.foreground_fraction=0.5",
    "data.val_fraction=0.15", "data.split_seed=0", "train.batch_size=8", "train.lr=0.002",
    "train.scheduler=cosine-time", "train.budget_clock=cpu", "train.epochs=1000", "train.val_every=24",
    "train.overlays=6",
    "inference.tile_size=256", "inference.batch_size=4",
]
VARIANTS = {
    "binary": ["task=binary"],
    "three-class": ["task=instances", "data.target=three-class", "data.boundary_width=2"],
    "weight-map": ["task=instances", "data.target=binary", "data.weight_map=true",
                   "data.w0=10", "data.sigma=5", "loss.dice_weight=0.5"],
}


def image_type(path: Path) -> str:
    """Fluorescence (dark background), brightfield (light, gray) or histology (light, coloured)."""
    image = read_image(path).astype(np.float32)
    rgb = image[:3] / max(float(image.max()), 1.0)
    colourful = float(np.abs(rgb[0] - rgb[1]).mean() + np.abs(rgb[1] - rgb[2]).mean()) > 0.02
    light = float(np.median(rgb)) > 0.5
    if not light:
        return "fluorescence"
    return "histology" if colourful else "brightfield"


def evaluate_variant(run_dir: Path, samples, tune_samples, config_kind: str) -> dict:
    model, config = load_model(run_dir / "best.pt")
    kind = get_task(config).instance_kind(config)

    def probabilities(sample):
        image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
        from unetkit.data.channels import match_channels

        image = match_channels(image, config.model.in_channels, sample.image_path)
        started = time.perf_counter()
        probs = predict_probabilities(model, image, config, "cpu")
        return probs, instance_labels(labels), time.perf_counter() - started

    tune = [probabilities(s) for s in tune_samples]
    grid = {"threshold": [0.4, 0.5, 0.6], "min_size": [5, 15, 30]}
    if kind == "three-class":
        grid["seed_threshold"] = [0.5, 0.6, 0.7, 0.8]
    best, _ = tune_postprocess([p for p, _, _ in tune], [t for _, t, _ in tune], kind, grid,
                               base=config.postprocess)
    rows = []
    pixels = seconds = 0.0
    for sample in samples:
        probs, truth, took = probabilities(sample)
        pixels += truth.size
        seconds += took
        predicted = postprocess(probs, best, kind)
        counts = binary_counts(truth > 0, (1 - probs[0]) > 0.5)
        scores = instance_scores(truth, predicted)
        rows.append({"image": sample.name, "type": image_type(sample.image_path), "height": truth.shape[0],
                     "width": truth.shape[1], "n_true": scores.n_true, "n_pred": scores.n_pred,
                     "dice": dice(counts), "iou": iou(counts), "dsb_score": scores.dsb_score, "ap50": scores.ap50})
    with open(run_dir / "validation_images.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {key: float(np.mean([r[key] for r in rows])) for key in ("dice", "iou", "dsb_score", "ap50")}
    by_type = {}
    for name in sorted({r["type"] for r in rows}):
        group = [r for r in rows if r["type"] == name]
        by_type[name] = {"images": len(group), "dice": float(np.mean([r["dice"] for r in group])),
                         "dsb_score": float(np.mean([r["dsb_score"] for r in group]))}
    summary.update({"images": len(rows), "postprocess": {k: getattr(best, k) for k in grid},
                    "predict_mp_per_s": pixels / 1e6 / seconds, "by_type": by_type})
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DSB)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--budget-min", type=float, default=25.0,
                        help="training minutes of process CPU time per variant (fair on a busy machine)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dsb2018"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--evaluate-only", action="store_true", help="score existing runs in --out")
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    if not args.data.is_dir():
        print(f"DSB 2018 data not found at {args.data}; see ../shared/data/README.md", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    samples = find_samples(args.data)
    train_samples, val_samples = split_samples(samples, 0.15, 0)
    tune_index = np.random.default_rng(1).choice(len(train_samples), min(24, len(train_samples)), replace=False)
    tune_samples = [train_samples[i] for i in tune_index]
    results = {}
    for variant in args.variants:
        run_dir = args.out / variant
        overrides = COMMON + VARIANTS[variant] + [f"train.time_budget_s={args.budget_min * 60}"] + args.overrides
        started = time.time()
        if not args.evaluate_only:
            config = resolve_config("default", overrides=overrides)
            result = fit(config, args.data, run_dir, progress=False)
            epochs = len(result.history)
            seconds_per_epoch = float(np.mean([r["train_seconds"] for r in result.history]))
        else:  # a finished (possibly resumed) run: read its history from the checkpoint
            from unetkit.checkpoint import load_checkpoint

            history = load_checkpoint(run_dir / "last.pt")["history"]
            epochs = len(history)
            seconds_per_epoch = float(np.mean([r["train_seconds"] for r in history]))
        summary = evaluate_variant(run_dir, val_samples, tune_samples, variant)
        summary.update({"variant": variant, "budget_cpu_min": args.budget_min, "epochs": epochs,
                        "seconds_per_epoch_of_512_patches": seconds_per_epoch,
                        "threads": torch.get_num_threads(),
                        "wall_min": (time.time() - started) / 60})
        (run_dir / "benchmark.json").write_text(json.dumps(summary, indent=2))
        results[variant] = summary
    print(f"\nDSB 2018 stage1_train, fixed 85/15 split ({len(val_samples)} validation images)")
    header = f"{'variant':<12} {'dsb_score':>9} {'ap50':>6} {'dice':>6} {'iou':>6} {'epochs':>6} {'s/epoch':>8}"
    print(header + f" {'MP/s':>6}")
    for variant, s in results.items():
        spe = f"{s['seconds_per_epoch_of_512_patches']:.1f}" if s["epochs"] else "-"
        print(f"{variant:<12} {s['dsb_score']:>9.3f} {s['ap50']:>6.3f} {s['dice']:>6.3f} {s['iou']:>6.3f} "
              f"{s['epochs'] or '-':>6} {spe:>8} {s['predict_mp_per_s']:>6.2f}")
        for name, group in s["by_type"].items():
            print(f"   {name:<13} n={group['images']:<3} dsb_score {group['dsb_score']:.3f}  "
                  f"dice {group['dice']:.3f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
