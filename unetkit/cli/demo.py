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
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], default="binary",
                        help="binary: nuclei (default); multiclass: cells with cytoplasm and nucleus; "
                             "regression: virtual staining, compared with identity and Gaussian baselines")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.demo import run_demo

    metrics = run_demo(args.out, args.time_budget, args.seed, progress=not args.quiet, task=args.task)
    out = args.out
    if args.task != "binary":
        _print_task_outputs(args.task, metrics, out)
        return 0
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


def _print_task_outputs(task: str, metrics: dict, out: str) -> None:
    seconds, images = metrics["total_seconds"], metrics["test_images"]
    if task == "multiclass":
        scores = ", ".join(f"{name} {dice:.3f}" for name, dice in metrics["per_class_dice"].items())
        print(f"""
Demo finished in {seconds}s: test mean Dice {metrics['mean_dice']:.3f} over cytoplasm and nucleus on \
{images} unseen images (per class: {scores}); prediction {metrics['predict_megapixels_per_s']} MP/s.
Outputs:
  {out}/metrics.json          test metrics          {out}/test/evaluation.csv  per image
  {out}/test/confusion_matrix.png / .csv            rows truth, columns prediction
  {out}/overlays/             validation overlays (left prediction, right truth, legend below)
  {out}/test/masks/ overlays/ class-id masks (PNG) and overlays with a legend
  {out}/best.pt               checkpoint with the class names: unetkit predict --model {out}/best.pt IMAGES
  {out}/data/                 the synthetic dataset (train/val/test, images/ + masks/ class ids)""")
        return
    identity, gaussian = metrics["baselines"]["identity"], metrics["baselines"]["gaussian"]
    print(f"""
Demo finished in {seconds}s: test PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} on {images} \
unseen images; baselines: identity {identity['psnr']:.2f} dB, Gaussian filter (sigma {gaussian['sigma']:g}) \
{gaussian['psnr']:.2f} dB, so the U-Net gains {metrics['psnr_gain_over_gaussian']:.2f} dB over the better one.
Outputs:
  {out}/metrics.json          test metrics and baselines    {out}/test/evaluation.csv  per image
  {out}/overlays/             validation overlays (input | prediction | target)
  {out}/test/predictions/     float32 TIFFs in the target's units; overlays/ input | prediction
  {out}/best.pt               checkpoint (target normalisation inside)
  {out}/data/                 the synthetic dataset (train/val/test, images/ + targets/)""")
