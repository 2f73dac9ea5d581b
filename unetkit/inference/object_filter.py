"""Drop predicted objects that are likely wrong: a per-object score from the probabilities it came from.

Why: the DSB score counts every unmatched prediction as a false positive at every IoU threshold, and an
object matched only loosely (IoU 0.5-0.6) is a false positive at the stricter thresholds. Most of these
objects look different in the network's output: a pale foreground, no confident interior, much of the
object uncertain, a ragged or non-convex outline, a contact line shared with a neighbour (a split piece).
The winners of the 2018 Data Science Bowl scored the objects of their watershed this way (a gradient
boosted model on per-object features) and dropped the worst; here a logistic regression on
``FEATURES`` does it, small enough to live as numbers in the post-processing config (``postprocess
.object_weights`` and ``postprocess.min_object_score``) and fitted on training images at the end of an
instances run (its end-of-run tuning step). BENCHMARKS.md, "Version 9: dropping doubtful objects", has the measurements.

Works on three-class outputs (softmax background / interior / boundary), 2D or 3D.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops

from unetkit.config import PostprocessConfig
from unetkit.errors import InputError

# One value per object; all are computed from the object's own pixels, its 1-px outer ring, and the
# image's median object area (so they mean the same on large and small nuclei images).
FEATURES = (
    "log_area",  # log of the object's size in px
    "log_relative_area",  # log of size / the image's median object size (small fragments, merged pairs)
    "mean_foreground",  # mean of 1 - p_background over the object
    "mean_interior",  # mean p_interior over the object
    "max_interior",  # highest p_interior in the object (a confident seed or none)
    "mean_boundary",  # mean p_boundary over the object
    "uncertain_fraction",  # share of the object's px with foreground probability in (0.3, 0.7)
    "ring_foreground",  # mean foreground probability on the background px just outside (a soft edge)
    "contact_fraction",  # share of the object's edge px that touch another object
    "solidity",  # size / convex hull size (merges and ragged fragments are not convex)
)
# Cut-offs tried by ``fit_object_filter``: objects whose score is below the cut are dropped; 0 keeps all.
CUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MATCH_IOU = 0.5  # an object is "right" when it overlaps a truth object with IoU above this
# Fewer wrong objects than this on the fitting images and the filter stays off: the rule of thumb of ten
# events per weight of a logistic regression (11 weights). A 3D run tuned on 9 small training crops chose a
# cut that cost its validation volume 0.011 DSB; the 96 DSB crops hold 257 wrong objects.
MIN_WRONG = 10 * (len(FEATURES) + 1)


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float32), np.asarray(labels)
    if probs.ndim != labels.ndim + 1 or probs.shape[0] != 3 or probs.shape[1:] != labels.shape:
        raise InputError(f"object features need three-class probabilities (3, *S) and labels (*S); got "
                         f"{probs.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels of dtype {labels.dtype}; expected integer instance ids")
    return probs, labels


def object_features(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, len(FEATURES)) float64: the features of objects 1..N of ``labels`` (ids consecutive, as
    ``postprocess`` returns them) from the three-class ``probs`` (3, *S) they were drawn from.

    Example: a 10 x 10 square object with p_interior 0.8 and p_boundary 0.1 everywhere, alone in the image
    on p_background 1, has log_area log(100), mean_foreground 0.9, mean_interior 0.8, max_interior 0.8,
    uncertain_fraction 0, ring_foreground 0, contact_fraction 0, solidity 1.
    """
    probs, labels = _check(probs, labels)
    count = int(labels.max()) if labels.size else 0
    if count == 0:
        return np.zeros((0, len(FEATURES)))
    ids = np.arange(1, count + 1)
    area = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.float64)
    if (area == 0).any():
        raise InputError("object ids are not consecutive (1..N); relabel the labels first")
    foreground = 1.0 - probs[0]

    def per_object(values: np.ndarray) -> np.ndarray:  # mean of values over each object
        return np.bincount(labels.ravel(), weights=values.ravel(), minlength=count + 1)[1:] / area

    # The outer ring: background px next (fully connected) to an object, given to the highest such id.
    grown = ndi.grey_dilation(labels, size=(3,) * labels.ndim)
    ring = np.where((labels == 0) & (grown > 0), grown, 0)
    ring_size = np.bincount(ring.ravel(), minlength=count + 1)[1:]
    ring_sum = np.bincount(ring.ravel(), weights=foreground.ravel(), minlength=count + 1)[1:]
    # Edge px of an object: a neighbour with another value; contact: that neighbour is another object.
    high = ndi.maximum_filter(labels, size=3)
    low_objects = ndi.minimum_filter(np.where(labels > 0, labels, count + 1), size=3)  # background above all ids
    low = ndi.minimum_filter(labels, size=3)
    edge = (labels > 0) & ((high != labels) | (low != labels))
    touching = (labels > 0) & ((high > labels) | (low_objects < labels))
    edge_size = np.bincount(labels[edge], minlength=count + 1)[1:]
    touch_size = np.bincount(labels[touching], minlength=count + 1)[1:]
    solidity = np.array([region.solidity if region.area > 2 else 1.0 for region in regionprops(labels)])

    return np.column_stack([
        np.log(area),
        np.log(area / np.median(area)),
        per_object(foreground),
        per_object(probs[1]),
        np.asarray(ndi.maximum(probs[1], labels, ids), dtype=np.float64),
        per_object(probs[2]),
        per_object(((foreground > 0.3) & (foreground < 0.7)).astype(np.float32)),
        np.where(ring_size > 0, ring_sum / np.maximum(ring_size, 1), 0.0),
        touch_size / np.maximum(edge_size, 1),
        solidity,
    ])


