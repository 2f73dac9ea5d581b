"""How many training images the end-of-training post-processing tuning needs: the spread of its choice.

An instances run ends by tuning threshold, seed threshold and min size (``DEFAULT_GRID``) on
``postprocess.tune_images`` training images, centre-cropped to 512 px (``unetkit/training/finalize.py``). This
script predicts ``--images`` training images of the DSB split once (the crops finalize takes), and the 80
validation images in full, runs the grid on both, then draws ``--draws`` random tuning sets of each size from
the training crops and reads the validation DSB score of the values each draw would choose: its mean, spread
and 5th percentile say how much a tuning set of that size costs by choosing badly. No choice is made on the
validation images; they only score the choices.

    .venv/bin/python benchmarks/tune_images.py [--model nuclei | --model run/last.pt] [--images 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pretrain import probabilities, split  # noqa: E402  (the split and prediction of the model card)

from unetkit.training.finalize import MAX_SIDE, centre_window  # noqa: E402  (the crops finalize tunes on)

SIZES = (24, 48, 96)


def centre_crop(probs: np.ndarray, labels: np.ndarray, side: int = MAX_SIDE[2]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (C, H, W), labels (H, W)) cut to the centre ``side`` px per axis, as finalize cuts."""
    window = centre_window(labels.shape, side)
    return np.ascontiguousarray(probs[(slice(None), *window)]), np.ascontiguousarray(labels[window])


def grid_scores(model, config, samples: list, crop: bool) -> dict[tuple, np.ndarray]:
    """Grid point (threshold, seed threshold, min size) -> DSB score per image."""
    from unetkit.data.targets import instance_labels
    from unetkit.inference.postprocess import DEFAULT_GRID, tune_postprocess
    from unetkit.tasks import get_task

    maps, truths = [], []
    for sample in samples:
        probs, labels = probabilities(model, config, sample)
        labels = instance_labels(np.asarray(labels))
        probs, labels = centre_crop(probs, labels) if crop else (probs, labels)
        maps.append(probs)
        truths.append(labels)
    _, rows = tune_postprocess(maps, truths, get_task(config).instance_kind(config), DEFAULT_GRID,
                               base=config.postprocess)
    return {(r["threshold"], r["seed_threshold"], r["min_size"]): np.asarray(r["scores"]) for r in rows}


def choice_spread(train: dict[tuple, np.ndarray], val: dict[tuple, np.ndarray], size: int, draws: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, Counter]:
    """Validation DSB scores of the grid points that ``draws`` random tuning sets of ``size`` images choose
    (the best mean on the set; ties to the first in grid order, as ``tune_postprocess``), and the choices."""
    keys = list(train)
    table = np.stack([train[k] for k in keys])  # (grid points, images)
    scores, chosen = [], Counter()
    for _ in range(draws):
        pick = rng.choice(table.shape[1], size, replace=False)
        best = keys[int(np.argmax(table[:, pick].mean(1)))]
        chosen[best] += 1
        scores.append(float(val[best].mean()))
    return np.asarray(scores), chosen


def main() -> int:
    from unetkit import checkpoint as ckpt
    from unetkit.cpu.info import describe

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="nuclei", help="packaged model name or checkpoint")
    parser.add_argument("--images", type=int, default=200, help="training images predicted (the pool)")
    parser.add_argument("--draws", type=int, default=1000, help="random tuning sets per size")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {describe()}; torch threads: {torch.get_num_threads()}", flush=True)
    train_samples, val_samples = split("nuclei", ROOT / "benchmarks" / "out" / "tune_images")
    pool = np.random.default_rng(1).choice(len(train_samples), min(args.images, len(train_samples)), replace=False)
    model, config = ckpt.load_model(args.model)
    started = time.process_time()
    train = grid_scores(model, config, [train_samples[i] for i in pool], crop=True)
    val = grid_scores(model, config, val_samples, crop=False)
    print(f"{len(pool)} training crops and {len(val_samples)} validation images, grid of {len(train)}: "
          f"{time.process_time() - started:.0f} CPU-s")
    best = max(val, key=lambda k: val[k].mean())
    print(f"best grid point on the validation images (for reference, never chosen): {best} {val[best].mean():.4f}")
    rng = np.random.default_rng(0)
    print("| tuning images | validation DSB of the choice: mean | sd | 5th percentile | worst | most chosen |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in [s for s in SIZES if s < len(pool)] + [len(pool)]:
        scores, chosen = choice_spread(train, val, size, args.draws if size < len(pool) else 1, rng)
        top = ", ".join(f"{k[0]:g}/{k[1]:g}/{k[2]:g} x{n}" for k, n in chosen.most_common(2))
        print(f"| {size} | {scores.mean():.4f} | {scores.std():.4f} | {np.percentile(scores, 5):.4f} | "
              f"{scores.min():.4f} | {top} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
