"""The main job on an embedded default: synthetic data -> train -> overlap-tile predict -> evaluate.

``make demo`` runs the binary demo on a fresh machine in a few minutes on 2 CPU cores. Everything
lands in one folder (default ``runs/demo``): the data it generated, the training run, test
predictions, ``metrics.json`` with the test scores. One ``Demo`` entry per task says what differs:

- binary: synthetic fluorescence nuclei; test Dice.
- multiclass: cells with background / cytoplasm / nucleus; per-class Dice and the confusion matrix.
- regression: "virtual staining", transmitted-light-like input -> nuclear stain; PSNR / SSIM / MAE
  against two baselines that see the same input (``unetkit.metrics.baselines``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unetkit.config import RunConfig, apply_overrides
from unetkit.safety.atomic import write_text
from unetkit.safety.paths import PREDICTION_FOLDERS

MARKER = ".unetkit-demo"  # only folders carrying this are cleared before a new demo

# A small padded U-Net that learns the synthetic data in a couple of CPU minutes.
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


@dataclass(frozen=True)
class Demo:
    """What one task's demo generates, how it is configured and scored, and what it prints."""

    data: str  # what the synthetic data are (printed)
    write_splits: Callable[[Path, int], dict[str, Path]]  # (folder, seed) -> {"train": ..., "val": ..., "test": ...}
    score: Callable[[Path, Path], dict[str, Any]]  # (test split, prediction folder) -> test metrics
    report: Callable[[dict[str, Any], str], str]  # (metrics, out folder) -> the closing message
    overrides: dict[str, Any]  # on top of DEMO_OVERRIDES


def demo_config(time_budget_s: float, task: str = "binary") -> RunConfig:
    """The demo's run config for ``task`` with a training time budget."""
    overrides = {**DEMO_OVERRIDES, **demo_for(task).overrides, "task": task, "train.time_budget_s": time_budget_s}
    return apply_overrides(RunConfig(), overrides)


def task_demo_config(task: str, time_budget_s: float) -> RunConfig:
    """``demo_config`` with the task first (the benchmarks' spelling)."""
    return demo_config(time_budget_s, task)


def run_demo(out_dir: str | Path = "runs/demo", time_budget_s: float = 240.0, seed: int = 0,
             progress: bool = True, task: str = "binary") -> dict[str, Any]:
    """Run the whole journey for ``task`` (binary, multiclass, regression); returns the test metrics (also
    written to ``metrics.json``)."""
    from unetkit.config_rules import validate_training_config
    from unetkit.errors import InputError
    from unetkit.inference.files import PredictOptions, predict_files
    from unetkit.tasks import get_task
    from unetkit.training.loop import fit

    demo = demo_for(task)
    if seed < 0:
        raise InputError(f"--seed {seed}: expected an integer >= 0")
    validate_training_config(demo_config(time_budget_s, task))  # before anything in the folder is touched
    out = Path(out_dir)
    if out.exists():
        _clear_earlier_demo(out)
    out.mkdir(parents=True)
    write_text(out / MARKER, MARKER_HEADER)
    started = time.monotonic()

    print(f"1/4 generating {demo.data} (seed {seed}) in {out / 'data'}")
    splits = demo.write_splits(out / "data", seed)
    data_files = sorted(str(path.relative_to(out)) for path in (out / "data").rglob("*") if path.is_file())
    write_text(out / MARKER, MARKER_HEADER + "".join(f"{name}\n" for name in data_files))  # what it may clear
    print(f"2/4 training a small U-Net for at most {time_budget_s:.0f}s (CPU is fine)")
    result = fit(demo_config(time_budget_s, task), splits["train"], out, val_dir=splits["val"], progress=progress)
    print("3/4 predicting the test images tile by tile (overlap-tile strategy)")
    rows = predict_files(out / "best.pt", [splits["test"] / "images"], out / "test", PredictOptions(),
                         progress=progress)
    print("4/4 evaluating against the test truth")
    metrics = demo.score(splits["test"], out / "test")
    pixels = sum(r["height"] * r["width"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    metrics.update({
        "task": task,
        "best_epoch": result.best_epoch,
        f"best_{get_task(task).score_key}": result.best_score,
        "epochs_run": len(result.history),
        "predict_megapixels_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "total_seconds": round(time.monotonic() - started, 1),
    })
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))  # atomic: a temporary name, then renamed
    return metrics


