"""`unetkit demo`: the whole journey on synthetic nuclei in a few CPU minutes."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="generate synthetic nuclei, train, predict, evaluate (a few minutes on a CPU)",
        description="Runs the main job on an embedded default and prints where the outputs are.")
    parser.add_argument("--out", default="runs/demo", help="demo folder (cleared if it holds an earlier demo)")
    parser.add_argument("--time-budget", type=float, default=240.0, help="training seconds (default 240)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.demo import run_demo

    metrics = run_demo(args.out, args.time_budget, args.seed, progress=not args.quiet)
    out = args.out
    print(f"""
Demo finished in {metrics['total_seconds']}s: test Dice {metrics['dice']:.3f}, IoU {metrics['iou']:.3f} on \
{metrics['test_images']} unseen images (best validation Dice {metrics['best_val_dice']:.3f} at epoch \
{metrics['best_epoch']}); prediction {metrics['predict_megapixels_per_s']} MP/s.
Outputs:
  {out}/metrics.json          test metrics
  {out}/curves.png            training curves     {out}/metrics.csv  per-epoch numbers
  {out}/overlays/             validation overlays (magenta = prediction, green = truth outline)
  {out}/test/overlays/        test predictions over the images
  {out}/test/masks/ probabilities/   masks (PNG) and foreground probabilities (float32 TIFF)
  {out}/best.pt               checkpoint: unetkit predict --model {out}/best.pt IMAGES --out DIR
  {out}/data/                 the synthetic dataset (train/val/test, images/ + masks/)""")
    return 0
