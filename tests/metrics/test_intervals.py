"""Bootstrap intervals of per-image means: against the normal-theory interval, pairing, and the edge cases."""

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.metrics.intervals import (
    MIN_IMAGES,
    add_intervals,
    difference_interval,
    interval_key,
    mean_interval,
    pooled_interval,
)


def test_the_interval_of_a_mean_matches_normal_theory_for_many_images():
    values = np.random.default_rng(3).normal(0.6, 0.15, 400)
    low, high = mean_interval(values)
    half = 1.959964 * values.std(ddof=1) / np.sqrt(values.size)  # the t/normal interval, n = 400
    # The bootstrap's standard error has a relative error of about 1 / sqrt(2 n) = 3.5 % here, plus its
    # own resampling noise (9999 resamples: under 1 %): 12 % is more than three times that.
    assert (high - low) / 2 == pytest.approx(half, rel=0.12)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.1 * half)
    assert low < values.mean() < high


def test_the_interval_shrinks_with_the_number_of_images():
    rng = np.random.default_rng(4)
    small, large = mean_interval(rng.uniform(0, 1, 25)), mean_interval(rng.uniform(0, 1, 400))
    # width ~ 1 / sqrt(n): a 16x larger sample gives a ~4x narrower interval
    assert (small[1] - small[0]) / (large[1] - large[0]) == pytest.approx(4, rel=0.3)


def test_a_seeded_interval_is_the_same_every_time():
    values = np.random.default_rng(5).uniform(0, 1, 50)
    assert mean_interval(values) == mean_interval(values)


def test_pairing_tells_apart_two_models_that_their_own_intervals_cannot():
    rng = np.random.default_rng(6)
    difficulty = rng.uniform(0.2, 0.9, 80)  # images differ far more than the two models do
    first = difficulty + 0.01 + rng.normal(0, 0.01, 80)
    second = difficulty
    a, b = mean_interval(first), mean_interval(second)
    assert a[0] < b[1]  # the models' own intervals overlap ...
    low, high = difference_interval(first, second)
    assert 0 < low < 0.01 < high  # ... the paired difference is clearly above 0 and holds the true +0.01
    assert difference_interval(second, first) == pytest.approx((-high, -low), abs=2e-3)


def test_too_few_images_give_no_interval_and_constant_scores_a_point():
    assert mean_interval(np.linspace(0, 1, MIN_IMAGES - 1)) is None
    assert mean_interval([0.5] * MIN_IMAGES) == (0.5, 0.5)
    with_nan = [np.nan] * 5 + list(np.linspace(0, 1, MIN_IMAGES - 1))
    assert mean_interval(with_nan) is None  # NaN is left out, so too few remain
    with pytest.raises(InputError, match="paired scores"):
        difference_interval([0.1, 0.2], [0.1])
    with pytest.raises(InputError, match="confidence"):
        mean_interval(np.ones(20), confidence=1.5)


def test_add_intervals_names_each_score_and_skips_what_is_missing():
    rows = [{"dsb_score": v, "ap50": None} for v in np.linspace(0.4, 0.8, 12)]
    summary = add_intervals({"dsb_score": 0.6}, rows, ("dsb_score", "ap50"))
    assert interval_key("dsb_score") == "dsb_score_ci95"
    low, high = summary["dsb_score_ci95"]
    assert low < 0.6 < high
    assert "ap50_ci95" not in summary


def test_a_pooled_score_resamples_images_not_pixels():
    rng = np.random.default_rng(3)
    hits = rng.random(25)
    # every image has 4 pixels of the class: the pooled share sum(hits) / (4 n) is the mean of hits / 4, so
    # its interval is the mean's interval divided by 4
    counts = [np.array([h, 4.0]) for h in hits]
    pooled = pooled_interval(counts, lambda c: c[0] / c[1])
    assert pooled == pytest.approx([v / 4 for v in mean_interval(hits)], rel=1e-9)
    # images of unequal size weigh by their pixels: the interval is around the pixel-weighted value, not the
    # mean of the images' own shares
    sizes = rng.integers(5, 60, 25).astype(float)
    counts = [np.array([h * n, n]) for h, n in zip(hits, sizes, strict=True)]
    low, high = pooled_interval(counts, lambda c: c[0] / c[1])
    value = (hits * sizes).sum() / sizes.sum()
    assert low < value < high and (low, high) != pytest.approx(mean_interval(hits), abs=1e-3)
    assert pooled_interval(counts[:9], lambda c: c[0] / c[1]) is None  # too few images
    assert pooled_interval([np.array([1.0, 2.0])] * 12, lambda c: c[0] / c[1]) == (0.5, 0.5)
    assert pooled_interval([np.array([0.0, 0.0])] * 12, lambda c: c[0] / c[1] if c[1] else np.nan) is None
