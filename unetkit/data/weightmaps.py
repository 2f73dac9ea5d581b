"""The U-Net paper's weight map, equation (2), for training on touching cells (2D and 3D).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

d1 / d2 are the distances to the border of the nearest / second-nearest cell; defaults w0 = 10,
sigma = 5 px (paper). Choices made here, each documented where it is implemented:

- class balance ``w_c = total / (num_classes * count_c)``: a balanced image gets 1 everywhere, and an
  image with 25% foreground gets 2.0 on cells and 0.667 on background (the mean weight stays 1);
- the border term goes on background pixels only: it is meant for the thin gaps that separate
  touching cells (paper Fig. 3d), and d1 = 0 inside a cell would otherwise just add a blur of the
  second cell's distance onto cell interiors; with a three-class target (``border_classes``) it goes
  on the boundary class too, since cells that touch leave no background pixel between them and their
  contact is drawn in boundary pixels (there d1 = 0, so the term is w0 * exp(-d2^2 / (2 sigma^2)));
- optionally (``small_object_area``, not in the paper) each object smaller than that many pixels weighs
  ``sqrt(small_object_area / size)`` times its class weight, so a small nucleus counts for more than its few
  pixels when a per-pixel loss would let the network miss it;
- a bounded neighbourhood makes it fast with hundreds of cells (see ``border_cutoff``): the absolute
  error against the exact formula is below ``eps`` (1e-3) everywhere.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetkit.data.components import dense_ids
from unetkit.data.components import instance_labels_from_foreground as instance_labels_from_foreground
from unetkit.errors import InputError

EPS = 1e-3  # largest border term dropped by the bounded neighbourhood


def border_cutoff(w0: float, sigma: float, eps: float = EPS) -> float:
    """Radius R beyond which the border term is below ``eps``: w0 * exp(-R^2 / (2 sigma^2)) = eps.

    Since d1 + d2 >= d2, a pixel whose second-nearest cell is farther than R gets less than eps.
    Worked numbers: w0 = 10, sigma = 5, eps = 1e-3 -> R = 5 * sqrt(2 * ln(1e4)) = 5 * 4.29 = 21.5 px.
    """
    if w0 <= eps:
        return 0.0
    return sigma * math.sqrt(2.0 * math.log(w0 / eps))


def class_balance_weights(classes: np.ndarray) -> np.ndarray:
    """Class-balance weight per pixel, float32: ``total / (num_classes * count_c)`` of the pixel's class c.

    ``num_classes`` counts the classes present. Example: 100 pixels, 25 foreground, 75 background ->
    foreground 100 / (2 * 25) = 2.0, background 100 / (2 * 75) = 0.667. One class only -> 1 everywhere.
    """
    values, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    per_class = classes.size / (len(values) * counts.astype(np.float64))
    return per_class[inverse].reshape(classes.shape).astype(np.float32)


def _check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"{name} must be an integer label image (0 = background, cell ids > 0), got dtype "
            f"{labels.dtype}; convert with labels.astype(np.int32) if the values are whole numbers"
        )
    if labels.ndim not in (2, 3):
        raise InputError(f"{name} must be 2D (H, W) or 3D (D, H, W), got shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise InputError(f"{name} contains negative values ({labels.min()}); cell ids must be >= 0")
    return labels


def _compact(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..n when ids are sparse (e.g. 0, 7, 65000), so find_objects stays small."""
    top = int(labels.max()) if labels.size else 0
    if top <= 4 * 1024:
        return labels
    return dense_ids(labels).astype(np.int32)


