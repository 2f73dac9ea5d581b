"""benchmarks/tune_images.py: the choice of each random tuning set, read on the validation scores."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from tune_images import centre_crop, choice_spread  # noqa: E402


def test_each_draw_chooses_the_best_mean_on_its_images_and_is_scored_on_validation():
    # grid point A wins on images 0-1, B on images 2-3; validation prefers B (0.9) over A (0.5)
    train = {("A",): np.array([1.0, 1.0, 0.0, 0.0]), ("B",): np.array([0.0, 0.0, 1.0, 1.0])}
    val = {("A",): np.array([0.4, 0.6]), ("B",): np.array([0.9, 0.9])}
    scores, chosen = choice_spread(train, val, 4, 5, np.random.default_rng(0))
    assert chosen == {("A",): 5}  # a tie on all four images: the first in grid order, as tune_postprocess
    np.testing.assert_allclose(scores, 0.5)
    scores, chosen = choice_spread(train, val, 1, 200, np.random.default_rng(0))
    assert set(chosen) == {("A",), ("B",)} and sum(chosen.values()) == 200
    np.testing.assert_allclose(np.sort(np.unique(scores)), [0.5, 0.9])
    assert abs(scores.mean() - (0.5 * chosen[("A",)] + 0.9 * chosen[("B",)]) / 200) < 1e-12


def test_centre_crop_cuts_probabilities_and_labels_alike():
    labels = np.arange(20 * 9).reshape(20, 9)
    probs = np.stack([labels, -labels]).astype(np.float32)
    cut_probs, cut_labels = centre_crop(probs, labels, side=10)
    np.testing.assert_array_equal(cut_labels, labels[5:15, :])
    np.testing.assert_array_equal(cut_probs[1], -labels[5:15, :])
