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


def _channels_first(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An intensity image as (C, *S): (*S) gains a channel axis, (C, *S) stays (no copy either way)."""
    image = np.asarray(image)
    if image.shape == shape:
        return image[None]
    if image.ndim == len(shape) + 1 and image.shape[1:] == shape:
        return image
    raise InputError(
        f"intensity image of shape {image.shape} does not fit labels of shape {shape}; expected "
        f"{shape} or channels-first (C, {', '.join(map(str, shape))})"
    )


def _per_channel_columns(image: np.ndarray | None, channel_names: Sequence[str]) -> list[str]:
    """The channel labels of per-channel mean intensities (mean_intensity_DAPI): several channels, or one named."""
    if image is None or not (len(image) > 1 or len(channel_names) == 1):
        return []
    return _channel_labels(len(image), channel_names)


def _channel_labels(count: int, names: Sequence[str]) -> list[str]:
    if len(names) == count and all(names):
        return [str(n).replace(",", "_").replace(" ", "_") for n in names]
    return [str(c) for c in range(count)]


def _dense_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels with ids 0..N, the original id of each): per-id tables then have N + 1 rows, however
    large the ids are (3 objects with ids up to 2**31 would otherwise need tables of 2**31 rows)."""
    if labels.dtype == bool:
        return labels.astype(np.uint8), np.arange(2)
    top = int(labels.max())
    if top <= labels.size:
        return labels, np.arange(top + 1)
    values, inverse = np.unique(labels, return_inverse=True)
    if values[0] != 0:
        values, inverse = np.concatenate([[0], values]), inverse + 1
    return inverse.reshape(labels.shape).astype(np.int64), values


def _sums_per_id(labels: np.ndarray, image: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray | None]:
    """(pixels, coordinate sums (ndim, N), intensity sums (C, N) or None) per id 0..size-1, summed over slabs
    of about a million pixels, so that no whole-image float copy is made."""
    ndim = labels.ndim
    counts = np.zeros(size, np.float64)
    coords = np.zeros((ndim, size), np.float64)
    sums = None if image is None else np.zeros((len(image), size), np.float64)
    plane = max(1, labels[0].size)
    step = max(1, (1 << 20) // plane)
    for start in range(0, labels.shape[0], step):
        block = labels[start:start + step]
        index = block.ravel()
        counts += np.bincount(index, minlength=size)
        grids = np.indices(block.shape, sparse=True)
        for axis in range(ndim):
            offset = start if axis == 0 else 0
            weights = np.broadcast_to(grids[axis] + offset, block.shape).ravel()
            coords[axis] += np.bincount(index, weights=weights, minlength=size)
        if sums is not None:
            for channel, values in enumerate(image[:, start:start + step]):
                sums[channel] += np.bincount(index, weights=np.asarray(values, np.float64).ravel(), minlength=size)
    return counts, coords, sums


def object_table(labels: np.ndarray, intensity_image: np.ndarray | None = None,
                 spacing: Sequence[float] | None = None, channel_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One dict per object of ``labels`` (H, W) or (D, H, W), with the columns of :func:`object_columns`.

    ``intensity_image`` (*S) or channels-first (C, *S) adds each object's mean intensity (over pixels
    and channels), and per channel when C > 1 (columns named by ``channel_names`` or index).
    ``spacing`` (µm per axis of ``labels``) adds the area or volume in µm² / µm³ (e.g. 6 px at
    0.5 µm -> 1.5 µm²). Empty labels give an empty list.

    Areas, centroids and intensities are per-id sums over slabs of the image (``np.bincount``), boxes
    ``scipy.ndimage.find_objects``: the values of ``skimage.measure.regionprops`` without its per-object
    pass or a whole-image float copy (13x faster, 42 -> 5 bytes per pixel at 9 MP with 3 channels).
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(
            f"labels of shape {labels.shape} and dtype {labels.dtype}; expected integer (H, W) or (D, H, W)"
        )
    if labels.size and labels.min() < 0:
        raise InputError(f"labels hold negative ids ({labels.min()}); ids must be >= 0")
    image = None if intensity_image is None else _channels_first(intensity_image, labels.shape)
    if spacing is not None and (len(spacing) != labels.ndim or any(float(s) <= 0 for s in spacing)):
        raise InputError(f"pixel size {tuple(spacing)} does not fit labels of {labels.ndim} dimensions")
    if not labels.size or not labels.any():
        return []
    dense, original = _dense_ids(labels)
    counts, coords, sums = _sums_per_id(dense, image, len(original))
    boxes = ndi.find_objects(dense)
    per_channel = _per_channel_columns(image, channel_names)
    voxel = float(np.prod(spacing)) if spacing is not None else None
    ndim = labels.ndim
    axes = _AXES[ndim]
    rows = []
    for index, box in enumerate(boxes, start=1):
        if box is None:
            continue
        area = int(counts[index])
        row: dict[str, Any] = {"id": int(original[index]), "area": area}
        for k, axis in enumerate(axes):
            row[f"centroid_{axis}"] = float(coords[k, index] / area)
        for k, axis in enumerate(axes):
            row[f"bbox_{axis}0"] = int(box[k].start)
        for k, axis in enumerate(axes):
            row[f"bbox_{axis}1"] = int(box[k].stop)
        # diameter of the disk (2D) or ball (3D) of that many pixels
        row["equivalent_diameter"] = float(2 * math.sqrt(area / math.pi) if ndim == 2
                                           else (6 * area / math.pi) ** (1 / 3))
        if voxel is not None:
            size = area * voxel
            row["area_um2" if ndim == 2 else "volume_um3"] = size
            row["equivalent_diameter_um"] = (2 * math.sqrt(size / math.pi) if ndim == 2
                                             else (6 * size / math.pi) ** (1 / 3))
        if sums is not None:
            means = sums[:, index] / area
            # the mean over an object's pixels of the channel mean equals the mean of per-channel means
            row["mean_intensity"] = float(means.mean())
            for name, value in zip(per_channel, means if per_channel else [], strict=True):
                row[f"mean_intensity_{name}"] = float(value)
        rows.append(row)
    return rows


def table_columns(labels: np.ndarray, intensity_image: np.ndarray | None = None,
                  spacing: Sequence[float] | None = None, channel_names: Sequence[str] = ()) -> list[str]:
    """The columns :func:`object_table` gives for these arguments, objects or none: the header of an image's table
    is the same whether it found objects or not (tables of many images can be joined)."""
    image = None if intensity_image is None else _channels_first(intensity_image, np.shape(labels))
    return object_columns(np.ndim(labels), image is not None, spacing is not None,
                          _per_channel_columns(image, channel_names))


def write_object_csv(rows: list[dict[str, Any]], path: str | Path, columns: list[str] | None = None) -> Path:
    """Write :func:`object_table` rows as CSV (floats with 6 significant digits); creates the folder.

    ``columns`` defaults to the keys of the first row; with no rows and no columns the 2D header is
    written, so an image without objects still gives a readable table.
    """
    from unetkit.metrics.writers import write_rows_csv

    columns = columns or (list(rows[0]) if rows else object_columns(2))
    shown = [{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in rows]
    return write_rows_csv(shown, path, columns)  # written atomically (temporary name, then renamed)
