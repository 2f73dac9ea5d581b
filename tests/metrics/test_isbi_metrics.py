"""ISBI 2012 metrics on hand-computed cases: perfect, eroded, dilated, one merge, one split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from unetkit.errors import InputError
from unetkit.metrics.isbi import (
    Counts,
    info_scores,
    isbi_curves,
    isbi_scores,
    rand_counts,
    thin_borders,
)

FOUR = ndi.generate_binary_structure(2, 1)


def two_cells(height: int = 2, side: int = 3) -> np.ndarray:
    """Two cells of height x side pixels, one border column between them: [cell | 0 | cell]."""
    truth = np.ones((height, 2 * side + 1), dtype=bool)
    truth[:, side] = False
    return truth


def scores(truth, proposal, is_probability=False) -> dict[str, float]:
    return isbi_scores([isbi_curves(truth, proposal, is_probability)])


def test_perfect_map_scores_zero_everywhere():
    truth = two_cells()
    result = scores(truth, truth.astype(np.float32), is_probability=True)
    for key in ("rand_error_original", "rand_error_original_split", "rand_error_original_merge",
                "pixel_error_original", "rand_error_thinned", "info_error_thinned",
                "rand_error_thinned_split", "rand_error_thinned_merge", "info_error_thinned_split",
                "info_error_thinned_merge"):
        assert result[key] == pytest.approx(0.0, abs=1e-12), key


def test_one_merge():
    # prediction fills the border: one segment over both 6-pixel cells (n = 12)
    truth = two_cells()
    result = scores(truth, np.ones_like(truth))
    # pairs with self-pairs: tp = 6^2 + 6^2 = 72, predicted 12^2 = 144, truth 72 -> P 1/2, R 1, F 2/3
    assert result["rand_error_original"] == pytest.approx(1 / 3)
    assert result["rand_error_original_merge"] == pytest.approx(1 / 2)
    assert result["rand_error_original_split"] == pytest.approx(0.0)
    assert result["rand_error_thinned"] == pytest.approx(1 / 3)
    assert result["rand_error_thinned_merge"] == pytest.approx(1 / 2)
    assert result["rand_error_thinned_split"] == pytest.approx(0.0)
    # pixels: tp 12, fp 2 (the border column), fn 0 -> F = 2 * (12/14) / (12/14 + 1) = 12/13
    assert result["pixel_error_original"] == pytest.approx(1 / 13)
    # one segment: I = 0, so the merge score I/H(T) is 0 and V_info 0
    assert result["info_error_thinned"] == pytest.approx(1.0)
    assert result["info_error_thinned_merge"] == pytest.approx(1.0)
    assert result["info_error_thinned_split"] == pytest.approx(0.0)


def test_one_split():
    # column 1 predicted border: the left cell splits into 2 + 2 pixels and 2 border pixels (singletons)
    truth = two_cells()
    pred = truth.copy()
    pred[:, 1] = False
    result = scores(truth, pred)
    tp = 2**2 + 2**2 + 2 + 6**2  # = 46; predicted pairs the same (no merge), truth pairs 72
    recall = tp / 72
    rand_f = 2 * recall / (1 + recall)
    assert result["rand_error_original"] == pytest.approx(1 - rand_f)
    assert result["rand_error_original_split"] == pytest.approx(1 - recall)
    assert result["rand_error_original_merge"] == pytest.approx(0.0)
    # thinning keeps the 1-pixel line between the two pieces: the same split
    assert result["rand_error_thinned"] == pytest.approx(1 - rand_f)
    assert result["rand_error_thinned_split"] == pytest.approx(1 - recall)
    assert result["rand_error_thinned_merge"] == pytest.approx(0.0)
    # V_info: H(T) = ln 2; segments 2/12, 2/12, 1/12, 1/12, 6/12 each inside one cell, so I = H(T)
    h_seg = -(2 * (1 / 6) * math.log(1 / 6) + 2 * (1 / 12) * math.log(1 / 12) + 0.5 * math.log(0.5))
    split = math.log(2) / h_seg
    assert result["info_error_thinned_split"] == pytest.approx(1 - split)
    assert result["info_error_thinned_merge"] == pytest.approx(0.0, abs=1e-12)
    assert result["info_error_thinned"] == pytest.approx(1 - 2 * split / (1 + split))


def test_eroded_truth_is_forgiven_after_thinning_only():
    truth = two_cells(height=5, side=5)  # two 5x5 cells, n = 50
    eroded = ndi.binary_erosion(truth, FOUR)  # each cell keeps its 3x3 interior
    result = scores(truth, eroded)
    tp = 2 * (9**2 + 16)  # each cell: its 3x3 segment plus 16 border singletons
    recall = tp / (2 * 25**2)
    assert result["rand_error_original"] == pytest.approx(1 - 2 * recall / (1 + recall))
    assert result["rand_error_original_split"] == pytest.approx(1 - recall)  # border singletons: all splits
    assert result["rand_error_original_merge"] == pytest.approx(0.0)
    assert result["pixel_error_original"] == pytest.approx(1 - 2 * 18 / (2 * 18 + 32))  # tp 18, fn 32
    # the rings are flooded back from the interiors and meet on the truth's border column
    assert np.array_equal(thin_borders(eroded) > 0, truth)
    assert result["rand_error_thinned"] == pytest.approx(0.0, abs=1e-12)
    assert result["info_error_thinned"] == pytest.approx(0.0, abs=1e-12)


def test_dilated_truth_merges():
    truth = two_cells(height=5, side=5)
    dilated = ndi.binary_dilation(truth, FOUR)  # closes the one-pixel border: one segment
    result = scores(truth, dilated)
    assert result["rand_error_original"] == pytest.approx(1 / 3)
    assert result["rand_error_thinned_merge"] == pytest.approx(1 / 2)
    assert result["pixel_error_original"] == pytest.approx(1 - 2 * 50 / (2 * 50 + 5))


def test_threshold_grid_picks_the_first_best_threshold():
    truth = two_cells()
    prob = np.where(truth, 0.9, 0.1)  # float64: a float32 0.1 lies just above the threshold 0.1
    prob[:, 1] = 0.3  # weak cell pixels: kept for thresholds below 0.3
    result = scores(truth, prob, is_probability=True)
    # below 0.10 the border (0.1) joins the cells: a merge; from 0.10 to 0.29 perfect; from 0.30 a split
    assert result["rand_error_original"] == pytest.approx(0.0, abs=1e-12)
    assert result["rand_error_original_threshold"] == pytest.approx(0.10)
    assert result["rand_error_thinned_threshold"] == pytest.approx(0.1)


def test_folder_sums_original_counts_and_averages_thinned_scores():
    truth = two_cells()
    perfect = isbi_curves(truth, truth, is_probability=False)
    merged = isbi_curves(truth, np.ones_like(truth), is_probability=False)
    result = isbi_scores([perfect, merged])
    # summed pairs: tp 72 + 72, fp 0 + 72 -> P 2/3, R 1, F 0.8 (not the mean of 1 and 2/3)
    assert result["rand_error_original"] == pytest.approx(0.2)
    assert result["rand_error_thinned"] == pytest.approx(1 - (1 + 2 / 3) / 2)  # per-slice average
    stack = isbi_scores([isbi_curves(np.stack([truth, truth]), np.stack([truth, np.ones_like(truth)]),
                                     is_probability=False)])
    assert stack == pytest.approx(result)


def test_thinning_keeps_one_line_in_a_wide_gap():
    mask = np.ones((4, 9), dtype=bool)
    mask[:, 3:6] = False  # a 3-pixel border between two cells
    labels = thin_borders(mask)
    assert np.array_equal(labels[:, 4], np.zeros(4))
    assert len(np.unique(labels[:, :4])) == 1 and len(np.unique(labels[:, 5:])) == 1
    assert labels[0, 0] != labels[0, 8]
    assert np.array_equal(thin_borders(np.zeros((3, 3), bool)), np.ones((3, 3)))  # no cell: one segment


def test_counts_and_info_edge_cases():
    assert Counts(0, 0, 0).fscore == 1.0
    empty = np.zeros((4, 4), dtype=np.int32)
    assert rand_counts(empty, empty).fscore == 1.0  # no truth foreground: nothing to get wrong
    one = np.ones((4, 4), dtype=np.int32)
    assert info_scores(one, one).score == pytest.approx(1.0)  # one cell predicted as one segment


def test_rejects_mismatched_shapes_and_grids():
    with pytest.raises(InputError, match="shapes differ"):
        isbi_curves(np.ones((4, 4)), np.ones((4, 5)))
    a = isbi_curves(np.ones((4, 4)), np.ones((4, 4)), original_thresholds=[0.5])
    b = isbi_curves(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(InputError, match="share their threshold grids"):
        isbi_scores([a, b])


def test_evaluate_binary_reports_both_generations(tmp_path):
    from unetkit.data.io import write_png, write_tiff
    from unetkit.metrics.folders import evaluate_binary

    truth = two_cells().astype(np.uint8) * 255
    merged = np.ones_like(truth) * 255
    write_png(tmp_path / "truth" / "a.png", truth)
    write_png(tmp_path / "truth" / "b.png", truth)
    write_png(tmp_path / "pred" / "a.png", truth)
    write_png(tmp_path / "pred" / "b.png", merged)
    result = evaluate_binary(tmp_path / "truth", tmp_path / "pred")
    assert result.rows[1]["rand_error_original"] == pytest.approx(1 / 3)
    assert result.summary["rand_error_original"] == pytest.approx(0.2)  # counts summed over the folder
    assert result.summary["rand_error_thinned"] == pytest.approx(1 / 6)  # per-image scores averaged
    # a probability map next to the merged mask is swept: the border (0.5) splits from threshold 0.50 on
    write_tiff(tmp_path / "pred" / "probabilities" / "b.tif", np.where(truth > 0, 0.9, 0.5).astype(np.float32))
    (tmp_path / "pred" / "b.png").rename(tmp_path / "pred" / "b_mask.png")
    row = evaluate_binary(tmp_path / "truth", tmp_path / "pred").rows[1]
    assert row["rand_error_original"] == 0.0 and row["rand_error_original_threshold"] == pytest.approx(0.5)


def test_info_scores_agree_with_skimage_conditional_entropies():
    from skimage.metrics import variation_of_information

    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, (30, 40))  # five cells, no border: no singletons either
    segments = np.where(rng.random((30, 40)) < 0.8, truth, rng.integers(1, 4, (30, 40)))
    # skimage returns (H(image1 | image0), H(image0 | image1)) in bits; ours are in nats
    h_s_given_t, h_t_given_s = np.log(2) * variation_of_information(truth, segments)

    def entropy(labels):
        p = np.unique(labels, return_counts=True)[1] / labels.size
        return float(-np.sum(p * np.log(p)))

    mutual = entropy(truth) - h_t_given_s
    result = info_scores(truth, segments)
    assert result.merge == pytest.approx(mutual / entropy(truth))
    assert result.split == pytest.approx((entropy(segments) - h_s_given_t) / entropy(segments))