MARKER_HEADER = "created by unetkit demo; the data files it wrote:\n"
# what a demo writes besides its data (listed in the marker): the run's files, its overlays and test predictions
DEMO_OUTPUTS = ("best.pt", "last.pt", "config.yaml", "metrics.csv", "curves.png", "summary.json", "metrics.json",
                "overlays", "test")


DEMO_TABLES = ("evaluation", "prediction", "classes", "confusion_matrix", "objects")  # test/'s own files


def _demo_output(rel: Path, stems: set[str], any_name: bool) -> bool:
    """True for a file the demo writes: its run's files, and under ``overlays/`` and ``test/`` the pictures and maps
    named after its images (``any_name``: an old marker without the image list) and test/'s tables."""
    parts = rel.parts
    if len(parts) == 1:
        return parts[0] in DEMO_OUTPUTS
    if parts[0] == "test" and len(parts) == 2 and rel.name.startswith(DEMO_TABLES):
        return True
    where = parts[:1] if parts[0] == "overlays" else parts[:2]
    folders = (("overlays",), *(("test", folder) for folder in PREDICTION_FOLDERS))
    if where not in folders or len(parts) != len(where) + 1:  # a picture or map directly in one of them
        return False
    return any_name or rel.name.split(".")[0] in stems


def _clear_earlier_demo(out: Path) -> None:
    """Remove an earlier demo's folder, or refuse one holding anything the demo did not write (a user's notes, an
    image added to its data): a demo never deletes what it did not write."""
    from unetkit.errors import InputError

    if out.is_symlink() or not out.is_dir():
        raise InputError(f"--out {out} is a link or a file; give a demo folder of its own")
    marker = out / MARKER
    if not marker.is_file():
        raise FileExistsError(f"{out} exists and is not a demo folder; choose another --out")
    lines = marker.read_text().splitlines()
    listed = set(lines[1:])
    old_style = lines[:1] == ["created by unetkit demo"]  # before the file list: its data/ is taken as the demo's
    stems = {Path(line).name.split(".")[0] for line in listed}  # the demo's images: outputs are named after them
    foreign = sorted(str(rel) for rel in (path.relative_to(out) for path in out.rglob("*")
                                          if path.is_file() and path != marker and not path.name.startswith("."))
                     if not (str(rel) in listed or (old_style and rel.parts[0] == "data")
                             or _demo_output(rel, stems, old_style)))
    if foreign:
        raise InputError(f"--out {out} holds files the demo did not write (e.g. {foreign[0]}); move them away, or "
                         "choose another --out")
    shutil.rmtree(out)


def describe(task: str, metrics: dict[str, Any], out: str | Path) -> str:
    """The closing message of a demo: scores and where the outputs are."""
    return demo_for(task).report(metrics, str(out))


# --------------------------------------------------------------------------------------------------
# the tasks' demos


def _binary_splits(folder: Path, seed: int) -> dict[str, Path]:
    from unetkit.data.synthetic import write_synthetic_splits

    return write_synthetic_splits(folder, seed=seed)


def _binary_score(test: Path, pred: Path) -> dict[str, Any]:
    from unetkit.metrics.folders import evaluate_binary
    from unetkit.metrics.writers import write_rows_csv

    evaluation = evaluate_binary(test / "masks", pred / "masks")
    write_rows_csv(evaluation.rows, pred / "evaluation.csv")
    summary = evaluation.summary
    return {"test_images": summary["images"], **{k: summary[k] for k in ("dice", "iou", "precision", "recall")}}


