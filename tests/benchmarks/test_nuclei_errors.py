"""benchmarks/nuclei_errors.py: each kind of error sorted as named, on hand-drawn label images."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from nuclei_errors import best_outlines, matched_areas, outline_variants, sort_errors  # noqa: E402


def square(image: np.ndarray, top: int, left: int, side: int, value: int) -> None:
    image[top:top + side, left:left + side] = value


def test_matched_missed_merged_split_poor_fit_and_false_positive_are_told_apart():
    truth = np.zeros((100, 100), dtype=np.uint16)
    pred = np.zeros_like(truth)
    square(truth, 0, 0, 10, 1)  # matched: predicted exactly
    square(pred, 0, 0, 10, 1)
    square(truth, 0, 20, 10, 2)  # missed: nothing predicted there
    square(truth, 20, 0, 10, 3)  # merged: 3 and 4 side by side inside one prediction
    square(truth, 20, 10, 10, 4)
    pred[20:30, 0:20] = 2
    square(truth, 40, 0, 20, 5)  # split: top and bottom halves predicted as two objects
    pred[40:50, 0:20] = 3
    pred[50:60, 0:20] = 4
    square(truth, 70, 0, 10, 6)  # poor fit: one prediction, 4x its area
    square(pred, 70, 0, 20, 5)
    square(pred, 0, 80, 10, 6)  # false positive: on background
    truths, preds = sort_errors(truth, pred)
    assert [kind for kind, _, _ in truths] == ["matched", "missed", "merged", "merged", "split", "poor fit"]
    assert [size for _, size, _ in truths] == [100, 100, 100, 100, 400, 100]
    assert truths[0][2] == 1.0 and truths[5][2] == 0.25
    # unmatched predictions: the merge, the two halves, the loose outline; and the one on background
    assert preds == {"other side of a merge/split/poor fit": 4, "false positive": 1}


def test_empty_truth_or_prediction_gives_only_missed_or_false_positives():
    truth = np.zeros((30, 30), dtype=np.uint16)
    pred = np.zeros_like(truth)
    square(pred, 0, 0, 5, 7)
    assert sort_errors(truth, pred) == ([], {"false positive": 1})
    truths, preds = sort_errors(pred, truth)
    assert truths == [("missed", 25, 0.0)] and preds == {}


def test_matched_areas_pair_each_matched_nucleus_with_its_prediction():
    truth = np.zeros((40, 40), dtype=np.uint16)
    pred = np.zeros_like(truth)
    square(truth, 0, 0, 10, 1)  # predicted one pixel too large all round: 144 / 100, IoU 0.69
    square(pred, 0, 0, 12, 3)
    square(truth, 20, 20, 10, 2)  # predicted at a quarter of its area: IoU 0.25, not matched
    square(pred, 20, 20, 5, 4)
    assert matched_areas(truth, pred).tolist() == [[100, 144]]
    assert matched_areas(truth, np.zeros_like(truth)).shape == (0, 2)


def test_outline_bound_redraws_each_object_at_the_threshold_that_fits_its_truth():
    truth = np.zeros((40, 60), dtype=np.uint16)
    square(truth, 5, 5, 10, 1)
    square(truth, 5, 30, 10, 2)
    foreground = np.full(truth.shape, 0.1)
    pred = np.zeros_like(truth)
    square(pred, 6, 6, 8, 1)  # drawn 1 px too small: its ring holds p 0.55, so threshold 0.5 fits it
    foreground[5:15, 5:15] = 0.55
    foreground[6:14, 6:14] = 0.95
    square(pred, 4, 29, 12, 2)  # drawn 1 px too large: its ring holds p 0.85, so threshold 0.9 fits it
    foreground[4:16, 29:41] = 0.85
    foreground[5:15, 30:40] = 0.95
    square(pred, 30, 50, 4, 3)  # a false object at p 0.65: gone from the variants above 0.6
    foreground[30:34, 50:54] = 0.65
    variants = outline_variants(foreground, pred, (0.5, 0.6, 0.9))
    assert [(v == 1).sum() for v in variants] == [100, 64, 64]  # grows into its ring only below 0.55
    assert [(v == 2).sum() for v in variants] == [144, 144, 100]
    assert [(v == 3).sum() for v in variants] == [16, 16, 0]
    best = best_outlines(truth, variants)
    assert np.array_equal(best == 1, truth == 1) and np.array_equal(best == 2, truth == 2)
    assert (best == 3).sum() == 16  # no truth to fit: the first variant's outline


def test_outline_variants_never_grow_into_another_object():
    pred = np.zeros((10, 19), dtype=np.uint16)
    pred[2:8, 2:9] = 1
    pred[2:8, 10:17] = 2
    foreground = np.full(pred.shape, 0.9)  # everything looks like foreground
    low = outline_variants(foreground, pred, (0.5,))[0]
    assert np.array_equal(low[pred > 0], pred[pred > 0])  # each object keeps its own pixels ...
    assert (low > 0).all()  # ... and the background within 3 px (here: all of it) goes to the nearest one
