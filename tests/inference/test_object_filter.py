"""The object filter: per-object features of hand-made outputs, the logistic fit, and dropping faint objects."""

import math

import numpy as np
import pytest

from unetkit.config import PostprocessConfig, RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.inference.object_filter import (
    FEATURES,
    MIN_WRONG,
    best_iou,
    drop_doubtful,
    filter_for,
    fit_logistic,
    fit_object_filter,
    keep_objects,
    kept_dsb_score,
    object_features,
    object_scores,
)
from unetkit.inference.postprocess import postprocess
from unetkit.metrics.instances import instance_scores, relabel_consecutive

F = {name: i for i, name in enumerate(FEATURES)}


def paint(labels: np.ndarray, interior: dict[int, float], boundary: dict[int, float]) -> np.ndarray:
    """Three-class probabilities (3, H, W): background 1 off the objects, the given p_interior / p_boundary
    on each object id, background the rest."""
    probs = np.zeros((3, *labels.shape), dtype=np.float32)
    probs[0] = 1.0
    for index in interior:
        inside = labels == index
        probs[1][inside], probs[2][inside] = interior[index], boundary[index]
        probs[0][inside] = 1.0 - interior[index] - boundary[index]
    return probs


def square(shape=(30, 30), top=5, left=5, side=10, index=1, labels=None) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int32) if labels is None else labels
    labels[top:top + side, left:left + side] = index
    return labels


def test_features_of_a_lone_square_are_the_docstring_example():
    labels = square()
    x = object_features(paint(labels, {1: 0.8}, {1: 0.1}), labels)
    assert x.shape == (1, len(FEATURES))
    expected = {"log_area": math.log(100), "log_relative_area": 0.0, "mean_foreground": 0.9, "mean_interior": 0.8,
                "max_interior": 0.8, "mean_boundary": 0.1, "uncertain_fraction": 0.0, "ring_foreground": 0.0,
                "contact_fraction": 0.0, "solidity": 1.0}
    for name, value in expected.items():  # float32 probabilities: 1e-6 covers their rounding
        assert x[0, F[name]] == pytest.approx(value, abs=1e-6), name


def test_contact_ring_and_uncertainty_of_two_touching_squares():
    labels = square(index=1)
    labels = square(left=15, index=2, labels=labels)  # columns 5-14 and 15-24: touching along a column
    probs = paint(labels, {1: 0.9, 2: 0.3}, {1: 0.05, 2: 0.2})  # object 2: foreground 0.5, uncertain
    ring = np.zeros(labels.shape, dtype=bool)
    ring[4:16, 4:26] = True
    ring[labels > 0] = False
    probs[0][ring], probs[1][ring] = 0.75, 0.25  # a soft edge: foreground 0.25 just outside both
    x = object_features(probs, labels)
    # a 10 x 10 square has 36 edge px; 10 of them (the shared column) touch the other square
    assert x[:, F["contact_fraction"]] == pytest.approx([10 / 36, 10 / 36])
    assert x[:, F["uncertain_fraction"]] == pytest.approx([0.0, 1.0])
    assert x[:, F["ring_foreground"]] == pytest.approx([0.25, 0.25], abs=1e-6)
    assert x[:, F["mean_foreground"]] == pytest.approx([0.95, 0.5], abs=1e-6)


def test_a_non_convex_object_is_less_solid_and_a_fragment_is_small_relative_to_the_image():
    labels = square(shape=(40, 40), side=12)
    labels[5:11, 5:11] = 0  # an L: a 12 x 12 square less a 6 x 6 corner
    labels = square(shape=(40, 40), top=25, left=25, side=12, index=2, labels=labels)
    labels = square(shape=(40, 40), top=25, left=5, side=3, index=3, labels=labels)
    x = object_features(paint(labels, {1: .9, 2: .9, 3: .9}, {1: .05, 2: .05, 3: .05}), labels)
    assert x[0, F["solidity"]] < 0.9 < x[1, F["solidity"]] == 1.0
    assert x[2, F["log_relative_area"]] == pytest.approx(math.log(9 / 108))  # median of 108, 144, 9


def test_feature_inputs_are_checked():
    labels = square()
    probs = paint(labels, {1: 0.8}, {1: 0.1})
    with pytest.raises(InputError, match="three-class probabilities"):
        object_features(probs[:2], labels)
    with pytest.raises(InputError, match="not consecutive"):
        object_features(probs, labels * 2)
    with pytest.raises(InputError, match="integer"):
        object_features(probs, labels.astype(np.float32))
    assert object_features(probs, np.zeros_like(labels)).shape == (0, len(FEATURES))
    with pytest.raises(InputError, match=f"expected {len(FEATURES) + 1}"):
        object_scores(np.zeros((1, len(FEATURES))), [1.0, 2.0])


