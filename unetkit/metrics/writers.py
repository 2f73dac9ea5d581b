"""Writers of tables and plots: one CSV writer for every per-row table (training metrics, evaluation rows,
``classes.csv``) and the confusion matrix of a multiclass evaluation.

Files are written under a temporary name in the same folder, then renamed, so a reader never sees a
half-written table.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.errors import InputError
from unetkit.safety.atomic import atomic_path


def write_rows_csv(rows: list[dict[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write rows of dicts as CSV (columns in order of first appearance, or ``columns``); creates the folder.

    Example: ``[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4, "val_dice": 0.8}]`` gives the header
    ``epoch,loss,val_dice`` and an empty ``val_dice`` cell in the first row. Keys outside ``columns``
    are left out.
    """
    path = Path(path)
    columns = list(columns) if columns is not None else list(dict.fromkeys(key for row in rows for key in row))
    try:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error}; choose another output folder") from error
    return path


EVALUATION_PICTURE_MARK = "unetkit evaluate"  # PNG "Software" text of the pictures an evaluation writes
MAX_ANNOTATED_CLASSES = 30  # classes whose confusion-matrix cells get their counts written in (900 cells)
MAX_NAMED_CLASSES = 60  # classes whose names label the axes (300 classes took a 32,000 px figure and all memory)


def write_confusion_matrix(
    cm: np.ndarray, class_names: Sequence[str], csv_path: str | Path, png_path: str | Path
) -> tuple[Path, Path]:
    """Write a confusion matrix (rows truth, columns prediction) as CSV counts and a PNG heat map.

    The heat map colours each row normalised to 1 (the share of a truth class predicted as each
    class; the diagonal is the per-class recall) and prints the count and the share in every cell.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=np.int64)
    names = list(class_names)
    if cm.ndim != 2 or cm.shape != (len(names), len(names)):
        raise InputError(f"confusion matrix of shape {cm.shape} does not fit {len(names)} class names")
    csv_path, png_path = Path(csv_path), Path(png_path)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["truth \\ prediction", *names])
        for name, row in zip(names, cm, strict=True):
            writer.writerow([name, *row.tolist()])

    sums = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, sums, out=np.zeros(cm.shape, dtype=np.float64), where=sums > 0)
    k = len(names)
    side = 1.6 + 0.9 * min(k, MAX_ANNOTATED_CLASSES)  # inches: at most ~29 (3,400 px), cells shrink past 30 classes
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="share of truth row")
    if k <= MAX_NAMED_CLASSES:
        axes.set_xticks(range(k), names, rotation=45, ha="right")
        axes.set_yticks(range(k), names)
    axes.set_xlabel("prediction")
    axes.set_ylabel("truth")
    if k <= MAX_ANNOTATED_CLASSES:  # a count per cell; past that the colours alone (the CSV has the numbers)
        for i in range(k):
            for j in range(k):
                colour = "white" if shares[i, j] > 0.5 else "black"
                axes.text(j, i, f"{cm[i, j]}\n{shares[i, j]:.2f}", ha="center", va="center", fontsize=7,
                          color=colour)
    shown = "counts, row share" if k <= MAX_ANNOTATED_CLASSES else f"row share of {k} classes; counts in the CSV"
    axes.set_title(f"confusion matrix ({shown})")
    figure.tight_layout()
    with atomic_path(png_path) as tmp:  # marked, so a later evaluation knows its own picture from an input image
        figure.savefig(tmp, dpi=120, format="png", metadata={"Software": EVALUATION_PICTURE_MARK})
    return csv_path, png_path


def is_evaluation_picture(path: str | Path) -> bool:
    """Whether ``path`` is a picture an evaluation wrote (its PNG text says so): never an image to pair or keep."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("Software") == EVALUATION_PICTURE_MARK
    except (OSError, ValueError):
        return False