def object_scores(features: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """(N,) probability that each object is right: sigmoid(features @ weights[:-1] + weights[-1])."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size != len(FEATURES) + 1:
        raise InputError(f"postprocess.object_weights holds {weights.size} numbers; expected {len(FEATURES) + 1} "
                         f"(one per feature of {', '.join(FEATURES)}, then the bias), or none to keep every object")
    return 1.0 / (1.0 + np.exp(-(features @ weights[:-1] + weights[-1])))


def keep_objects(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``labels`` (ids 1..N) with only the objects where ``keep`` (N,) is True, renumbered 1..M in id order."""
    table = np.zeros(keep.size + 1, dtype=labels.dtype)
    table[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return table[labels]


def drop_doubtful(probs: np.ndarray, labels: np.ndarray, weights: Sequence[float], min_score: float) -> np.ndarray:
    """Copy of ``labels`` (ids 1..N) without the objects scored below ``min_score``, ids renumbered 1..M."""
    labels = np.asarray(labels)
    if min_score <= 0 or not len(weights) or labels.max(initial=0) == 0:
        return labels.copy()
    return keep_objects(labels, object_scores(object_features(probs, labels), weights) >= min_score)


def best_iou(truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) the highest IoU of each object 1..N of ``labels`` with any object of ``truth`` (0: none)."""
    from unetkit.metrics.instances import pair_overlaps

    overlaps = pair_overlaps(truth, labels)
    best = np.zeros(overlaps.n_pred)
    np.maximum.at(best, overlaps.pred_index, overlaps.iou)
    return best


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Weights (F + 1,) of a logistic regression of ``y`` (N,) in {0, 1} on ``x`` (N, F), bias last.

    Newton steps on the L2-penalised log-likelihood of standardised features (a convex problem: 25 steps
    reach the optimum to many digits for a few thousand objects), then the scaling folded back into the
    weights, so they apply to the raw features. The bias is not penalised.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    penalty = np.full(z.shape[1], float(l2))
    penalty[-1] = 0.0
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(z.shape[1])
        w -= np.linalg.solve(hessian, gradient)
    raw = w[:-1] / scale
    return np.append(raw, w[-1] - float(raw @ mean))


@dataclass(frozen=True)
class ObjectFilterFit:
    """What ``fit_object_filter`` found: the weights, the chosen cut and the mean DSB score per cut."""

    weights: list[float]
    min_score: float
    scores: dict[float, float]  # cut -> mean DSB score on the fitting images (0.0, always there: none dropped)
    objects: int  # objects the regression saw
    wrong: int  # of which no truth object overlaps with IoU > MATCH_IOU


def kept_dsb_score(best: np.ndarray, keep: np.ndarray, n_true: int) -> float:
    """DSB score of an image's objects with only those where ``keep`` (N,) holds, from ``best`` (N,), each
    object's ``best_iou`` with the image's ``n_true`` truth objects. At IoU thresholds of 0.5 and above a match
    is one to one, so the true positives at t are the kept objects whose best IoU exceeds t: the same number as
    ``instance_scores(truth, keep_objects(labels, keep)).dsb_score`` without matching once per cut."""
    from unetkit.metrics.instances import DSB_THRESHOLDS

    kept = np.asarray(best)[np.asarray(keep, dtype=bool)]
    if kept.size == 0 and n_true == 0:
        return 1.0
    hits = (kept[None, :] > DSB_THRESHOLDS[:, None]).sum(1)
    return float(np.mean(hits / (kept.size + n_true - hits)))


def fit_object_filter(prob_maps: Sequence[np.ndarray], label_maps: Sequence[np.ndarray],
                      truths: Sequence[np.ndarray], cuts: Sequence[float] = CUTS,
                      min_wrong: int = MIN_WRONG) -> ObjectFilterFit:
    """Fit the object score on images with truth and choose the cut that maximises their mean DSB score.

    ``prob_maps`` (3, *S) three-class outputs, ``label_maps`` the post-processed labels of each (ids 1..N),
    ``truths`` the truth instance labels. The cut 0 (keep all) is always among the candidates, so the
    filter is off (min_score 0) unless dropping objects scores better on these images; it is off too with
    fewer than ``min_wrong`` wrong objects to learn from.
    """
    from unetkit.metrics.instances import object_count

    if not (len(prob_maps) == len(label_maps) == len(truths)) or not prob_maps:
        raise InputError(f"fit_object_filter needs as many probability maps, labels and truths (at least one); "
                         f"got {len(prob_maps)}, {len(label_maps)}, {len(truths)}")
    features = [object_features(p, lab) for p, lab in zip(prob_maps, label_maps, strict=True)]
    bests = [best_iou(t, lab) for t, lab in zip(truths, label_maps, strict=True)]
    n_truths = [object_count(t) for t in truths]
    x, y = np.concatenate(features), np.concatenate(bests) > MATCH_IOU

    def mean_score(keeps: list[np.ndarray]) -> float:
        return float(np.mean([kept_dsb_score(b, k, n) for b, k, n in zip(bests, keeps, n_truths, strict=True)]))

    if (~y).sum() < min_wrong or not y.any():  # too little to learn from: keep every object
        plain = mean_score([np.ones(b.size, dtype=bool) for b in bests])
        return ObjectFilterFit([], 0.0, {0.0: plain}, int(y.size), int((~y).sum()))
    weights = fit_logistic(x, y)
    scores = {float(cut): mean_score([object_scores(f, weights) >= cut for f in features])
              for cut in sorted({0.0, *cuts})}
    best = max(scores, key=lambda cut: (scores[cut], -cut))  # ties: the smaller cut (drop less)
    return ObjectFilterFit([float(w) for w in weights], best, scores, int(y.size), int((~y).sum()))


def filter_for(prob_maps: Sequence[np.ndarray], truths: Sequence[np.ndarray], config: PostprocessConfig,
               kind: str) -> tuple[dict[str, Any], ObjectFilterFit | None]:
    """(``object_weights`` and ``min_object_score`` to store in ``postprocess``, the fit) for outputs
    post-processed with ``config`` (its own filter left out); kinds other than three-class have none:
    (empty weights and cut 0, None)."""
    from unetkit.inference.postprocess import postprocess

    if kind != "three-class":
        return {"object_weights": [], "min_object_score": 0.0}, None
    plain = dataclasses.replace(config, object_weights=[], min_object_score=0.0)
    fit = fit_object_filter(prob_maps, [postprocess(p, plain, kind) for p in prob_maps], truths)
    return {"object_weights": fit.weights, "min_object_score": fit.min_score}, fit