def nearest_two_distances(labels: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances (d1, d2) from each pixel to its nearest and second-nearest cell, float32, inf if unknown.

    Exact Euclidean distances (``distance_transform_edt`` of the complement of each cell), computed
    only inside the cell's bounding box grown by ``ceil(cutoff)`` px; a pixel outside that box is
    farther than ``cutoff`` from the cell. So wherever the true d2 <= cutoff both values are exact,
    and elsewhere the returned d2 is >= the true d2 > cutoff (or inf). Cost: one small EDT per cell
    (~60x60 px for a 16 px cell with sigma 5) instead of one full-image EDT per cell.
    """
    labels = _compact(_check_labels(labels))
    shape = labels.shape
    d1 = np.full(shape, np.inf, dtype=np.float32)
    d2 = np.full(shape, np.inf, dtype=np.float32)
    pad = int(math.ceil(cutoff))
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, shape, strict=True)
        )
        distance = ndimage.distance_transform_edt(labels[grown] != index).astype(np.float32)
        near, second = d1[grown], d2[grown]  # views: updated in place
        # Running two smallest values: the new second is min(old second, max(old first, new)).
        np.minimum(second, np.maximum(near, distance), out=second)
        np.minimum(near, distance, out=near)
    return d1, d2


def weight_map(
    labels: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    foreground: np.ndarray | None = None,
    eps: float = EPS,
    border_classes: tuple[int, ...] = (),
    balance: bool = True,
    small_object_area: float = 0.0,
) -> np.ndarray:
    """Paper eq. (2) weight map of an instance label image, float32 of its shape (2D or 3D).

    ``labels``: instance ids (0 = background); cells must be separate ids (for a foreground mask, first
    call ``instance_labels_from_foreground``). ``foreground``: optional class map (bool or class ids)
    for the class-balance term, e.g. a three-class target; default ``labels > 0``. The border term
    ``w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` is added on background pixels (and on those of
    ``border_classes``) and is exact up to ``eps`` (terms below eps, i.e. pixels farther than
    ``border_cutoff`` from their second cell, get 0).
    ``border_classes``: classes of ``foreground`` whose pixels get the border term too (the three-class
    target's boundary, 2). Example: two cells 2 px apart -> each gap pixel has d1 = d2 = 1 and gets
    w_c + 10 * exp(-4 / 50) = w_c + 9.23; with ``border_classes=(2,)`` a boundary pixel of two cells that
    touch (d1 = 0, d2 = 1) gets w_c + 10 * exp(-1 / 50) = w_c + 9.80. ``balance=False``: w_c = 1 (the
    border term alone, for a loss that balances classes its own way or not at all).
    ``small_object_area`` > 0: the pixels of each object of ``size`` < that area get their class weight times
    ``sqrt(small_object_area / size)`` (an object of a quarter of the area weighs 2x), before the border term.
    """
    labels = _check_labels(labels)
    if not (math.isfinite(sigma) and math.isfinite(w0) and sigma > 0 and w0 >= 0):  # NaN/inf crashed later
        raise InputError(f"weight map needs a finite sigma > 0 and w0 >= 0 (paper: 5 and 10), got {sigma} and {w0}")
    classes = labels > 0 if foreground is None else np.asarray(foreground)
    if classes.shape != labels.shape:
        raise InputError(f"foreground shape {classes.shape} must match the labels' shape {labels.shape}")
    weights = class_balance_weights(classes) if balance else np.ones(classes.shape, np.float32)
    if small_object_area < 0:
        raise InputError(f"small_object_area must be >= 0 (0: off), got {small_object_area}")
    if small_object_area > 0:
        weights *= small_object_factors(labels, small_object_area)
    if w0 == 0:
        return weights
    d1, d2 = nearest_two_distances(labels, border_cutoff(w0, sigma, eps))
    gap = labels == 0
    if border_classes:
        gap |= np.isin(classes, border_classes)
    gap &= np.isfinite(d2)  # with a second cell within reach
    total = d1[gap] + d2[gap]
    weights[gap] += np.float32(w0) * np.exp(-(total * total) / np.float32(2.0 * sigma * sigma))
    return weights


def small_object_factors(labels: np.ndarray, area: float) -> np.ndarray:
    """Per pixel: ``sqrt(area / size)`` on objects of ``size`` < ``area`` px, 1 elsewhere (float32)."""
    sizes = np.bincount(labels.ravel()).astype(np.float64)
    factors = np.ones(sizes.size, np.float32)
    small = (sizes > 0) & (sizes < area)
    small[0] = False
    factors[small] = np.sqrt(area / sizes[small])
    return factors[labels]


class WeightMapCache:
    """Compute each label image's weight map once: an in-memory LRU, optionally backed by a folder.

    Keys hash the label bytes, shape, dtype and the parameters, so a changed image or w0/sigma gives a
    new map. In memory the cache holds up to ``max_bytes`` (oldest dropped first); note that each
    DataLoader worker process has its own memory cache. With ``directory`` the maps are also saved as
    ``<key>.npy`` and shared between workers and runs. Returned arrays are read-only (they are shared):
    crop or copy them before writing.
    """

    def __init__(self, directory: str | Path | None = None, max_bytes: int = 512 * 2**20):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.hits = 0  # served from memory or disk
        self.misses = 0  # computed
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def key(
        labels: np.ndarray, w0: float, sigma: float, foreground: np.ndarray | None = None, eps: float = EPS,
        border_classes: tuple[int, ...] = (), balance: bool = True, small_object_area: float = 0.0,
    ) -> str:
        """Hex digest identifying (labels, foreground, w0, sigma, eps, border_classes, balance,
        small_object_area)."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (labels, foreground):
            if array is None:
                digest.update(b"none")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.shape}{array.dtype.str}".encode())
            digest.update(array.tobytes())
        digest.update(f"w0={float(w0)!r},sigma={float(sigma)!r},eps={float(eps)!r}".encode())
        if border_classes:  # keys of maps without them stay as they were (caches on disk)
            digest.update(f",border_classes={tuple(int(c) for c in border_classes)!r}".encode())
        if not balance:
            digest.update(b",balance=False")
        if small_object_area:
            digest.update(f",small_object_area={float(small_object_area)!r}".encode())
        return digest.hexdigest()

    def get(
        self,
        labels: np.ndarray,
        w0: float = 10.0,
        sigma: float = 5.0,
        foreground: np.ndarray | None = None,
        eps: float = EPS,
        border_classes: tuple[int, ...] = (),
        balance: bool = True,
        small_object_area: float = 0.0,
    ) -> np.ndarray:
        """The weight map of ``labels`` (see ``weight_map``), computed at most once per key."""
        key = self.key(labels, w0, sigma, foreground, eps, border_classes, balance, small_object_area)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._memory[key]
        path = self.directory / f"{key}.npy" if self.directory is not None else None
        if path is not None and path.is_file():
            weights = np.load(path)
            self.hits += 1
        else:
            weights = weight_map(labels, w0, sigma, foreground, eps, border_classes, balance, small_object_area)
            self.misses += 1
            if path is not None:
                # Write then rename: another worker never reads a half-written file.
                temporary = path.with_name(f"{key}.{os.getpid()}.tmp.npy")
                np.save(temporary, weights)
                os.replace(temporary, path)
        weights.setflags(write=False)
        self._remember(key, weights)
        return weights

    def _remember(self, key: str, weights: np.ndarray) -> None:
        self._memory[key] = weights
        self._bytes += weights.nbytes
        while self._bytes > self.max_bytes and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._bytes -= dropped.nbytes

    def __len__(self) -> int:
        return len(self._memory)
