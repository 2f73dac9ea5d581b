"""From probability maps to instance label images (2D ``(H, W)`` or 3D ``(D, H, W)``).

Three routes, one per training target (``unetkit.data.targets``):

- binary: threshold the foreground probability and take connected components (touching nuclei merge);
  or, with ``method: watershed``, seeds from confident foreground flooded through the foreground with
  one-pixel lines where floods meet (cells that fill an EM image, the membranes between them as lines);
- three-class: seeds from confident *interior* pixels, a seeded watershed grows them through the
  foreground, so touching nuclei separated by predicted boundary pixels stay apart;
- distance: seeds from peaks of a predicted (per-object normalised) distance map, watershed on it.

Every function is a pure function of arrays and returns labels with ids 1..N consecutive and 0 as
background, as uint16 (uint32 when N > 65535). Each route has two stages: *raw* labels (threshold,
seeds, watershed) and *finishing* (small-object removal, per-object hole filling, relabelling);
``tune_postprocess`` reuses the raw stage across all finishing settings. A fitted object filter, when the
config holds one, drops doubtful objects after finishing (``unetkit.inference.object_filter``; it is fitted
for the tuned values, after the grid search, which therefore runs without it).

Connectivity: foreground components are fully connected (8 in 2D, 26 in 3D) so a nucleus with a
one-pixel diagonal neck stays one object; seeds are face-connected (4 / 6) so two interiors that
touch only at a corner give two seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label as connected_components
from skimage.segmentation import watershed

from unetkit.config import PostprocessConfig
from unetkit.data.components import dense_ids, label_dtype
from unetkit.errors import InputError

KINDS = ("binary", "three-class", "distance")
METHODS = ("auto", "components", "watershed")

# Seeds smaller than this many px are dropped as noise of the interior map; their pixels are still
# flooded by a neighbouring seed, or kept as their own object if their foreground region has no seed.
MIN_SEED_SIZE = 3
# Peaks of a distance map closer than this many px to a higher peak are suppressed.
MIN_PEAK_DISTANCE = 3

DEFAULT_GRID: dict[str, list[Any]] = {
    "threshold": [0.4, 0.5, 0.6],
    "seed_threshold": [0.5, 0.6, 0.7, 0.8],
    "min_size": [5, 15, 30],
}
# Parameters that change the raw labels; the rest (min_size, fill_holes) only the finishing stage.
_RAW_KEYS = {"components": ("threshold",), "three-class": ("threshold", "seed_threshold"),
             "distance": ("threshold", "seed_threshold"), "binary-watershed": ("threshold", "seed_threshold")}
_FINISH_KEYS = ("min_size", "fill_holes")


# --------------------------------------------------------------------------------------------------
# finishing: small objects, holes, consecutive ids


def _as_output_dtype(labels: np.ndarray) -> np.ndarray:
    """uint16 labels, or uint32 when there are more than 65535 objects."""
    return labels.astype(label_dtype(int(labels.max()) if labels.size else 0))


def relabel(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..N in increasing order of the old ids (0 stays 0), as int32 (int64 past 2**31 - 1).

    A lookup table indexed by old id (one gather over the image), e.g. ids {0, 4, 9} -> {0, 1, 2}. int32
    halves the image that every later step (the watershed's markers and output) holds.
    """
    labels = np.asarray(labels)
    present = np.bincount(labels.ravel(), minlength=1) > 0
    present[0] = False
    table = np.zeros(present.size, dtype=np.int32 if present.sum() < np.iinfo(np.int32).max else np.int64)
    table[present] = np.arange(1, int(present.sum()) + 1)
    return table[labels]


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Copy of ``labels`` with objects of fewer than ``min_size`` pixels set to 0 (ids unchanged)."""
    if min_size <= 1:
        return labels.copy()
    sizes = np.bincount(labels.ravel(), minlength=1)
    small = sizes < min_size
    small[0] = False
    out = labels.copy()
    out[small[labels]] = 0
    return out


def enclosed_background(mask: np.ndarray) -> np.ndarray:
    """Background pixels of ``mask`` not connected to the array's edge (the holes of the mask).

    Background is face-connected (4 in 2D, 6 in 3D), the dual of fully connected objects, as in
    ``scipy.ndimage.binary_fill_holes``; one labelling pass instead of its iterated erosions.
    """
    regions, count = ndi.label(~mask)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    edge = np.zeros(count + 1, dtype=bool)
    edge[0] = True  # the mask itself: no background (it was counted as enclosed when it missed the edge)
    for axis in range(mask.ndim):
        edge[np.take(regions, [0, -1], axis=axis).ravel()] = True
    return ~edge[regions]


def fill_object_holes(labels: np.ndarray) -> np.ndarray:
    """Copy of ``labels`` where background enclosed by a single object is given to that object.

    Per object, not on the whole foreground: a background gap enclosed jointly by three touching nuclei
    is no hole of any one of them and stays background. Only objects whose bounding box holds enclosed
    background of the whole foreground are visited (most images have none: one labelling pass).
    """
    enclosed = enclosed_background(labels > 0)
    out = labels.copy()
    if not enclosed.any():
        return out
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or not enclosed[box].any():
            continue
        holes = enclosed_background(labels[box] == index) & (out[box] == 0)
        out[box][holes] = index
    return out


def finish_labels(labels: np.ndarray, min_size: int = 15, fill_holes: bool = True) -> np.ndarray:
    """Remove objects below ``min_size`` px, fill per-object holes, renumber ids 1..N (uint16/uint32).

    Small objects go first so a speck inside a nucleus becomes a hole that is then filled.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim not in (2, 3):
        raise InputError(f"labels of shape {labels.shape} and dtype {labels.dtype}; expected integer (H, W) "
                         "or (D, H, W)")
    if labels.size and labels.min() < 0:
        raise InputError(f"labels hold negative ids ({labels.min()}); ids must be >= 0")
    if labels.size and labels.max() > labels.size:
        # Sparse large ids (e.g. 3 objects with ids up to 2**31): make them dense first so the per-id
        # tables below have one entry per pixel at most.
        labels = dense_ids(labels)
    labels = remove_small_objects(labels, int(min_size))
    if fill_holes:
        labels = fill_object_holes(labels)
    return _as_output_dtype(relabel(labels))


