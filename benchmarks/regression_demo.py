"""Pixel-wise regression ("virtual staining" demo data): U-Net against identity and Gaussian baselines.

Data: ``unetkit.data.synthetic_tasks`` virtual-staining pairs (16 train, 4 validation, 4 test
images of 192..320 px, seed 0): a transmitted-light-like input, the clean nuclear stain as target.
The U-Net is the ``unetkit demo --task regression`` network (4 levels, 16..128 channels, L1 loss),
trained within a budget of process CPU time, scored on the test images by ``evaluate_regression``
(PSNR with each image's target range as data range, SSIM, MAE in target units).

Baselines see the same input and get the best global gray-value map they could have, fitted by
least squares on the test images themselves: identity (a * input + b) and a Gaussian filter
(a * G_sigma(input) + b, best sigma of 1, 2, 4, 8).

Example (the numbers in BENCHMARKS.md):
    .venv/bin/python benchmarks/regression_demo.py --budget-min 4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from unetkit.config import apply_overrides
from unetkit.cpu.info import describe, torch_threads
from unetkit.data.synthetic_tasks import write_regression_splits
from unetkit.demo import evaluate_against_baselines, task_demo_config
from unetkit.inference.files import PredictOptions, predict_files
from unetkit.training.loop import fit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-min", type=float, default=4.0, help="training minutes of process CPU time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/regression_demo"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    torch.set_num_threads(args.threads)
    if args.out.exists():
        shutil.rmtree(args.out)
    started = time.time()
    splits = write_regression_splits(args.out / "data", seed=args.seed)
    config = apply_overrides(task_demo_config("regression", args.budget_min * 60),
                             {"train.budget_clock": "cpu", "train.device": "cpu", "train.epochs": 1000,
                              "train.scheduler": "cosine-time"})
    result = fit(config, splits["train"], args.out / "run", splits["val"], progress=not args.quiet)
    predict_files(args.out / "run" / "last.pt", [splits["test"] / "images"], args.out / "test",
                  PredictOptions(device="cpu"), progress=False)
    metrics = evaluate_against_baselines(splits["test"], args.out / "test")
    metrics.update({"budget_min": args.budget_min, "threads": torch.get_num_threads(),
                    "epochs": len(result.history), "wall_min": (time.time() - started) / 60})
    (args.out / "benchmark.json").write_text(json.dumps(metrics, indent=2))

    identity, gaussian = metrics["baselines"]["identity"], metrics["baselines"]["gaussian"]
    print(f"\nvirtual staining, {metrics['test_images']} test images; U-Net after {args.budget_min} min CPU "
          f"({metrics['epochs']} epochs of 256 patches, {metrics['threads']} thread(s), model at budget end)")
    print(f"  {'method':<28} {'PSNR dB':>8} {'SSIM':>6} {'MAE':>8}")
    rows = [("U-Net", metrics), ("identity (best affine)", identity),
            (f"Gaussian s={gaussian['sigma']:g} (best affine)", gaussian)]
    for name, row in rows:
        print(f"  {name:<28} {row['psnr']:8.2f} {row['ssim']:6.3f} {row['mae']:8.1f}")
    print(f"  U-Net gain: {metrics['psnr_gain_over_identity']:+.2f} dB over identity, "
          f"{metrics['psnr_gain_over_gaussian']:+.2f} dB over the Gaussian filter")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
