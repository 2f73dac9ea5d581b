"""Training targets derived from instance label images (2D ``(H, W)`` or 3D ``(D, H, W)``).

A 2-class (binary) target merges touching nuclei into one blob. The three-class target adds a
*boundary* class, an inner band of every object, so that the interiors of touching objects are
separated and post-processing can split them again (``unetkit.inference.postprocess``). The distance
target is the per-object normalised distance to the object border, for regression models whose peaks
seed a watershed.

Border convention (shared by all targets): a pixel's distance is the Euclidean distance to the nearest
pixel *not in its own object*, background or a different touching object. The image edge is not a
border (an object cut by the edge has no boundary there), as in ``skimage.segmentation.find_boundaries``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.components import dense_ids
from unetkit.data.components import instance_labels as instance_labels  # the one rule (data.components)
from unetkit.errors import InputError

TARGET_KINDS = ("binary", "three-class", "distance")

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2  # three-class target values


def _check_labels(labels: np.ndarray) -> np.ndarray:
    """Integer (or bool) 2D/3D label array with ids >= 0, else an InputError saying how to fix it.

    Only the partition into objects matters to the targets, so ids may come back renumbered.
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"label image has dtype {labels.dtype}; expected integer instance ids (0 = background), "
            "e.g. labels.astype(np.int32)"
        )
    if labels.ndim not in (2, 3):
        raise InputError(f"label image has shape {labels.shape}; expected (H, W) or (D, H, W)")
    if labels.size and labels.min() < 0:
        raise InputError(f"label image holds negative ids ({labels.min()}); ids must be >= 0")
    if labels.size and labels.max() > labels.size:
        # Sparse large ids: renumber densely so per-id tables stay small (ids do not matter for targets).
        labels = dense_ids(labels)
    return labels


def object_distances(labels: np.ndarray) -> np.ndarray:
    """Distance in px of every object pixel to the nearest pixel outside its object; 0 on background.

    ``labels`` (H, W) or (D, H, W) integer ids. Returns float32 of the same shape. Touching objects
    count as outside each other, so the pixels along a contact line have distance 1. Computed with one
    Euclidean distance transform per object inside its bounding box grown by 1 px (clipped at the image
    edge, which is therefore not a border); an object that fills the whole image gets ``inf``.
    """
    labels = _check_labels(labels)
    distance = np.zeros(labels.shape, dtype=np.float32)
    for index, box in enumerate(ndi.find_objects(labels)):
        if box is None:  # id not present
            continue
        grown = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, labels.shape, strict=True)
        )
        inside = labels[grown] == index + 1
        if inside.all():  # nothing outside the object within the image: no border anywhere
            distance[grown][inside] = np.inf
            continue
        edt = ndi.distance_transform_edt(inside)
        distance[grown][inside] = edt[inside]
    return distance


def binary_target(labels: np.ndarray) -> np.ndarray:
    """Foreground mask ``labels > 0`` as uint8 (0/1), same shape as ``labels``."""
    return (np.asarray(labels) > 0).astype(np.uint8)


def three_class_target(labels: np.ndarray, boundary_width: int = 2) -> np.ndarray:
    """Background 0 / interior 1 / boundary 2 as uint8, same shape as ``labels``.

    Boundary: object pixels whose distance to a pixel outside their object is at most
    ``boundary_width`` (width 2: the outer two rings of each object, and two px on each side of a line
    where two nuclei touch, so their interiors are 4 px apart). Interior: the remaining object pixels.

    Small objects whose interior would vanish (no pixel farther than ``boundary_width`` from the border,
    e.g. a 3x3 square with width 2) keep the pixel(s) of maximal distance as interior, so every object
    yields a seed for the watershed.
    """
    if boundary_width < 1:
        raise InputError(f"boundary_width must be >= 1 px, got {boundary_width}")
    labels = _check_labels(labels)
    distance = object_distances(labels)
    target = np.zeros(labels.shape, dtype=np.uint8)
    foreground = labels > 0
    target[foreground] = BOUNDARY
    target[distance > boundary_width] = INTERIOR

    # Objects without interior: mark their deepest pixel(s) as interior.
    ids = np.unique(labels[foreground])
    if ids.size:
        deepest = np.zeros(int(ids.max()) + 1, dtype=np.float32)
        deepest[ids] = ndi.maximum(distance, labels, ids)
        vanished = np.zeros(deepest.shape, dtype=bool)
        vanished[ids] = deepest[ids] <= boundary_width
        centre = foreground & vanished[labels] & (distance == deepest[labels])
        target[centre] = INTERIOR
    return target


def distance_target(labels: np.ndarray, normalize: str = "per-object") -> np.ndarray:
    """Distance to the object border as float32, 0 on background, same shape as ``labels``.

    ``normalize="per-object"`` divides by each object's maximum, so every object peaks at exactly 1
    (a nucleus of radius 10 and one of radius 3 both have centre value 1, and the contact line of two
    touching nuclei is low on both sides); ``"none"`` keeps distances in px.
    """
    if normalize not in ("per-object", "none"):
        raise InputError(f"unknown distance normalisation '{normalize}'; use 'per-object' or 'none'")
    labels = _check_labels(labels)
    distance = object_distances(labels)
    distance[np.isinf(distance)] = 1.0 if normalize == "per-object" else 0.0
    if normalize == "none":
        return distance
    foreground = labels > 0
    ids = np.unique(labels[foreground])
    if ids.size == 0:
        return distance
    peak = np.ones(int(ids.max()) + 1, dtype=np.float32)
    peak[ids] = ndi.maximum(distance, labels, ids)
    out = np.zeros_like(distance)
    out[foreground] = distance[foreground] / peak[labels[foreground]]
    return out


def make_target(labels: np.ndarray, kind: str, boundary_width: int = 2) -> np.ndarray:
    """Target of ``kind`` ("binary" | "three-class" | "distance") from instance ``labels``."""
    if kind == "binary":
        return binary_target(labels)
    if kind == "three-class":
        return three_class_target(labels, boundary_width=boundary_width)
    if kind == "distance":
        return distance_target(labels)
    raise InputError(f"unknown target kind '{kind}'; choose one of {', '.join(TARGET_KINDS)}")
