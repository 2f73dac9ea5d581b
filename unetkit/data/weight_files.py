"""The paper's weight map (eq. 2) of one label file, written as a float32 TIFF and its picture, as a pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetkit.errors import InputError


def write_weight_map(labels_path: str | Path, out: str | Path, *, w0: float = 10.0, sigma: float = 5.0,
                     volume: bool = False, from_foreground: bool = False) -> dict[str, Any]:
    """Compute the weight map of the label image ``labels_path`` and write it to ``out`` (.tif, float32) with a
    picture beside it (``out`` as .png); neither may replace the labels or an existing file.

    Instance labels are used as they are; a foreground mask (0 and one other value) is split into connected
    components (``data.components.instance_labels``), as is any label image with ``from_foreground``. Returns a
    summary: paths, cell count, how the cells were found (``how``), shape, w0, sigma and min / mean / max.
    """
    from unetkit.data.components import instance_labels, instance_labels_from_foreground
    from unetkit.data.formats import format_of
    from unetkit.data.io import read_label_volume, read_labels, tiff_pages, write_tiff
    from unetkit.data.weightmaps import weight_map
    from unetkit.safety.paths import check_new_output, check_output_file
    from unetkit.visualize.weights import save_weight_picture

    out = Path(out)
    picture = out.with_suffix(".png")
    check_output_file(out, [labels_path])
    check_output_file(picture, [labels_path], "--out (its .png picture)")
    if format_of(out) != "tiff":
        raise InputError(f"--out {out}: the weight map is written as a float32 TIFF; name it .tif or .tiff")
    check_new_output(out)
    check_new_output(picture, "--out (its .png picture)")
    if not volume and format_of(labels_path) == "tiff" and Path(labels_path).is_file():
        pages = tiff_pages(labels_path)
        if pages > 1:  # read as channels or planes, the 2D reader's messages would point to options weights lacks
            raise InputError(f"{labels_path}: a volume of {pages} pages; give --volume for a 3D weight map")
    labels = read_label_volume(labels_path) if volume else read_labels(labels_path)
    values = np.unique(labels)
    if from_foreground:
        how = "connected components of the foreground (--from-foreground)"
        labels = instance_labels_from_foreground(labels)
    elif len(values) == 2 and values[0] == 0:
        how = (f"the label image holds only 0 and {values[1]}: treated as a foreground mask and split into "
               f"connected components")
        labels = instance_labels(labels)
    else:
        how = "instance labels as read"
    weights = weight_map(labels, w0=w0, sigma=sigma)
    write_tiff(out, weights)
    try:
        save_weight_picture(weights, picture, f"{Path(labels_path).name}: w0={w0:g}, sigma={sigma:g} px")
    except BaseException:  # the map and its picture are written as a pair: a rerun would find the map and refuse
        out.unlink(missing_ok=True)
        raise
    return {"labels": str(labels_path), "out": str(out), "picture": str(picture),
            "cells": int(len(np.unique(labels[labels > 0]))), "how": how, "shape": list(weights.shape), "w0": w0,
            "sigma": sigma, "min": float(weights.min()), "max": float(weights.max()), "mean": float(weights.mean())}