def _binary_report(metrics: dict[str, Any], out: str) -> str:
    return f"""
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
  {out}/data/                 the synthetic dataset (train/val/test, images/ + masks/)"""


def _multiclass_splits(folder: Path, seed: int) -> dict[str, Path]:
    from unetkit.data.synthetic_tasks import write_multiclass_splits

    return write_multiclass_splits(folder, seed=seed)


def _multiclass_score(test: Path, pred: Path) -> dict[str, Any]:
    from unetkit.data.synthetic_tasks import CELL_CLASSES
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


def _multiclass_report(metrics: dict[str, Any], out: str) -> str:
    scores = ", ".join(f"{name} {dice:.3f}" for name, dice in metrics["per_class_dice"].items())
    return f"""
Demo finished in {metrics['total_seconds']}s: test mean Dice {metrics['mean_dice']:.3f} over cytoplasm and nucleus \
on {metrics['test_images']} unseen images (per class: {scores}); prediction {metrics['predict_megapixels_per_s']} MP/s.
Outputs:
  {out}/metrics.json          test metrics          {out}/test/evaluation.csv  per image
  {out}/test/confusion_matrix.png / .csv            rows truth, columns prediction
  {out}/overlays/             validation overlays (left prediction, right truth, legend below)
  {out}/test/masks/ overlays/ class-id masks (PNG) and overlays with a legend
  {out}/best.pt               checkpoint with the class names: unetkit predict --model {out}/best.pt IMAGES
  {out}/data/                 the synthetic dataset (train/val/test, images/ + masks/ class ids)"""


def _regression_splits(folder: Path, seed: int) -> dict[str, Path]:
    from unetkit.data.synthetic_tasks import write_regression_splits

    return write_regression_splits(folder, seed=seed)


def evaluate_against_baselines(test: Path, pred: Path) -> dict[str, Any]:
    """Score ``pred/predictions`` against ``test/targets`` and the two baselines on ``test/images``;
    writes ``pred/evaluation.csv``."""
    from unetkit.data.image_targets import read_target
    from unetkit.data.io import normalize_percentile, read_image
    from unetkit.metrics.baselines import regression_baselines
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


def _regression_report(metrics: dict[str, Any], out: str) -> str:
    identity, gaussian = metrics["baselines"]["identity"], metrics["baselines"]["gaussian"]
    return f"""
Demo finished in {metrics['total_seconds']}s: test PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} on \
{metrics['test_images']} unseen images; baselines: identity {identity['psnr']:.2f} dB, Gaussian filter (sigma \
{gaussian['sigma']:g}) {gaussian['psnr']:.2f} dB, so the U-Net gains {metrics['psnr_gain_over_gaussian']:.2f} dB over \
the better one.
Outputs:
  {out}/metrics.json          test metrics and baselines    {out}/test/evaluation.csv  per image
  {out}/overlays/             validation overlays (input | prediction | target)
  {out}/test/predictions/     float32 TIFFs in the target's units; overlays/ input | prediction
  {out}/best.pt               checkpoint (target normalisation inside)
  {out}/data/                 the synthetic dataset (train/val/test, images/ + targets/)"""


def _cell_classes() -> list[str]:
    from unetkit.data.synthetic_tasks import CELL_CLASSES

    return list(CELL_CLASSES)


DEMOS: dict[str, Demo] = {
    "binary": Demo("synthetic nuclei", _binary_splits, _binary_score, _binary_report, {}),
    "multiclass": Demo("synthetic cells (background, cytoplasm, nucleus)", _multiclass_splits, _multiclass_score,
                       _multiclass_report, {"data.class_names": _cell_classes()}),
    "regression": Demo("synthetic virtual-staining pairs", _regression_splits, evaluate_against_baselines,
                       _regression_report, {"loss.regression": "l1"}),
}


def demo_for(task: str) -> Demo:
    if task not in DEMOS:
        raise ValueError(f"demo task must be one of {', '.join(DEMOS)}, got '{task}'")
    return DEMOS[task]