def test_the_logistic_fit_reaches_the_optimum_on_raw_features():
    rng = np.random.default_rng(0)
    x = rng.normal([3.0, -1.0], [2.0, 0.1], size=(4000, 2))  # scales 20x apart: the fit standardises
    true = np.array([1.5, 20.0, 16.0])  # x @ true[:2] + true[2] is 0.5 on average, spread 3.6
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ true[:2] + true[2])))
    w = fit_logistic(x, y, l2=0.0)
    p = 1 / (1 + np.exp(-(x @ w[:2] + w[2])))
    # the unpenalised optimum: the log-likelihood's gradient vanishes in the raw features' coordinates
    gradient = np.append(x.T @ (p - y), (p - y).sum())
    assert np.abs(gradient).max() < 1e-6 * len(x)
    assert w == pytest.approx(true, rel=0.25)  # 4000 draws: within sampling error of the model
    shrunk = fit_logistic(x, y, l2=1000.0)
    assert np.abs(shrunk[:2] * x.std(0)).sum() < np.abs(w[:2] * x.std(0)).sum()  # the penalty shrinks


def test_drop_doubtful_removes_low_scores_and_renumbers():
    labels = square(shape=(30, 60))
    labels = square(shape=(30, 60), left=20, index=2, labels=labels)
    labels = square(shape=(30, 60), left=40, index=3, labels=labels)
    probs = paint(labels, {1: 0.9, 2: 0.5, 3: 0.9}, {1: 0.05, 2: 0.1, 3: 0.05})  # object 2: foreground 0.6
    weights = np.zeros(len(FEATURES) + 1)
    weights[F["mean_foreground"]], weights[-1] = 50.0, -40.0  # score > 0.5 where mean foreground > 0.8
    kept = drop_doubtful(probs, labels, weights, 0.5)
    assert set(np.unique(kept)) == {0, 1, 2}
    assert np.array_equal(kept == 1, labels == 1) and np.array_equal(kept == 2, labels == 3)
    assert np.array_equal(drop_doubtful(probs, labels, weights, 0.0), labels)  # cut 0: the filter is off


def faint_blob_images(count: int, seed: int, blobs: bool = True) -> tuple[list, list]:
    """(three-class outputs, truths): confident nuclei (squares of 8-14 px) and, with ``blobs``, pale
    spurious objects (foreground 0.65, no interior above 0.4) that the truth does not hold."""
    rng = np.random.default_rng(seed)
    outputs, truths = [], []
    for _ in range(count):
        truth = np.zeros((64, 64), dtype=np.int32)
        faint = np.zeros_like(truth)
        for row in range(3):
            for col in range(3):
                side = int(rng.integers(8, 15))
                target = faint if (blobs and (row + col) % 4 == 1) else truth
                square(top=4 + 20 * row, left=4 + 20 * col, side=side, index=3 * row + col + 1, labels=target)
        probs = paint(truth, {i: 0.95 for i in range(1, 10)}, {i: 0.03 for i in range(1, 10)})
        pale = faint > 0
        probs[0][pale], probs[1][pale], probs[2][pale] = 0.35, 0.62, 0.03
        outputs.append(probs)
        truths.append(truth)
    return outputs, truths


def test_the_fit_learns_to_drop_faint_objects_and_postprocess_applies_it():
    config = PostprocessConfig(threshold=0.5, seed_threshold=0.5, min_size=5)
    outputs, truths = faint_blob_images(60, seed=1)  # 120 faint objects: enough to fit 11 weights
    values, fit = filter_for(outputs, truths, config, "three-class")
    plain = [instance_scores(truth, postprocess(probs, config, "three-class")).dsb_score
             for probs, truth in zip(outputs, truths, strict=True)]
    assert fit.wrong > 0 and max(plain) < 1.0  # the faint objects are false positives
    assert values["min_object_score"] > 0 and fit.scores[values["min_object_score"]] > fit.scores[0.0]
    assert fit.scores[0.0] == pytest.approx(np.mean(plain))
    # new images of the same kind: the stored values drop the faint objects and keep every nucleus
    filtered = PostprocessConfig(threshold=0.5, seed_threshold=0.5, min_size=5, **values)
    test_outputs, test_truths = faint_blob_images(3, seed=2)
    for probs, truth in zip(test_outputs, test_truths, strict=True):
        assert instance_scores(truth, postprocess(probs, filtered, "three-class")).dsb_score == 1.0
    with pytest.raises(InputError, match="postprocess.object_weights.*binary"):
        postprocess(np.stack([outputs[0][0], 1 - outputs[0][0]]), filtered, "binary")


