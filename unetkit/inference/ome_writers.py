"""Outputs that keep the input's pixel size: OME-TIFF for images and labels, PNG with its resolution.

A viewer (napari, Fiji/Bio-Formats, QuPath) then shows a mask over its image at the same scale, and
measurements made on it are in micrometres. Spacing is given per axis in µm, in the array's axis order
(``(y, x)`` or ``(z, y, x)``); without a spacing the files are written as before (plain TIFF / PNG).

OME-TIFF files get ``PhysicalSizeX/Y/Z`` in their OME-XML and the X/Y resolution tags in pixels per
centimetre, which readers without OME support (ImageJ's own opener, GIMP) understand. Every file is
written under a temporary name and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from unetkit.errors import InputError

UM_PER_CM = 1e4
UM_PER_INCH = 25_400.0


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial{path.suffix}")


def ome_metadata(axes: str, spacing: Sequence[float] | None, channel_names: Sequence[str] = ()) -> dict:
    """tifffile's OME metadata for an array with ``axes`` (e.g. "YX", "CYX", "ZYX") and spacing of its
    spatial axes in µm."""
    metadata: dict = {"axes": axes}
    spatial = [a for a in axes if a in "ZYX"]
    if spacing is not None:
        if len(spacing) != len(spatial):
            raise InputError(f"pixel size {tuple(spacing)} does not fit axes {axes}")
        for axis, size in zip(spatial, spacing, strict=True):
            metadata[f"PhysicalSize{axis}"] = float(size)
            metadata[f"PhysicalSize{axis}Unit"] = "µm"
    if channel_names:
        metadata["Channel"] = {"Name": list(channel_names)}
    return metadata


def _resolution(axes: str, spacing: Sequence[float] | None) -> dict:
    """Resolution tags (pixels per cm) for the Y/X spacing, or nothing."""
    if spacing is None:
        return {}
    sizes = dict(zip([a for a in axes if a in "ZYX"], spacing, strict=True))
    return {"resolution": (UM_PER_CM / sizes["X"], UM_PER_CM / sizes["Y"]), "resolutionunit": "CENTIMETER"}


def write_ome_tiff(path: str | Path, array: np.ndarray, axes: str, spacing: Sequence[float] | None = None,
                   channel_names: Sequence[str] = (), compress: bool = False) -> Path:
    """Write ``array`` with ``axes`` as an OME-TIFF carrying the pixel size (µm per spatial axis)."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim != len(axes):
        raise InputError(f"{path}: array of shape {array.shape} does not fit axes {axes}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    tifffile.imwrite(temporary, array, ome=True, photometric="minisblack",
                     metadata=ome_metadata(axes, spacing, channel_names),
                     compression="zlib" if compress else None, **_resolution(axes, spacing))
    os.replace(temporary, path)
    return path


def write_probabilities(path: str | Path, probabilities: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """Float32 probabilities (H, W), (C, H, W) or (D, H, W) for a 3D input (``spacing`` of 3 values)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    spatial = len(spacing) if spacing is not None else min(probabilities.ndim, 2)
    axes = ("C" if probabilities.ndim > spatial else "") + "ZYX"[3 - spatial:]
    if len(axes) != probabilities.ndim:
        raise InputError(f"{path}: probabilities of shape {probabilities.shape} do not fit pixel size {spacing}")
    return write_ome_tiff(path, probabilities, axes, spacing)


def write_label_image(path: str | Path, labels: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """Integer labels (H, W) or (D, H, W) as compressed uint16 OME-TIFF with the pixel size."""
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{path}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise InputError(f"{path}: label ids {labels.min()}..{labels.max()} do not fit uint16 (0..65535); "
                         "relabel the objects consecutively or split the image")
    axes = "ZYX"[3 - labels.ndim:]
    return write_ome_tiff(path, labels.astype(np.uint16), axes, spacing, compress=True)


def write_mask_png(path: str | Path, mask: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """A 2D 0/255 mask as PNG whose resolution (pHYs chunk) is the pixel size, when known."""
    from PIL import Image

    path = Path(path)
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    if mask.ndim != 2 or mask.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: a mask PNG holds a 2D uint8/uint16 array, got {mask.shape} {mask.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    options = {} if spacing is None else {"dpi": (UM_PER_INCH / spacing[-1], UM_PER_INCH / spacing[-2])}
    Image.fromarray(np.ascontiguousarray(mask)).save(temporary, format="PNG", **options)
    os.replace(temporary, path)
    return path
