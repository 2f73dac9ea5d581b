"""Baselines a regression model must beat: the input itself and a Gaussian-filtered input, each under
its best global affine gray-value map to the target (least squares over all images, fitted on the
evaluated images themselves, which favours the baselines)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BASELINE_SIGMAS = (1.0, 2.0, 4.0, 8.0)


def _affine_fit(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> tuple[float, float]:
    """(a, b) minimising sum (a x + b - t)^2 over all pixels of all images (least squares)."""
    x = np.concatenate([np.ravel(i) for i in inputs]).astype(np.float64)
    t = np.concatenate([np.ravel(i) for i in targets]).astype(np.float64)
    a, b = np.polyfit(x, t, 1)
    return float(a), float(b)


def regression_baselines(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                         sigmas: Sequence[float] = BASELINE_SIGMAS) -> dict[str, dict[str, float]]:
    """Mean PSNR / SSIM / MAE of two baselines on (H, W) input and target images.

    ``identity``: a * input + b; ``gaussian``: a * gaussian_filter(input, sigma) + b with the sigma of
    best PSNR among ``sigmas``. (a, b) are least-squares fits over all given images, so each baseline
    gets the best global gray-value map it could have.
    """
    from scipy import ndimage

    from unetkit.metrics.regression import regression_scores

    def score(candidates: Sequence[np.ndarray]) -> dict[str, float]:
        a, b = _affine_fit(candidates, targets)
        pairs = zip(candidates, targets, strict=True)
        rows = [regression_scores(t, a * c + b, spatial_dims=2) for c, t in pairs]
        result = {key: float(np.mean([r[key] for r in rows])) for key in ("psnr", "ssim", "mae")}
        return {**result, "scale": a, "offset": b}

    baselines = {"identity": score(inputs)}
    best = None
    for sigma in sigmas:
        scores = score([ndimage.gaussian_filter(i.astype(np.float64), sigma) for i in inputs])
        if best is None or scores["psnr"] > best["psnr"]:
            best = {**scores, "sigma": float(sigma)}
    baselines["gaussian"] = best
    return baselines
