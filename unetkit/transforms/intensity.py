"""Gray value variations on the image only (the paper's "gray value variations"); target and weights pass.

Images arrive normalised per image (percentiles mapped to ~0..1, values may be slightly negative), so
the amounts below are in those units: brightness 0.1 is a tenth of the normalised range.
"""

from __future__ import annotations

import numpy as np

from unetkit.errors import InputError
from unetkit.transforms.base import Sample, check_probability


class RandomIntensity:
    """With probability ``p``: gamma, contrast, brightness and Gaussian noise, in that order.

    - gamma: exponent ``g = exp(u)``, u ~ U(-gamma, gamma) (gamma=0.2 -> g in [0.82, 1.22]), applied to
      the image rescaled to [0, 1] by its own min and max and mapped back, so negative normalised
      values never meet a fractional power;
    - contrast: ``(x - mean) * c + mean``, c ~ U(1 - contrast, 1 + contrast);
    - brightness: ``x + b``, b ~ U(-brightness, brightness);
    - noise: ``x + n``, n ~ N(0, s^2) per pixel, s ~ U(0, noise_std) per sample (some samples stay clean).

    All channels share the same draws, so colour relations survive. Each amount 0 turns its part off.
    """

    def __init__(
        self,
        brightness: float = 0.1,
        contrast: float = 0.2,
        gamma: float = 0.2,
        noise_std: float = 0.03,
        p: float = 0.8,
    ):
        amounts = {"brightness": brightness, "contrast": contrast, "gamma": gamma, "noise_std": noise_std}
        negative = [f"{name}={value}" for name, value in amounts.items() if value < 0]
        if negative:
            raise InputError(f"RandomIntensity amounts must be >= 0, got {', '.join(negative)}")
        if contrast >= 1:
            raise InputError(f"RandomIntensity contrast must be < 1 (factor 1 +- contrast), got {contrast}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.gamma = float(gamma)
        self.noise_std = float(noise_std)
        self.p = check_probability(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = dict(sample)
        if rng.random() >= self.p:
            return out
        image = sample["image"].astype(np.float32, copy=True)  # never touch the caller's array
        if self.gamma > 0:
            low, high = float(image.min()), float(image.max())
            if high > low:
                exponent = np.float32(np.exp(rng.uniform(-self.gamma, self.gamma)))
                image = (image - low) / np.float32(high - low)
                np.power(image, exponent, out=image)
                image = image * np.float32(high - low) + np.float32(low)
        if self.contrast > 0:
            factor = np.float32(rng.uniform(1 - self.contrast, 1 + self.contrast))
            mean = np.float32(image.mean())
            image = (image - mean) * factor + mean
        if self.brightness > 0:
            image += np.float32(rng.uniform(-self.brightness, self.brightness))
        if self.noise_std > 0:
            std = np.float32(rng.uniform(0, self.noise_std))
            image += std * rng.standard_normal(image.shape, dtype=np.float32)
        out["image"] = image
        return out

    def __repr__(self) -> str:
        return (
            f"RandomIntensity(brightness={self.brightness}, contrast={self.contrast}, gamma={self.gamma}, "
            f"noise_std={self.noise_std}, p={self.p})"
        )