def test_no_filter_where_every_object_is_right_or_for_other_kinds():
    config = PostprocessConfig(threshold=0.5, seed_threshold=0.5, min_size=5)
    outputs, truths = faint_blob_images(2, seed=3, blobs=False)
    values, fit = filter_for(outputs, truths, config, "three-class")
    assert values == {"object_weights": [], "min_object_score": 0.0} and fit.wrong == 0
    few, few_truths = faint_blob_images(6, seed=1)  # 12 faint objects: too few to fit, the filter stays off
    values, fit = filter_for(few, few_truths, config, "three-class")
    assert values["min_object_score"] == 0.0 and fit.wrong == 12 < MIN_WRONG
    assert filter_for(outputs, truths, config, "binary") == ({"object_weights": [], "min_object_score": 0.0}, None)
    with pytest.raises(InputError, match="as many"):
        fit_object_filter(outputs, [], truths)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("postprocess.object_weights", [1.0, float("nan")], "list of finite numbers"),
    ("postprocess.object_weights", ["a"], "list of finite numbers"),
    ("postprocess.min_object_score", 1.0, r"in \[0, 1\)"),
    ("postprocess.min_object_score", -0.1, r"in \[0, 1\)"),
])
def test_bad_filter_values_are_refused_by_name(key, value, expected):
    with pytest.raises(InputError, match=rf"{key}=.*{expected}"):
        apply_overrides(RunConfig(), {key: value})


def test_features_of_3d_objects():
    zz, yy, xx = np.indices((20, 40, 40))
    labels = np.zeros((20, 40, 40), dtype=np.uint16)
    labels[(zz - 10) ** 2 + (yy - 12) ** 2 + (xx - 12) ** 2 < 36] = 1
    labels[2:4, 2:4, 30:32] = 2  # a 2 x 2 x 2 cube
    probs = np.zeros((3, *labels.shape), dtype=np.float32)
    probs[0] = 1.0
    probs[:, labels > 0] = np.array([0.1, 0.8, 0.1], dtype=np.float32)[:, None]
    x = object_features(probs, labels)
    assert x.shape == (2, len(FEATURES))
    assert x[1, F["log_area"]] == pytest.approx(math.log(8)) and x[1, F["solidity"]] == 1.0
    assert 0.85 < x[0, F["solidity"]] < 1.0  # a voxelised ball is nearly convex
    assert x[:, F["mean_foreground"]] == pytest.approx([0.9, 0.9]) and not x[:, F["contact_fraction"]].any()


def test_a_fitted_filter_survives_the_config_round_trip_of_checkpoints():
    from unetkit.config import from_dict, to_dict

    weights = [0.5 * i - 2.0 for i in range(len(FEATURES) + 1)]
    config = apply_overrides(RunConfig(), {"postprocess.object_weights": weights, "postprocess.min_object_score": 0.7})
    again = from_dict(to_dict(config))  # what a checkpoint stores and loads
    assert again.postprocess.object_weights == weights and again.postprocess.min_object_score == 0.7


def test_kept_dsb_score_equals_matching_the_kept_objects_again():
    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = np.zeros((60, 60), dtype=np.uint16)
        labels = np.zeros_like(truth)
        for k in range(1, int(rng.integers(0, 9)) + 1):  # squares, drawn with a random offset and size change
            top, left = (int(v) for v in rng.integers(0, 48, 2))
            side = int(rng.integers(4, 12))
            truth[top:top + side, left:left + side] = k
            dy, dx, ds = (int(v) for v in rng.integers(-2, 3, 3))
            labels[max(top + dy, 0):top + dy + side + ds, max(left + dx, 0):left + dx + side + ds] = k
        labels = relabel_consecutive(labels)[0].reshape(labels.shape)
        keep = rng.random(int(labels.max())) < 0.7
        expected = instance_scores(truth, keep_objects(labels, keep)).dsb_score
        n_true = int(np.count_nonzero(np.unique(truth)))
        assert kept_dsb_score(best_iou(truth, labels), keep, n_true) == pytest.approx(expected, abs=1e-12)
    assert kept_dsb_score(np.zeros(0), np.zeros(0, dtype=bool), 0) == 1.0  # nothing to find, nothing found
    assert kept_dsb_score(np.array([0.9]), np.array([False]), 1) == 0.0  # the one right object dropped
