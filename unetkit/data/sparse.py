"""Sparse annotation (3D U-Net, Cicek et al. 2016): only some voxels are labelled, e.g. a few slices of
a volume; the others hold ``ignore_label`` and get zero weight in the loss.

Targets with a boundary class need object borders, and an annotated nucleus whose neighbouring slices
are unannotated must not get a border there (it continues into them). So before the target is derived,
every unannotated voxel borrows the id of its nearest annotated voxel; afterwards those voxels are set
back to ``ignore_label``. Example: a nucleus annotated on slice 5 only, slices 4 and 6 unannotated: its
pixels on slice 5 are "interior" away from its in-plane outline, not "boundary" because slices 4 and 6
touch them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.targets import make_target
from unetkit.errors import InputError

SPARSE_KINDS = ("binary", "three-class")


def fill_unannotated(labels: np.ndarray, unannotated: np.ndarray) -> np.ndarray:
    """``labels`` with each unannotated voxel set to the label of its nearest annotated voxel (Euclidean).

    ``labels`` and ``unannotated`` (bool) share a 2D or 3D shape. A fully unannotated array is returned
    unchanged (there is nothing to copy from).
    """
    unannotated = np.asarray(unannotated, dtype=bool)
    if unannotated.shape != labels.shape:
        raise InputError(f"unannotated mask {unannotated.shape} differs from labels {labels.shape}")
    if not unannotated.any() or unannotated.all():
        return labels.copy()
    # index of the nearest annotated voxel (zero of the input) per voxel; int32 halves the memory of int64
    nearest = np.empty((labels.ndim, *labels.shape), dtype=np.int32)
    ndi.distance_transform_edt(unannotated, return_distances=False, return_indices=True, indices=nearest)
    return labels[tuple(nearest)]


def sparse_target(instances: np.ndarray, unannotated: np.ndarray, kind: str, ignore_label: int,
                  boundary_width: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(class target with ``ignore_label`` on unannotated voxels, filled instance ids).

    ``instances``: ids of the annotated objects (unannotated voxels may hold anything). ``kind``: binary or
    three-class. The target is uint8, or uint16 when ``ignore_label`` > 255. The filled ids (unannotated
    voxels given the nearest annotated id) are the geometry weight maps should see.
    """
    if kind not in SPARSE_KINDS:
        raise InputError(
            f"sparse labels (data.sparse_labels) work with the {' and '.join(SPARSE_KINDS)} targets, not '{kind}'"
        )
    if not 0 < ignore_label < 65536:
        raise InputError(f"data.ignore_label must be in 1..65535 for sparse labels, got {ignore_label}")
    unannotated = np.asarray(unannotated, dtype=bool)
    filled = fill_unannotated(np.where(unannotated, 0, instances), unannotated)
    target = make_target(filled, kind, boundary_width).astype(np.uint8 if ignore_label < 256 else np.uint16)
    target[unannotated] = ignore_label
    return target, filled
