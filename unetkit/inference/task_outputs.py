"""What ``unetkit predict`` writes for the multiclass and regression tasks (one file per image stem).

multiclass: ``masks/<stem>.png`` class-id image (uint8, uint16 above 255 classes), ``overlays/<stem>.png``
the classes over the image with a legend, and on request ``probabilities/<class name>/<stem>.tif``
(float32 softmax probability per class). The per-image row gets ``fraction_<class name>``.

regression: ``predictions/<stem>.tif`` float32 in the target's units (the checkpoint's target
normalisation undone), (H, W) for one channel else (C', H, W); ``overlays/<stem>.png`` input |
prediction. The row gets ``mean_<channel>`` of the prediction.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig
from unetkit.data.io import write_png, write_tiff
from unetkit.safety.atomic import atomic_path
from unetkit.visualize.images import class_overlay, save_rgb


def safe_name(name: str) -> str:
    """A class name usable as a folder name: other than letters, digits, '-', '_' and '.' -> '_'.

    Example: "mitochondrial boundaries" -> "mitochondrial_boundaries".
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "class"


def write_multiclass_outputs(probs: np.ndarray, image: np.ndarray, config: RunConfig, out_dir: Path,
                             stem: str, class_probabilities: bool = False) -> dict[str, Any]:
    """Write the index mask, the overlay with legend and (optionally) per-class probabilities of one
    image from its softmax probabilities (K, H, W); returns the row entries (class fractions)."""
    from unetkit.training.tasks import class_table
    from unetkit.visualize.legend import with_legend

    table = class_table(config)
    classes = probs.argmax(0)  # (H, W)
    dtype = np.uint8 if table.num_classes <= 256 else np.uint16
    write_png(out_dir / "masks" / f"{stem}.png", classes.astype(dtype))
    colours = table.display_colors()
    save_rgb(out_dir / "overlays" / f"{stem}.png",
             with_legend(class_overlay(image, classes, colours), table.names, colours))
    if class_probabilities:
        for index, name in enumerate(table.names):
            folder = out_dir / "probabilities" / safe_name(name)
            write_tiff(folder / f"{stem}.tif", probs[index].astype(np.float32))
    counts = np.bincount(classes.ravel(), minlength=table.num_classes)
    fractions = zip(table.names, counts / classes.size, strict=True)
    return {f"fraction_{name}": round(float(share), 4) for name, share in fractions}


def write_regression_outputs(output: np.ndarray, image: np.ndarray, config: RunConfig, out_dir: Path,
                             stem: str) -> dict[str, Any]:
    """De-normalise the network output (C', H, W), write the float32 TIFF and the overlay; returns the
    row entries (mean predicted value per channel)."""
    from unetkit.data.image_targets import TargetNorm
    from unetkit.training.task_validation import regression_panel

    prediction = TargetNorm.from_config(config.data).denormalize(output)
    write_tiff(out_dir / "predictions" / f"{stem}.tif", prediction[0] if len(prediction) == 1 else prediction)
    save_rgb(out_dir / "overlays" / f"{stem}.png", regression_panel(image, prediction))
    return {f"mean_{c}": round(float(prediction[c].mean()), 4) for c in range(len(prediction))}


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per-image rows as CSV (columns in order of first appearance), e.g. ``classes.csv`` with one
    ``fraction_<class name>`` column per class."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_task_outputs(output: np.ndarray, image: np.ndarray, config: RunConfig, out_dir: Path, path: Path,
                       seconds: float, class_probabilities: bool = False) -> dict[str, Any]:
    """Write one image's multiclass or regression outputs; returns its summary row."""
    pixels = int(np.prod(image.shape[1:]))
    row: dict[str, Any] = {"image": str(path), "height": image.shape[-2], "width": image.shape[-1],
                           "seconds": round(seconds, 3),
                           "megapixels_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 3)}
    if config.task == "multiclass":
        row.update(write_multiclass_outputs(output, image, config, out_dir, path.stem, class_probabilities))
    else:
        row.update(write_regression_outputs(output, image, config, out_dir, path.stem))
    return row
