"""The main job on an embedded default: synthetic nuclei -> train -> overlap-tile predict -> evaluate.

``make demo`` runs this on a fresh machine in a few minutes on 2 CPU cores. Everything lands in one
folder (default ``runs/demo``): the data it generated, the training run, test predictions,
``metrics.json`` with the test Dice.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from unetkit.config import RunConfig, apply_overrides

MARKER = ".unetkit-demo"  # only folders carrying this are cleared before a new demo

# A small padded U-Net that learns the synthetic nuclei in a couple of CPU minutes.
DEMO_OVERRIDES = {
    "task": "binary",
    "model.depth": 4,
    "model.base_channels": 16,
    "model.padding": "same",
    "model.norm": "batch",
    "data.patch_size": 128,
    "data.samples_per_epoch": 256,
    "data.foreground_fraction": 0.5,
    "train.epochs": 12,
    "train.batch_size": 8,
    "train.lr": 3e-3,
    "train.overlays": 3,
    "inference.tile_size": 256,
    "inference.batch_size": 4,
}


def demo_config(time_budget_s: float) -> RunConfig:
    return apply_overrides(RunConfig(), {**DEMO_OVERRIDES, "train.time_budget_s": time_budget_s})


def run_demo(out_dir: str | Path = "runs/demo", time_budget_s: float = 240.0, seed: int = 0,
             progress: bool = True, task: str = "binary") -> dict:
    """Run the whole journey; returns the test metrics (also written to ``metrics.json``).

    ``task``: ``binary`` (nuclei, the default), or ``multiclass`` / ``regression``
    (``unetkit.demo_tasks``).
    """
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"demo task must be binary, multiclass or regression, got '{task}'")
    from unetkit.data.synthetic import write_synthetic_splits
    from unetkit.inference.files import PredictOptions, predict_files
    from unetkit.metrics.folders import evaluate_binary
    from unetkit.metrics.writers import write_rows_csv
    from unetkit.training.loop import fit

    out = Path(out_dir)
    if out.exists():
        if not (out / MARKER).exists():
            raise FileExistsError(f"{out} exists and is not a demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("created by unetkit demo\n")
    started = time.monotonic()
    if task != "binary":
        from unetkit.demo_tasks import run_task_demo

        return run_task_demo(task, out, time_budget_s, seed, progress, started)

    print(f"1/4 generating synthetic nuclei (seed {seed}) in {out / 'data'}")
    splits = write_synthetic_splits(out / "data", seed=seed)

    print(f"2/4 training a small U-Net for at most {time_budget_s:.0f}s (CPU is fine)")
    result = fit(demo_config(time_budget_s), splits["train"], out, val_dir=splits["val"], progress=progress)

    print("3/4 predicting the test images tile by tile (overlap-tile strategy)")
    rows = predict_files(out / "best.pt", [splits["test"] / "images"], out / "test", PredictOptions(),
                         progress=progress)

    print("4/4 evaluating against the test masks")
    evaluation = evaluate_binary(splits["test"] / "masks", out / "test" / "masks")
    write_rows_csv(evaluation.rows, out / "test" / "evaluation.csv")
    pixels = sum(r["height"] * r["width"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    metrics = {
        "test_images": evaluation.summary["images"],
        "dice": evaluation.summary["dice"],
        "iou": evaluation.summary["iou"],
        "precision": evaluation.summary["precision"],
        "recall": evaluation.summary["recall"],
        "best_epoch": result.best_epoch,
        "best_val_dice": result.best_score,
        "epochs_run": len(result.history),
        "predict_megapixels_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
