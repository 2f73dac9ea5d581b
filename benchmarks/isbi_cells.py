"""EM cells from the membrane model: the binary seeded watershed (``postprocess.method=watershed``) scored
with the ISBI 2012 metrics, against the probability map it starts from.

The probability map is what the U-Net paper scored: its original Rand error counts every predicted membrane
pixel inside a true cell as a split, so a map with membranes thicker than the truth's pays for it. The
watershed floods seeds (``p_cell > seed_threshold``) through ``p_cell > threshold`` and leaves one-pixel
lines where floods meet: cells as instances, the membranes between them as lines. This script predicts the
packaged ``em-membranes`` model (flip TTA, as its card advises) on the training slices 00-19 and the
validation slices 20-24, runs the grid through ``unetkit.inference.postprocess`` and scores the masks
(cells non-zero) with ``unetkit.metrics.isbi``. The rule that picks the shipped values reads the training
slices only; the validation rows score every grid point so that the choice can be judged, not made, on them.

    .venv/bin/python benchmarks/isbi_cells.py [--model em-membranes] [--no-tta]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pretrain import probabilities, split  # noqa: E402  (the split and prediction of the model card)

THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2)  # flooded: p_cell > threshold (0: every pixel but the lines)
SEEDS = (0.4, 0.5, 0.6, 0.7)
KEYS = ("rand_error_original", "pixel_error_original", "rand_error_thinned", "info_error_thinned",
        "warping_error")


def cell_masks(maps: list[np.ndarray], threshold: float, seed_threshold: float) -> list[np.ndarray]:
    """The watershed's cells as masks (non-zero = cell, the lines and the unflooded background 0)."""
    from unetkit.config import PostprocessConfig
    from unetkit.inference.postprocess import postprocess

    config = PostprocessConfig(method="watershed", threshold=threshold, seed_threshold=seed_threshold,
                               min_size=0, fill_holes=False)
    return [postprocess(np.stack([1 - p, p]), config, "binary") > 0 for p in maps]


def scores(truths: list[np.ndarray], proposals: list[np.ndarray], probability: bool) -> dict[str, float]:
    from unetkit.metrics.isbi import isbi_curves, isbi_scores

    return isbi_scores([isbi_curves(t, p, is_probability=probability) for t, p in zip(truths, proposals, strict=True)])


def chosen(rows: dict[tuple, dict]) -> tuple:
    """The rule, on the training slices: the lowest sum of the two original errors (Rand and pixel, the
    paper's headline pair, weighed alike), seeds no lower than the cell decision threshold 0.5."""
    allowed = [k for k in rows if k[1] >= 0.5]
    return min(allowed, key=lambda k: rows[k]["rand_error_original"] + rows[k]["pixel_error_original"])


def main() -> int:
    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.cpu.info import describe

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="em-membranes", help="packaged model name or checkpoint")
    parser.add_argument("--no-tta", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {describe()}; torch threads: {torch.get_num_threads()}", flush=True)
    train_samples, val_samples = split("em-membranes", ROOT / "benchmarks" / "out" / "isbi_cells" / "em-membranes")
    model, config = ckpt.load_model(args.model)
    config = apply_overrides(config, {"inference.tta": not args.no_tta})
    table = {}
    for name, samples in (("training slices 00-19", train_samples), ("validation slices 20-24", val_samples)):
        started = time.process_time()
        pairs = [probabilities(model, config, s) for s in samples]
        maps, truths = [1.0 - p[0] for p, _ in pairs], [np.asarray(t) > 0 for _, t in pairs]
        rows = {("map", "-"): scores(truths, maps, True)}
        for threshold in THRESHOLDS:
            for seed in SEEDS:
                rows[(threshold, seed)] = scores(truths, cell_masks(maps, threshold, seed), False)
        table[name] = rows
        print(f"{name}: {len(samples)} predicted and scored, {time.process_time() - started:.0f} CPU-s", flush=True)
    pick = chosen({k: v for k, v in table["training slices 00-19"].items() if k[0] != "map"})
    print(f"chosen on the training slices: threshold {pick[0]}, seed threshold {pick[1]}")
    print("| slices | output | threshold | seeds > | " + " | ".join(KEYS) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in KEYS) + " |")
    for name, rows in table.items():
        for (threshold, seed), row in rows.items():
            output = "probability map" if threshold == "map" else "cells"
            output += " (chosen)" if (threshold, seed) == pick else ""
            cells = " | ".join(f"{row[k]:.6f}" if k == "warping_error" else f"{row[k]:.4f}" for k in KEYS)
            print(f"| {name} | {output} | {threshold} | {seed} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
