"""Warping error (ISBI 2012): simple points against their definitions, hand-computed cases, and the
fast warping and classification against direct, slow transcriptions of the rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from unetkit.errors import InputError
from unetkit.metrics.isbi import isbi_curves, isbi_scores
from unetkit.metrics.warping import (
    SIMPLE,
    WARPING_THRESHOLDS,
    WarpingCounts,
    classify_mismatches,
    is_simple,
    warp_truth,
    warping_counts,
    warping_curve,
    warping_error,
)

FOUR = ndi.generate_binary_structure(2, 1)
EIGHT = np.ones((3, 3), dtype=bool)
EDGES = ((0, 1), (1, 0), (1, 2), (2, 1))  # the 4-neighbours of the centre of a 3x3 patch


def patch_of(code: int) -> np.ndarray:
    """3x3 bool patch of an 8-neighbour code (bits row-major around the centre), centre background."""
    cells = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    patch = np.zeros((3, 3), dtype=bool)
    for bit, cell in enumerate(cells):
        patch[cell] = bool(code >> bit & 1)
    return patch


def simple_by_components(patch: np.ndarray) -> bool:
    """Textbook (4, 8) simple point: one 4-component of foreground touching a 4-neighbour of the centre
    among the 8 neighbours, and one 8-component of background among them."""
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    fg, _ = ndi.label(patch & ring, structure=FOUR)
    t4 = len({fg[e] for e in EDGES if fg[e]})
    _, t8 = ndi.label(~patch & ring, structure=EIGHT)
    return t4 == 1 and t8 == 1


def simple_in_3d(patch: np.ndarray) -> bool:
    """The challenge's test: the patch as the middle slice of a 3x3x3 cube (other slices background),
    a (6, 26) simple point: one 6-component in the 6-geodesic neighbourhood of the foreground and one
    26-component of background among the 26 neighbours (Bertrand & Malandain 1994)."""
    cube = np.zeros((3, 3, 3), dtype=bool)
    cube[1] = patch
    cube[1, 1, 1] = False
    six = ndi.generate_binary_structure(3, 1)
    offsets = np.indices((3, 3, 3)).reshape(3, -1).T - 1
    n6 = np.zeros((3, 3, 3), dtype=bool)
    n18 = np.zeros((3, 3, 3), dtype=bool)
    for dz, dy, dx in offsets:
        n6[dz + 1, dy + 1, dx + 1] = abs(dz) + abs(dy) + abs(dx) == 1
        n18[dz + 1, dy + 1, dx + 1] = 1 <= abs(dz) + abs(dy) + abs(dx) <= 2
    first = cube & n6
    geodesic = first | (ndi.binary_dilation(first, six) & n18 & cube)  # N6^2(x, X)
    _, t6 = ndi.label(geodesic, structure=six)
    around = np.ones((3, 3, 3), dtype=bool)
    around[1, 1, 1] = False
    _, t26 = ndi.label(~cube & around, structure=np.ones((3, 3, 3), dtype=bool))
    return t6 == 1 and t26 == 1


def test_simple_table_matches_both_definitions_on_all_256_patterns():
    expected_2d = np.array([simple_by_components(patch_of(c)) for c in range(256)])
    expected_3d = np.array([simple_in_3d(patch_of(c)) for c in range(256)])
    np.testing.assert_array_equal(SIMPLE, expected_2d)
    np.testing.assert_array_equal(SIMPLE, expected_3d)
    assert 0 < SIMPLE.sum() < 256  # neither definition is trivially all or nothing


def test_is_simple_reads_codes_with_outside_as_background():
    image = np.zeros((3, 3), dtype=bool)
    image[1, 0] = image[1, 2] = True  # left and right: the centre would join them
    assert not is_simple(image)[1, 1]
    image[0, :] = True  # a bridge over the top: the centre now only widens a U
    simple = is_simple(image)
    assert simple[1, 1]
    assert not simple[0, 0] and not simple[0, 1]  # each holds the U together (outside is background)
    assert not is_simple(np.ones((1, 3), dtype=bool))[0, 1]  # a 1x3 bar: its middle would cut it
    for code in (0, 255):  # isolated point / interior point
        assert not SIMPLE[code]


# ---------------------------------------------------------------------------- hand-computed cases

def two_cells(height: int = 5, width: int = 7) -> np.ndarray:
    """Two cells, a one-pixel membrane column in the middle: [cell | 0 | cell]."""
    truth = np.ones((height, width), dtype=bool)
    truth[:, width // 2] = False
    return truth


def test_perfect_prediction_scores_zero():
    truth = two_cells()
    assert warping_counts(truth, truth.astype(np.float32), 0.5) == WarpingCounts(0, 0, 0, 35)
    result = isbi_scores([isbi_curves(truth, truth.astype(np.float32))])
    assert result["warping_error"] == 0.0
    assert result["warping_error_threshold"] == 0.0


def test_shifted_and_thickened_membranes_are_warped_away():
    truth = two_cells(6, 9)
    shifted = np.roll(truth, 1, axis=1)  # the membrane one column to the right
    thick = ndi.binary_erosion(truth, FOUR, border_value=1)  # a 3-pixel membrane
    for proposal in (shifted, thick):
        counts = warping_counts(truth, proposal.astype(np.float32), 0.5)
        assert counts == WarpingCounts(0, 0, 0, 54)
        result = isbi_scores([isbi_curves(truth, proposal, is_probability=False)])
        assert result["warping_error"] == 0.0
        assert result["pixel_error_original"] > 0.05  # where the pixel error does count them


def test_one_gap_in_the_membrane_is_one_merge_pixel():
    truth = two_cells()
    proposal = truth.copy()
    proposal[2, 3] = True  # the gap joins the two cells: not simple, stays, background among 2 cells
    assert warping_counts(truth, proposal.astype(np.float32), 0.5) == WarpingCounts(0, 1, 0, 35)
    proposal[3, 3] = True  # a 2-pixel gap: each pixel alone would join the cells, both stay
    assert warping_counts(truth, proposal.astype(np.float32), 0.5) == WarpingCounts(0, 2, 0, 35)
    result = isbi_scores([isbi_curves(truth, proposal, is_probability=False)])
    assert result["warping_error"] == pytest.approx(2 / 35)
    assert result["warping_error_merges"] == 2 and result["warping_error_splits"] == 0


def test_one_cutting_membrane_is_charged_one_split_pixel():
    # One cell, the proposal cuts it with a full membrane column x = 3. Column-major order, all tied:
    # (0,3) .. (3,3) are simple in turn (the notch deepens from the top), (4,3) would cut: one split.
    truth = np.ones((5, 7), dtype=bool)
    proposal = truth.copy()
    proposal[:, 3] = False
    warped = warp_truth(truth, proposal.astype(np.float32), 0.5)
    expected = truth.copy()
    expected[:4, 3] = False
    np.testing.assert_array_equal(warped, expected)
    assert warping_counts(truth, proposal.astype(np.float32), 0.5) == WarpingCounts(1, 0, 0, 35)


def test_order_follows_the_confidence_of_the_proposal():
    # As above, but the proposal is most sure of the membrane at the bottom: the notch grows from
    # the bottom instead and the pixel left is the top one.
    truth = np.ones((5, 7), dtype=np.float32)
    proposal = truth.copy()
    proposal[:, 3] = [0.4, 0.3, 0.2, 0.1, 0.0]  # |p - 0.5| largest at the bottom
    warped = warp_truth(truth, proposal, 0.5)
    assert not warped[1:, 3].any() and warped[0, 3]
    assert warping_counts(truth, proposal, 0.5) == WarpingCounts(1, 0, 0, 35)


def test_extra_object_and_hole_are_not_splits_or_merges():
    empty = np.zeros((5, 5), dtype=bool)
    speck = empty.copy()
    speck[2, 2] = True  # object addition: isolated, not simple
    assert warping_counts(empty, speck.astype(np.float32), 0.5) == WarpingCounts(0, 0, 1, 25)
    full = np.ones((5, 5), dtype=bool)
    assert warping_counts(full, (~speck).astype(np.float32), 0.5) == WarpingCounts(0, 0, 1, 25)  # a hole
    blob = empty.copy()
    blob[1:3, 1:3] = True  # a 2x2 object: every pixel of it would add or delete an object
    assert warping_counts(empty, blob.astype(np.float32), 0.5) == WarpingCounts(0, 0, 4, 25)
    assert isbi_scores([isbi_curves(empty, blob, is_probability=False)])["warping_error"] == 0.0


def test_minimum_over_thresholds_and_sums_over_slices():
    truth = two_cells()
    proposal = truth.astype(np.float32)
    proposal[2, 3] = 0.35  # merges at thresholds 0.0..0.3, fine from 0.4
    proposal[truth] = 0.95
    curve = warping_curve(truth, proposal)
    assert [c.merges for c in curve] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert warping_error([curve]) == (0.0, 0.4, WarpingCounts(0, 0, 0, 35))
    stack = np.stack([truth, truth])
    gap = proposal.copy()
    gap[2, 3] = 0.99  # a merge at every threshold of the grid
    result = isbi_scores([isbi_curves(stack, np.stack([proposal, gap]))])
    assert result["warping_error"] == pytest.approx(1 / 70)  # one pixel over both slices
    assert result["warping_error_threshold"] == 0.4


def test_rejects_bad_shapes_and_empty_input():
    with pytest.raises(InputError):
        warping_counts(np.zeros((4, 4)), np.zeros((4, 5)), 0.5)
    with pytest.raises(InputError):
        warping_error([])
    assert len(WARPING_THRESHOLDS) == 10 and WARPING_THRESHOLDS[-1] == pytest.approx(0.9)


# ------------------------------------------------- fast paths against slow transcriptions of the rules

def reference_warp(truth: np.ndarray, proposal: np.ndarray, threshold: float) -> np.ndarray:
    """Passes over all current mismatches, re-sorted each pass, every one re-tested by components."""
    source = np.pad(truth != 0, 1)
    target = np.pad(proposal > threshold, 1)
    key = np.pad(np.abs(proposal.astype(np.float64) - threshold).astype(np.float32), 1)
    while True:
        points = [(y, x) for x in range(source.shape[1]) for y in range(source.shape[0])
                  if source[y, x] != target[y, x]]
        points.sort(key=lambda p: -key[p])  # stable: column-major among ties
        flipped = False
        for y, x in points:
            if simple_by_components(source[y - 1:y + 2, x - 1:x + 2]):
                source[y, x] = not source[y, x]
                flipped = True
        if not flipped:
            return source[1:-1, 1:-1]


def reference_classify(warped: np.ndarray, target: np.ndarray) -> tuple[int, int, int]:
    """Per mismatch, relabelling the whole image when a pixel has to be removed to see a split."""
    objects, _ = ndi.label(warped, structure=FOUR)
    height, width = warped.shape
    splits = merges = other = 0

    def ids_around(labels, y, x):
        return {int(labels[j, i]) for j in range(y - 1, y + 2) for i in range(x - 1, x + 2)
                if (j, i) != (y, x) and 0 <= j < height and 0 <= i < width}

    for y, x in zip(*np.nonzero(warped != target), strict=True):
        ids = ids_around(objects, y, x)
        if len(ids) >= 3:
            splits, merges = (splits + 1, merges) if warped[y, x] else (splits, merges + 1)
        elif len(ids) == 2 and warped[y, x]:
            removed = warped.copy()
            removed[y, x] = False
            if len(ids_around(ndi.label(removed, structure=FOUR)[0], y, x)) > 2:
                splits += 1
            else:
                other += 1
        else:
            other += 1
    return splits, merges, other


@pytest.mark.parametrize("seed", range(6))
def test_fast_warping_and_classification_equal_the_slow_rules(seed):
    rng = np.random.default_rng(seed)
    truth = ndi.binary_opening(rng.random((14, 16)) < 0.6, FOUR)  # blobs with holes, gaps and specks
    proposal = np.clip(ndi.gaussian_filter(truth.astype(float), 1.0) + rng.normal(0, 0.25, truth.shape), 0, 1)
    proposal = proposal.astype(np.float32)
    if seed == 0:
        proposal = np.round(proposal * 4) / 4  # many ties: the column-major order decides
    for threshold in (0.2, 0.5, 0.7):
        warped = warp_truth(truth, proposal, threshold)
        np.testing.assert_array_equal(warped, reference_warp(truth, proposal, threshold))
        counts = classify_mismatches(warped, proposal > threshold)
        assert (counts.splits, counts.merges, counts.other) == reference_classify(warped, proposal > threshold)
        assert counts.splits + counts.merges + counts.other == np.count_nonzero(warped != (proposal > threshold))


def test_evaluate_binary_cli_reports_the_warping_error(tmp_path, capsys):
    import json

    from unetkit.cli import main
    from unetkit.data.io import write_png

    truth = two_cells(10, 11)
    gap = truth.copy()
    gap[4, 5] = True  # one merge pixel in 110
    write_png(tmp_path / "truth" / "a.png", truth.astype(np.uint8) * 255)
    write_png(tmp_path / "pred" / "a.png", gap.astype(np.uint8) * 255)
    assert main(["evaluate", "--task", "binary", "--truth", str(tmp_path / "truth"), "--pred",
                 str(tmp_path / "pred"), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["warping_error"] == pytest.approx(1 / 110)
    assert summary["warping_error_merges"] == 1 and summary["warping_error_threshold"] == 0.0
    assert "warping_error " in out and "0.009091" in out  # the table shows it to 4 significant digits
    assert "warping_error" in (tmp_path / "pred" / "evaluation_binary.csv").read_text().splitlines()[0]
