"""The demo for the multiclass and regression tasks (``unetkit demo --task multiclass|regression``).

Same journey as the binary demo (``unetkit.demo``): synthetic data -> train -> overlap-tile predict
-> evaluate, in one folder, in a few CPU minutes.

- multiclass: cells with background / cytoplasm / nucleus; per-class Dice on unseen images and the
  confusion matrix.
- regression: "virtual staining", transmitted-light-like input -> nuclear stain; PSNR / SSIM / MAE on
  unseen images against two baselines that see the same input: identity (the normalised input under
  its best affine map to the target) and a Gaussian filter (best sigma, then its best affine map).
  Both maps are fitted on the test images themselves, which favours the baselines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.synthetic_tasks import CELL_CLASSES
from unetkit.demo import DEMO_OVERRIDES

# The binary demo's small padded U-Net; it learns these data in a couple of CPU minutes too.
_COMMON = {key: value for key, value in DEMO_OVERRIDES.items() if key != "task"}
TASK_OVERRIDES = {
    "multiclass": {**_COMMON, "task": "multiclass", "data.class_names": list(CELL_CLASSES)},
    "regression": {**_COMMON, "task": "regression", "loss.regression": "l1"},
}
BASELINE_SIGMAS = (1.0, 2.0, 4.0, 8.0)


def task_demo_config(task: str, time_budget_s: float) -> RunConfig:
    return apply_overrides(RunConfig(), {**TASK_OVERRIDES[task], "train.time_budget_s": time_budget_s})


def run_task_demo(task: str, out: Path, time_budget_s: float, seed: int, progress: bool,
                  started: float) -> dict[str, Any]:
    """Run the multiclass or regression demo into the prepared folder ``out``; returns its metrics."""
    from unetkit.inference.files import PredictOptions, predict_files
    from unetkit.training.loop import fit

    if task == "multiclass":
        from unetkit.data.synthetic_tasks import write_multiclass_splits

        print(f"1/4 generating synthetic cells (background, cytoplasm, nucleus; seed {seed}) in "
              f"{out / 'data'}")
        splits = write_multiclass_splits(out / "data", seed=seed)
    else:
        from unetkit.data.synthetic_tasks import write_regression_splits

        print(f"1/4 generating synthetic virtual-staining pairs (seed {seed}) in {out / 'data'}")
        splits = write_regression_splits(out / "data", seed=seed)

    print(f"2/4 training a small U-Net for at most {time_budget_s:.0f}s (CPU is fine)")
    result = fit(task_demo_config(task, time_budget_s), splits["train"], out, val_dir=splits["val"],
                 progress=progress)

    print("3/4 predicting the test images tile by tile (overlap-tile strategy)")
    rows = predict_files(out / "best.pt", [splits["test"] / "images"], out / "test", PredictOptions(),
                         progress=progress)

    print("4/4 evaluating against the test " + ("masks" if task == "multiclass" else "targets"))
    if task == "multiclass":
        metrics = _evaluate_multiclass(splits["test"], out / "test")
    else:
        metrics = evaluate_against_baselines(splits["test"], out / "test")
    pixels = sum(r["height"] * r["width"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    metrics.update({
        "task": task,
        "best_epoch": result.best_epoch,
        f"best_{'val_mean_dice' if task == 'multiclass' else 'val_psnr'}": result.best_score,
        "epochs_run": len(result.history),
        "predict_megapixels_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "total_seconds": round(time.monotonic() - started, 1),
    })
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _evaluate_multiclass(test: Path, pred: Path) -> dict[str, Any]:
    from unetkit.metrics.folders import evaluate_multiclass
    from unetkit.metrics.writers import write_confusion_matrix, write_rows_csv

    evaluation = evaluate_multiclass(test / "masks", pred, len(CELL_CLASSES), class_names=CELL_CLASSES)
    write_rows_csv(evaluation.rows, pred / "evaluation.csv")
    summary = evaluation.summary
    write_confusion_matrix(summary["confusion_matrix"], summary["class_names"], pred / "confusion_matrix.csv",
                           pred / "confusion_matrix.png")
    return {
        "test_images": summary["images"],
        "mean_dice": summary["mean_dice"],
        "mean_iou": summary["mean_iou"],
        "per_class_dice": dict(zip(summary["class_names"], summary["per_class_dice"], strict=True)),
        "pixel_accuracy": summary["pixel_accuracy"],
    }


def evaluate_against_baselines(test: Path, pred: Path) -> dict[str, Any]:
    """Score ``pred/predictions`` against ``test/targets`` and the two baselines on ``test/images``;
    writes ``pred/evaluation.csv``."""
    from unetkit.data.image_targets import read_target
    from unetkit.data.io import normalize_percentile, read_image
    from unetkit.metrics.folders import evaluate_regression
    from unetkit.metrics.writers import write_rows_csv

    evaluation = evaluate_regression(test / "targets", pred / "predictions")
    write_rows_csv(evaluation.rows, pred / "evaluation.csv")
    names = sorted(p.stem for p in (test / "images").iterdir() if p.suffix == ".png")
    inputs = [normalize_percentile(read_image(test / "images" / f"{n}.png"))[0] for n in names]
    targets = [read_target(test / "targets" / f"{n}.tif")[0] for n in names]
    baselines = regression_baselines(inputs, targets)
    summary = evaluation.summary
    return {
        "test_images": summary["images"],
        "psnr": summary["psnr"], "ssim": summary["ssim"], "mae": summary["mae"],
        "baselines": baselines,
        "psnr_gain_over_identity": summary["psnr"] - baselines["identity"]["psnr"],
        "psnr_gain_over_gaussian": summary["psnr"] - baselines["gaussian"]["psnr"],
    }


def _affine_fit(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> tuple[float, float]:
    """(a, b) minimising sum (a x + b - t)^2 over all pixels of all images (least squares)."""
    x = np.concatenate([np.ravel(i) for i in inputs]).astype(np.float64)
    t = np.concatenate([np.ravel(i) for i in targets]).astype(np.float64)
    a, b = np.polyfit(x, t, 1)
    return float(a), float(b)


def regression_baselines(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                         sigmas: Sequence[float] = BASELINE_SIGMAS) -> dict[str, dict[str, float]]:
    """Mean PSNR / SSIM / MAE of two baselines on (H, W) input and target images.

    ``identity``: a * input + b; ``gaussian``: a * gaussian_filter(input, sigma) + b with the sigma of
    best PSNR among ``sigmas``. (a, b) are least-squares fits over all given images, so each baseline
    gets the best global gray-value map it could have.
    """
    from scipy import ndimage

    from unetkit.metrics.regression import regression_scores

    def score(candidates: Sequence[np.ndarray]) -> dict[str, float]:
        a, b = _affine_fit(candidates, targets)
        pairs = zip(candidates, targets, strict=True)
        rows = [regression_scores(t, a * c + b, spatial_dims=2) for c, t in pairs]
        result = {key: float(np.mean([r[key] for r in rows])) for key in ("psnr", "ssim", "mae")}
        return {**result, "scale": a, "offset": b}

    baselines = {"identity": score(inputs)}
    best = None
    for sigma in sigmas:
        scores = score([ndimage.gaussian_filter(i.astype(np.float64), sigma) for i in inputs])
        if best is None or scores["psnr"] > best["psnr"]:
            best = {**scores, "sigma": float(sigma)}
    baselines["gaussian"] = best
    return baselines
