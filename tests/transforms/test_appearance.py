"""Inversion and colour changes: image only, polarity exact, colour stats as drawn, inputs untouched."""

import numpy as np
import pytest

from unetkit.config import AugmentConfig
from unetkit.errors import InputError
from unetkit.transforms import RandomColor, RandomInvert, build_transforms


def sample(channels=3, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(-0.1, 1.1, (channels, 16, 16)).astype(np.float32)
    return {"image": image, "target": rng.integers(0, 3, (16, 16)), "weights": rng.random((16, 16))}


def test_invert_swaps_polarity_and_touches_only_the_image():
    s = sample()
    before = s["image"].copy()
    out = RandomInvert(p=1.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], 1.0 - before)  # low percentile -> 1, high -> 0
    np.testing.assert_array_equal(s["image"], before)
    assert out["target"] is s["target"] and out["weights"] is s["weights"]
    twice = RandomInvert(p=1.0)(out, np.random.default_rng(0))["image"]
    np.testing.assert_allclose(twice, before, atol=1e-6)


def test_invert_probability_is_respected():
    s = sample()
    inverted = [not np.array_equal(RandomInvert(p=0.3)(s, np.random.default_rng(i))["image"], s["image"])
                for i in range(2000)]
    assert abs(np.mean(inverted) - 0.3) < 0.04  # binomial sd ~0.01


def test_color_changes_channels_differently_and_keeps_single_channel_images():
    s = sample()
    out = RandomColor(p=1.0, gain=0.3, offset=0.1, gray=0.0)(s, np.random.default_rng(3))["image"]
    assert out.dtype == np.float32 and out.shape == s["image"].shape
    mean = s["image"].mean()
    # each channel is an affine map of itself: recover gain and offset by least squares, within the ranges
    for c in range(3):
        gain, intercept = np.polyfit(s["image"][c].ravel() - mean, out[c].ravel(), 1)
        assert 0.7 - 1e-4 <= gain <= 1.3 + 1e-4
        assert -0.1 - 1e-4 <= intercept - mean <= 0.1 + 1e-4
    gray = sample(channels=1)
    np.testing.assert_array_equal(RandomColor(p=1.0)(gray, np.random.default_rng(0))["image"], gray["image"])


def test_color_gray_makes_all_channels_equal():
    out = RandomColor(p=1.0, gray=1.0)(sample(), np.random.default_rng(1))["image"]
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])


def test_bad_amounts_are_refused():
    with pytest.raises(InputError, match="gain"):
        RandomColor(gain=1.0)
    with pytest.raises(InputError, match="offset"):
        RandomColor(offset=-0.1)


def test_config_switches_them_on_in_order():
    names = [type(t).__name__ for t in build_transforms(AugmentConfig(invert=0.5, color=0.3), 2).transforms]
    assert names.index("RandomColor") < names.index("RandomInvert") < names.index("RandomIntensity")
    default = {type(t).__name__ for t in build_transforms(AugmentConfig(), 2).transforms}
    assert not {"RandomColor", "RandomInvert"} & default
