"""Per-object measurements of an instance label image, as rows for a CSV table.

One row per object (id order) with flat columns, so the table opens in any spreadsheet:

- 2D: ``id, area, centroid_y, centroid_x, bbox_y0, bbox_x0, bbox_y1, bbox_x1, equivalent_diameter``
- 3D: the same with ``z`` first (``centroid_z, centroid_y, centroid_x``, ``bbox_z0`` ...); area is the
  volume in voxels and the equivalent diameter that of a ball of that volume;
- ``mean_intensity`` when an intensity image is given (mean over its channels), and with several
  channels ``mean_intensity_<channel>`` per channel, in the units of the image given (the raw image:
  ``unetkit predict`` passes the file's values, not the normalised network input);
- ``area_um2`` (2D) or ``volume_um3`` (3D) and ``equivalent_diameter_um`` when the pixel size is known
  (``spacing`` in µm per axis, e.g. from the OME-TIFF's PhysicalSizeY/X).

Coordinates are in pixels, bounding boxes half-open (``bbox_y1`` is one past the last row), as in numpy
slicing and ``skimage.measure.regionprops``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.errors import InputError

_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


def object_columns(ndim: int, intensity: bool = False, calibrated: bool = False,
                   channel_names: Sequence[str] = ()) -> list[str]:
    """Column names of :func:`object_table` rows for a label image of ``ndim`` (2 or 3) dimensions."""
    axes = _AXES[ndim]
    columns = ["id", "area", *(f"centroid_{a}" for a in axes)]
    columns += [f"bbox_{a}0" for a in axes] + [f"bbox_{a}1" for a in axes] + ["equivalent_diameter"]
    if calibrated:
        columns += ["area_um2" if ndim == 2 else "volume_um3", "equivalent_diameter_um"]
    columns += ["mean_intensity"] if intensity else []
    return columns + ([f"mean_intensity_{name}" for name in channel_names] if intensity else [])


def _intensity_image(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Single-channel float image of ``shape``: (*S) as is, (C, *S) averaged over channels."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape == shape:
        return image
    if image.ndim == len(shape) + 1 and image.shape[1:] == shape:
        # The mean over an object's pixels of the channel mean equals the mean of per-channel means.
        return image.mean(axis=0)
    raise InputError(
        f"intensity image of shape {image.shape} does not fit labels of shape {shape}; expected "
        f"{shape} or channels-first (C, {', '.join(map(str, shape))})"
    )


def _channel_labels(count: int, names: Sequence[str]) -> list[str]:
    """Column suffixes per channel: the channel names when given (one per channel), else 0, 1, ..."""
    if len(names) == count and all(names):
        return [str(n).replace(",", "_").replace(" ", "_") for n in names]
    return [str(c) for c in range(count)]


def object_table(labels: np.ndarray, intensity_image: np.ndarray | None = None,
                 spacing: Sequence[float] | None = None, channel_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One dict per object of ``labels`` (H, W) or (D, H, W), with the columns of :func:`object_columns`.

    ``intensity_image`` (*S) or channels-first (C, *S) adds each object's mean intensity (over pixels
    and channels), and per channel when C > 1 (columns named by ``channel_names`` or index).
    ``spacing`` (µm per axis of ``labels``) adds the area or volume in µm² / µm³ (e.g. 6 px at
    0.5 µm -> 1.5 µm²). Empty labels give an empty list.
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(
            f"labels of shape {labels.shape} and dtype {labels.dtype}; expected integer (H, W) or (D, H, W)"
        )
    labels = labels.astype(np.int64, copy=False)
    if labels.size and labels.min() < 0:
        raise InputError(f"labels hold negative ids ({labels.min()}); ids must be >= 0")
    intensity = None if intensity_image is None else _intensity_image(intensity_image, labels.shape)
    per_channel = []
    channels = len(intensity_image) if intensity_image is not None and np.ndim(intensity_image) == labels.ndim + 1 \
        else 0
    if channels > 1 or (channels == 1 and len(channel_names) == 1):  # named: mean_intensity_DAPI
        per_channel = _channel_labels(len(intensity_image), channel_names)
        index = labels.ravel()
        counts = np.bincount(index)
        sums = [np.bincount(index, weights=np.asarray(c, np.float64).ravel(), minlength=len(counts))
                for c in intensity_image]
    if spacing is not None and (len(spacing) != labels.ndim or any(float(s) <= 0 for s in spacing)):
        raise InputError(f"pixel size {tuple(spacing)} does not fit labels of {labels.ndim} dimensions")
    voxel = float(np.prod(spacing)) if spacing is not None else None
    properties = ["label", "area", "centroid", "bbox", "equivalent_diameter_area"]
    if intensity is not None:
        properties.append("intensity_mean")
    table = regionprops_table(labels, intensity, properties=properties)

    ndim = labels.ndim
    axes = _AXES[ndim]
    rows = []
    for i in range(len(table["label"])):
        row: dict[str, Any] = {"id": int(table["label"][i]), "area": int(table["area"][i])}
        for k, axis in enumerate(axes):
            row[f"centroid_{axis}"] = float(table[f"centroid-{k}"][i])
        for k, axis in enumerate(axes):
            row[f"bbox_{axis}0"] = int(table[f"bbox-{k}"][i])
        for k, axis in enumerate(axes):
            row[f"bbox_{axis}1"] = int(table[f"bbox-{k + ndim}"][i])
        row["equivalent_diameter"] = float(table["equivalent_diameter_area"][i])
        if voxel is not None:
            size = row["area"] * voxel
            row["area_um2" if ndim == 2 else "volume_um3"] = size
            # diameter of the disk (2D) or ball (3D) of that physical area / volume
            row["equivalent_diameter_um"] = (2 * math.sqrt(size / math.pi) if ndim == 2
                                             else (6 * size / math.pi) ** (1 / 3))
        if intensity is not None:
            row["mean_intensity"] = float(table["intensity_mean"][i])
        for name, channel_sums in zip(per_channel, sums if per_channel else [], strict=True):
            row[f"mean_intensity_{name}"] = float(channel_sums[row["id"]] / counts[row["id"]])
        rows.append(row)
    return rows


def write_object_csv(rows: list[dict[str, Any]], path: str | Path, columns: list[str] | None = None) -> Path:
    """Write :func:`object_table` rows as CSV (floats with 6 significant digits); creates the folder.

    ``columns`` defaults to the keys of the first row; with no rows and no columns the 2D header is
    written, so an image without objects still gives a readable table.
    """
    from unetkit.metrics.writers import write_rows_csv

    columns = columns or (list(rows[0]) if rows else object_columns(2))
    shown = [{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in rows]
    return write_rows_csv(shown, path, columns)  # written atomically (temporary name, then renamed)