# --------------------------------------------------------------------------------------------------
# raw labels of each route


def _check_map(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise InputError(f"{name} has shape {array.shape}; expected a spatial map (H, W) or (D, H, W)")
    return array


def _foreground_components(foreground: np.ndarray) -> np.ndarray:
    return connected_components(foreground, connectivity=foreground.ndim)


def _raw_foreground(prob: np.ndarray, threshold: float) -> np.ndarray:
    return _foreground_components(prob > threshold)


def _seeded_watershed(elevation: np.ndarray, seeds: np.ndarray, foreground: np.ndarray,
                      lines: bool = False) -> np.ndarray:
    """Watershed of ``seeds`` over ``foreground``; seedless foreground regions keep their own label.

    Flooding uses full connectivity, as the foreground components do, so every pixel of a seeded
    region is reached; with ``lines`` the pixels where two floods meet stay 0: flooding is then face-connected
    (4 in 2D), so the lines separate the objects in face connectivity, the cells of the ISBI metrics
    (skimage's line flooding in full connectivity ran out of memory on ISBI slices). Regions without any
    seed get ids after the seeds' ids.
    """
    regions = _foreground_components(foreground)
    labels = watershed(elevation, markers=seeds, mask=foreground, connectivity=1 if lines else foreground.ndim,
                       watershed_line=lines)
    seeded = np.zeros(int(regions.max()) + 1, dtype=bool)
    seeded[np.unique(regions[seeds > 0])] = True
    seeded[0] = True
    unseeded = ~seeded[regions]
    labels[unseeded] = regions[unseeded] + int(seeds.max())
    return labels


def _flood_from_seeds(interior: np.ndarray, foreground: np.ndarray, seed_threshold: float, min_seed_size: int,
                      lines: bool = False) -> np.ndarray:
    """Seeds: face-connected components of ``interior > seed_threshold`` inside ``foreground`` (those under
    ``min_seed_size`` px dropped), flooded downhill in ``interior`` through the foreground: ridges of low
    interior probability (a predicted boundary or membrane) are where two floods meet."""
    seeds = connected_components((interior > seed_threshold) & foreground, connectivity=1)
    seeds = relabel(remove_small_objects(seeds, min_seed_size))
    return _seeded_watershed(-interior, seeds, foreground, lines=lines)


def _raw_binary_watershed(
    prob: np.ndarray, threshold: float, seed_threshold: float, min_seed_size: int = MIN_SEED_SIZE
) -> np.ndarray:
    """Seeds where the foreground probability is confident, flooded through ``prob > threshold``; a
    one-pixel line (label 0) stays where two floods meet, so the objects stay apart also as a mask."""
    return _flood_from_seeds(prob, prob > threshold, seed_threshold, min_seed_size, lines=True)


def _raw_three_class(
    probs: np.ndarray, threshold: float, seed_threshold: float, min_seed_size: int = MIN_SEED_SIZE
) -> np.ndarray:
    return _flood_from_seeds(probs[1], (probs[1] + probs[2]) > threshold, seed_threshold, min_seed_size)


def _raw_distance(
    distance_map: np.ndarray,
    foreground_prob: np.ndarray | None,
    threshold: float,
    seed_threshold: float,
    min_distance: int = MIN_PEAK_DISTANCE,
) -> np.ndarray:
    source = distance_map if foreground_prob is None else foreground_prob
    foreground = source > threshold
    regions = _foreground_components(foreground)
    peaks = peak_local_max(
        distance_map, min_distance=min_distance, threshold_abs=seed_threshold, labels=regions,
        exclude_border=False,
    )
    # A seed is a whole core (distance > seed_threshold) holding a peak, not the peak pixel: an
    # elongated nucleus has a ridge of equal maxima that peak_local_max reports as several peaks
    # min_distance apart, and they must give one seed, not one per ridge point.
    cores = connected_components((distance_map > seed_threshold) & foreground, connectivity=1)
    keep = np.zeros(int(cores.max()) + 1, dtype=bool)
    keep[cores[tuple(peaks.T)]] = True
    keep[0] = False
    seeds = relabel(np.where(keep[cores], cores, 0))
    return _seeded_watershed(-distance_map, seeds, foreground)


# --------------------------------------------------------------------------------------------------
# public routes


def labels_from_foreground(
    prob: np.ndarray, threshold: float = 0.5, min_size: int = 15, fill_holes: bool = True
) -> np.ndarray:
    """Instances as connected components of ``prob > threshold``; ``prob`` (H, W) or (D, H, W).

    Touching nuclei merge into one object: this is the baseline that the three-class route improves on.
    """
    prob = _check_map(prob, "foreground probability")
    return finish_labels(_raw_foreground(prob, threshold), min_size, fill_holes)


def labels_from_three_class(
    probs: np.ndarray,
    threshold: float = 0.5,
    seed_threshold: float = 0.7,
    min_size: int = 15,
    fill_holes: bool = True,
    min_seed_size: int = MIN_SEED_SIZE,
) -> np.ndarray:
    """Instances from three-class softmax probabilities ``probs`` (3, H, W) or (3, D, H, W).

    Channels: background, interior, boundary. Foreground: ``p_interior + p_boundary > threshold``.
    Seeds: face-connected components of ``p_interior > seed_threshold`` inside the foreground, those
    below ``min_seed_size`` px dropped. A seeded watershed on ``-p_interior`` restricted to the
    foreground assigns every foreground pixel to a seed; foreground regions without any seed are kept
    as objects of their own. Then objects below ``min_size`` px are removed and holes filled.
    """
    probs = np.asarray(probs)
    if probs.ndim not in (3, 4) or probs.shape[0] != 3:
        raise InputError(
            f"three-class probabilities have shape {probs.shape}; expected (3, H, W) or (3, D, H, W) "
            "softmax output with channels background, interior, boundary"
        )
    raw = _raw_three_class(probs, threshold, seed_threshold, min_seed_size)
    return finish_labels(raw, min_size, fill_holes)


def labels_from_distance(
    distance_map: np.ndarray,
    foreground_prob: np.ndarray | None = None,
    threshold: float = 0.5,
    min_distance: int = MIN_PEAK_DISTANCE,
    seed_threshold: float = 0.7,
    min_size: int = 15,
    fill_holes: bool = True,
) -> np.ndarray:
    """Instances from a predicted per-object normalised distance map (H, W) or (D, H, W), peaks 1.

    Foreground: ``foreground_prob > threshold``, or ``distance_map > threshold`` when no foreground
    probability is given (then pass a low threshold such as 0.1: a distance of 0.5 cuts objects to
    their inner half). Seeds: local maxima of the distance map above ``seed_threshold`` and at least
    ``min_distance`` px from a higher peak (``peak_local_max``), each grown to its connected core of
    ``distance_map > seed_threshold``. Watershed on ``-distance_map`` within the foreground.
    """
    distance_map = _check_map(distance_map, "distance map")
    if foreground_prob is not None:
        foreground_prob = _check_map(foreground_prob, "foreground probability")
        if foreground_prob.shape != distance_map.shape:
            raise InputError(
                f"foreground probability shape {foreground_prob.shape} differs from the distance map "
                f"shape {distance_map.shape}"
            )
    raw = _raw_distance(distance_map, foreground_prob, threshold, seed_threshold, min_distance)
    return finish_labels(raw, min_size, fill_holes)


# --------------------------------------------------------------------------------------------------
# dispatch from a config


def _resolve(probs: np.ndarray, method: str, kind: str) -> tuple[str, Callable[..., np.ndarray]]:
    """Check ``probs`` against ``kind`` and return (route name, raw-labels function of parameters)."""
    if kind not in KINDS:
        raise InputError(f"unknown target kind '{kind}'; choose one of {', '.join(KINDS)}")
    if method not in METHODS:
        raise InputError(f"unknown postprocess method '{method}'; choose one of {', '.join(METHODS)}")
    probs = np.asarray(probs)
    channels = {"binary": 2, "three-class": 3, "distance": 2}[kind]
    if probs.ndim not in (3, 4) or probs.shape[0] != channels:
        layout = {
            "binary": "softmax background, foreground",
            "three-class": "softmax background, interior, boundary",
            "distance": "foreground probability, normalised distance",
        }[kind]
        raise InputError(
            f"{kind} model output has shape {probs.shape}; expected ({channels}, H, W) or "
            f"({channels}, D, H, W) with channels {layout}"
        )
    if kind == "binary":
        foreground = probs[1]
    elif kind == "three-class":
        foreground = probs[1] + probs[2]
    else:
        foreground = probs[0]
    if method == "components" or (kind == "binary" and method == "auto"):
        return "components", lambda threshold, **_: _raw_foreground(foreground, threshold)
    if kind == "binary":
        return "binary-watershed", lambda threshold, seed_threshold, min_seed_size=MIN_SEED_SIZE, **_: (
            _raw_binary_watershed(foreground, threshold, seed_threshold, min_seed_size)
        )
    if kind == "three-class":
        return "three-class", lambda threshold, seed_threshold, min_seed_size=MIN_SEED_SIZE, **_: (
            _raw_three_class(probs, threshold, seed_threshold, min_seed_size)
        )
    return "distance", lambda threshold, seed_threshold, min_distance=MIN_PEAK_DISTANCE, **_: _raw_distance(
        probs[1], probs[0], threshold, seed_threshold, min_distance
    )


def postprocess(probs: np.ndarray, config: PostprocessConfig, kind: str) -> np.ndarray:
    """Instance labels from a model's output ``probs`` (C, H, W) or (C, D, H, W) as set by ``config``.

    ``kind`` is the training target: "binary" (C = 2 softmax, channel 1 is foreground: components),
    "three-class" (C = 3 softmax: seeded watershed) or "distance" (C = 2: foreground probability and
    normalised distance: distance watershed). ``config.method`` "auto" picks the route of the kind;
    "components" forces connected components of the foreground of any kind; "watershed" on a binary
    model floods seeds of ``p > seed_threshold`` through ``p > threshold``, one-pixel lines between objects.
    Three-class with ``config.object_weights`` and ``config.min_object_score`` > 0: objects scored below it are
    dropped last (``unetkit.inference.object_filter``).
    """
    _, raw_fn = _resolve(probs, config.method, kind)
    raw = raw_fn(threshold=config.threshold, seed_threshold=config.seed_threshold,
                 min_seed_size=config.min_seed_size, min_distance=config.min_distance)
    labels = finish_labels(raw, config.min_size, config.fill_holes)
    if config.min_object_score > 0 and config.object_weights:
        if kind != "three-class":
            raise InputError(f"postprocess.object_weights score objects of three-class outputs, not of a {kind} "
                             "model; set postprocess.min_object_score=0 (or object_weights=[]) for it")
        from unetkit.inference.object_filter import drop_doubtful

        labels = drop_doubtful(probs, labels, config.object_weights, config.min_object_score)
    return labels


# --------------------------------------------------------------------------------------------------
# tuning


def _default_score(truth: np.ndarray, pred: np.ndarray) -> float:
    from unetkit.metrics.instances import instance_scores

    return float(instance_scores(truth, pred).dsb_score)


def _grid_points(grid: dict[str, list[Any]], keys: list[str]) -> list[dict[str, Any]]:
    """All combinations of the values of ``keys`` in ``grid``, e.g. 3 x 4 values -> 12 dicts."""
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def check_grid(grid: Any, base: PostprocessConfig) -> dict[str, list[Any]]:
    """A copy of ``grid`` ({parameter: [values]}) with every value checked by the config's own rules (a
    threshold of 2, a negative min_size or a word were tuned, or crashed, before); InputError names the first."""
    from unetkit.config import RunConfig
    from unetkit.config_rules import validate_config

    fields = {f.name for f in dataclasses.fields(PostprocessConfig)}
    if not isinstance(grid, dict):
        raise InputError(f"the grid must be a JSON object of lists, e.g. {{\"threshold\": [0.4, 0.5]}}; got {grid!r}")
    unknown = sorted(set(grid) - fields)
    if unknown:
        raise InputError(
            f"unknown postprocess parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)):
            raise InputError(f"grid values for {key} must be a list, e.g. {{\"{key}\": [{values!r}]}}; got {values!r}")
    empty = [key for key, values in grid.items() if len(values) == 0]
    if empty:
        raise InputError(f"grid values for {', '.join(empty)} are empty; give at least one value each")
    for key, values in grid.items():
        for value in values:
            try:
                validate_config(RunConfig(postprocess=dataclasses.replace(base, **{key: value})))
            except InputError as error:
                raise InputError(f"grid value {key}={value!r}: {error}") from error
    return {key: list(values) for key, values in grid.items()}


def grid_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The post-processing keys a grid varied (``tune_postprocess``'s rows, beside their scores)."""
    return [key for key in rows[0] if key not in ("score", "scores")]


def configured_row(rows: Sequence[dict[str, Any]], base: PostprocessConfig) -> dict[str, Any] | None:
    """The row of ``tune_postprocess`` whose grid values are ``base``'s own, or None when they are no grid point:
    where it ties with the best, the configured values are kept (training's end and ``tune-postprocess``)."""
    keys = grid_keys(rows)
    return next((row for row in rows if all(row[key] == getattr(base, key) for key in keys)), None)


def prefer_configured(best: PostprocessConfig, rows: list[dict[str, Any]], base: PostprocessConfig
                      ) -> tuple[PostprocessConfig, list[dict[str, Any]], float | None]:
    """(the values to keep, ``rows`` with their row first, the configured values' score or None when they are no
    grid point) after ``tune_postprocess``: configured values that tie with the best are kept, so values change only
    where the images show a gain (training's end and ``tune-postprocess`` alike)."""
    configured = configured_row(rows, base)
    start = None if configured is None else configured["score"]
    if start is not None and start >= rows[0]["score"]:
        best = dataclasses.replace(best, **{key: getattr(base, key) for key in grid_keys(rows)})
        rows = [configured] + [row for row in rows if row is not configured]
    return best, rows, start


def tune_postprocess(
    prob_maps: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    kind: str,
    grid: dict[str, list[Any]] | None = None,
    score_fn: Callable[[np.ndarray, np.ndarray], float] | None = None,
    base: PostprocessConfig | None = None,
) -> tuple[PostprocessConfig, list[dict[str, Any]]]:
    """Grid search of postprocessing parameters maximising the mean score over images.

    ``prob_maps`` are model outputs (C, *S) as for :func:`postprocess`, ``truths`` the matching
    instance labels (*S). ``grid`` maps PostprocessConfig fields to candidate values (default: threshold
    0.4/0.5/0.6, seed_threshold 0.5/0.6/0.7/0.8, min_size 5/15/30); keys that do not affect ``kind``
    (seed_threshold for binary components) are dropped. ``score_fn(truth, pred) -> float`` defaults to the DSB
    score (mean over IoU 0.5..0.95 of TP / (TP + FP + FN)). Fields not in the grid come from ``base``.

    Returns the best config (first in grid order among ties) and one row per grid point, best first:
    ``{"threshold": .., "seed_threshold": .., "min_size": .., "score": mean, "scores": per image}``.
    Cost: the watershed runs once per image and (threshold, seed_threshold); min_size and fill_holes
    only re-run the finishing stage (default grid on binary: 3 raw x 3 finishing per image).
    """
    if len(prob_maps) != len(truths) or not prob_maps:
        raise InputError(
            f"tune_postprocess needs one truth per probability map, got {len(prob_maps)} maps and "
            f"{len(truths)} truths (at least one pair)"
        )
    base = base or PostprocessConfig()
    score_fn = score_fn or _default_score
    grid = check_grid(DEFAULT_GRID if grid is None else grid, base)
    method = grid.pop("method", [base.method])
    if len(method) != 1:
        raise InputError("tune one method at a time: give 'method' a single value (or leave it out)")
    base = dataclasses.replace(base, method=method[0])

    for index, (probs, truth) in enumerate(zip(prob_maps, truths, strict=True)):
        if np.asarray(probs).shape[1:] != np.asarray(truth).shape:
            raise InputError(
                f"image {index}: probability map shape {np.asarray(probs).shape} does not match its "
                f"truth {np.asarray(truth).shape}; expected (C, *S) and (*S)"
            )
    route, _ = _resolve(prob_maps[0], base.method, kind)
    raw_keys = [k for k in _RAW_KEYS[route] if k in grid]
    finish_keys = [k for k in _FINISH_KEYS if k in grid]
    raw_points = _grid_points(grid, raw_keys)
    finish_points = _grid_points(grid, finish_keys)

    scores: dict[tuple[int, int], list[float]] = {}
    for probs, truth in zip(prob_maps, truths, strict=True):
        _, raw_fn = _resolve(probs, base.method, kind)
        for r, raw_point in enumerate(raw_points):
            params = dataclasses.replace(base, **raw_point)
            raw = raw_fn(threshold=params.threshold, seed_threshold=params.seed_threshold,
                         min_seed_size=params.min_seed_size, min_distance=params.min_distance)
            for f, finish_point in enumerate(finish_points):
                done = dataclasses.replace(params, **finish_point)
                pred = finish_labels(raw, done.min_size, done.fill_holes)
                scores.setdefault((r, f), []).append(float(score_fn(np.asarray(truth), pred)))

    rows = []
    for (r, f), per_image in scores.items():
        rows.append({**raw_points[r], **finish_points[f], "score": float(np.mean(per_image)),
                     "scores": per_image})
    best = max(range(len(rows)), key=lambda i: (rows[i]["score"], -i))
    best_config = dataclasses.replace(
        base, **{k: v for k, v in rows[best].items() if k not in ("score", "scores")}
    )
    rows.sort(key=lambda row: -row["score"])  # stable: ties keep grid order
    return best_config, rows
