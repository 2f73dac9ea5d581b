"""Gray value variations: image only, each part checked alone, negative values safe, inputs untouched."""

import numpy as np
import pytest

from unetkit.errors import InputError
from unetkit.transforms.intensity import RandomIntensity


def sample(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(-0.2, 1.2, (2, 16, 16)).astype(np.float32)  # normalised values can be < 0
    return {"image": image, "target": rng.integers(0, 3, (16, 16)), "weights": rng.random((16, 16))}


def test_only_the_image_changes_and_inputs_are_untouched():
    s = sample()
    before = {k: v.copy() for k, v in s.items()}
    out = RandomIntensity(p=1.0)(s, np.random.default_rng(0))
    assert out["image"].dtype == np.float32 and out["image"].shape == s["image"].shape
    assert not np.array_equal(out["image"], s["image"])
    assert out["target"] is s["target"] and out["weights"] is s["weights"]
    for key in s:
        np.testing.assert_array_equal(s[key], before[key])


def test_p0_keeps_the_image():
    s = sample()
    out = RandomIntensity(p=0.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], s["image"])


def test_brightness_alone_adds_one_constant_within_range():
    s = sample()
    for seed in range(10):
        out = RandomIntensity(brightness=0.1, contrast=0, gamma=0, noise_std=0, p=1.0)(s, np.random.default_rng(seed))
        delta = out["image"] - s["image"]
        assert np.ptp(delta) < 1e-6 and abs(delta.mean()) <= 0.1


def test_contrast_alone_keeps_the_mean_and_scales_the_spread():
    s = sample()
    out = RandomIntensity(brightness=0, contrast=0.2, gamma=0, noise_std=0, p=1.0)(s, np.random.default_rng(1))
    assert out["image"].mean() == pytest.approx(s["image"].mean(), abs=1e-5)
    ratio = out["image"].std() / s["image"].std()
    assert 0.8 <= ratio <= 1.2 and ratio != pytest.approx(1.0, abs=1e-6)


def test_gamma_alone_keeps_min_max_and_order_with_negative_values():
    s = sample()
    out = RandomIntensity(brightness=0, contrast=0, gamma=0.2, noise_std=0, p=1.0)(s, np.random.default_rng(2))
    image = out["image"]
    assert np.isfinite(image).all()
    assert image.min() == pytest.approx(s["image"].min(), abs=1e-6)
    assert image.max() == pytest.approx(s["image"].max(), abs=1e-6)
    order = np.argsort(s["image"], axis=None)
    assert np.all(np.diff(image.ravel()[order]) >= -1e-6)  # monotonic: gray order is kept
    assert not np.allclose(image, s["image"])


def test_noise_alone_has_std_at_most_noise_std():
    s = {"image": np.zeros((1, 128, 128), np.float32)}
    stds = [RandomIntensity(0, 0, 0, noise_std=0.05, p=1.0)(s, np.random.default_rng(i))["image"].std()
            for i in range(20)]
    assert max(stds) <= 0.05 * 1.05 and min(stds) < 0.04  # std ~ U(0, 0.05) per sample


def test_constant_image_and_bad_amounts():
    s = {"image": np.full((1, 4, 4), 0.3, np.float32)}
    out = RandomIntensity(noise_std=0, p=1.0)(s, np.random.default_rng(0))
    assert np.isfinite(out["image"]).all() and np.ptp(out["image"]) < 1e-6  # no division by zero
    with pytest.raises(InputError, match="brightness"):
        RandomIntensity(brightness=-0.1)
    with pytest.raises(InputError, match="contrast"):
        RandomIntensity(contrast=1.0)
