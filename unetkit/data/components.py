"""One labelling rule for every command that reads instance labels (train, tune-postprocess, evaluate, submit).

A label image holding a single non-zero value (a binary 0/255 mask, ISBI interior / membrane, or one object) is
split into its 4-connected (6 in 3D) components; an image with several ids keeps them, background or not. So a
binary mask counts the same objects in training, ``unetkit evaluate`` and ``unetkit submit``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from unetkit.errors import InputError


def instance_labels(labels: np.ndarray) -> np.ndarray:
    """Instance ids of ``labels`` (*S): a one-value (binary) image becomes its connected components."""
    foreground = labels[labels != 0]
    if foreground.size == 0 or foreground.min() != foreground.max():
        return labels
    return instance_labels_from_foreground(labels)


def instance_labels_from_foreground(mask: np.ndarray) -> np.ndarray:
    """Connected components (4-connected in 2D, 6-connected in 3D) of ``mask > 0``, int32 ids 1..n.

    For ISBI-style labels (255 = cell interior, 0 = membrane) this separates the cells along the
    membranes, so that the weight map's border term falls on the membranes between them.
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise InputError(f"foreground mask must be 2D (H, W) or 3D (D, H, W), got shape {mask.shape}")
    labels, _ = ndi.label(mask > 0)  # default structure: face neighbours only (4 / 6-connected)
    return labels.astype(np.int32, copy=False)


def label_dtype(top: int) -> type:
    """The dtype label files hold ids up to ``top`` in: uint16, or uint32 past 65,535 objects."""
    return np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32


def dense_ids(labels: np.ndarray) -> np.ndarray:
    """``labels`` with its ids renumbered 1..n in their order (0 stays 0; without background the ids still start at
    1): per-id tables then hold n + 1 entries however large the ids are (e.g. ids {0, 7, 65000} -> {0, 1, 2})."""
    values, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape) + (0 if values[0] == 0 else 1)
