"""Image regression scores (denoising, restoration, image-to-image): MAE, RMSE, PSNR, SSIM.

``data_range`` is the span of values a perfect image could take; PSNR and SSIM depend on it. The
default is the truth's own range (max - min) per image, the usual choice for normalised microscopy
images; pass a fixed value (e.g. 1.0 for images in [0, 1], 255 for 8-bit) to compare across
images on one scale. A constant truth has range 0; then 1.0 is used.
"""

from __future__ import annotations

import numpy as np

from unetkit.errors import InputError


def _spatial_dims(shape: tuple[int, ...], spatial_dims: int | None) -> int:
    """Spatial dims of an array: given, or inferred (2D: (H, W); 3D array with <= 4 leading
    entries: channels-first 2D (C, H, W); otherwise a volume (D, H, W); 4D: (C, D, H, W))."""
    if spatial_dims is not None:
        if spatial_dims not in (2, 3) or len(shape) not in (spatial_dims, spatial_dims + 1):
            raise InputError(
                f"array of shape {shape} does not fit spatial_dims={spatial_dims}; expected "
                f"{spatial_dims} spatial axes with an optional leading channel axis"
            )
        return spatial_dims
    if len(shape) == 2:
        return 2
    if len(shape) == 3:
        return 2 if shape[0] <= 4 else 3
    if len(shape) == 4:
        return 3
    raise InputError(f"regression scores need (H, W), (C, H, W), (D, H, W) or (C, D, H, W), got {shape}")


def _ssim(truth: np.ndarray, pred: np.ndarray, data_range: float, spatial_dims: int) -> float:
    """Mean SSIM (skimage, 7-px window shrunk for tiny images); channels-first arrays are averaged
    over channels. NaN when a spatial side is below 3 px (no window fits)."""
    from skimage.metrics import structural_similarity

    multichannel = truth.ndim == spatial_dims + 1
    spatial = truth.shape[1:] if multichannel else truth.shape
    window = min(7, min(spatial))
    window -= 1 - window % 2  # odd window: 7, or the largest odd side below 7
    if window < 3:
        return float("nan")
    return float(
        structural_similarity(
            truth,
            pred,
            data_range=data_range,
            win_size=window,
            channel_axis=0 if multichannel else None,
        )
    )


def regression_scores(
    truth: np.ndarray,
    pred: np.ndarray,
    data_range: float | None = None,
    spatial_dims: int | None = None,
) -> dict[str, float]:
    """MAE, RMSE, PSNR (dB) and SSIM of ``pred`` against ``truth``.

    Args:
        truth: (H, W), (C, H, W), (D, H, W) or (C, D, H, W); channels-first when multi-channel.
        pred: same shape as ``truth``.
        data_range: value span for PSNR/SSIM; default truth max - min (1.0 if the truth is constant).
        spatial_dims: 2 or 3; default inferred from the shape (see ``_spatial_dims``), which cannot tell
            a small volume (D <= 4, H, W) from a multi-channel image: pass it when that matters.

    PSNR = 10 log10(data_range^2 / MSE); inf when the images are equal.
    """
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if truth.shape != pred.shape:
        raise InputError(f"truth and prediction shapes differ: {truth.shape} vs {pred.shape}")
    if truth.size == 0:
        raise InputError("cannot score empty images")
    dims = _spatial_dims(truth.shape, spatial_dims)
    if data_range is None:
        data_range = float(truth.max() - truth.min()) or 1.0
    elif data_range <= 0:
        raise InputError(f"data_range must be positive, got {data_range}")
    difference = pred - truth
    mse = float(np.mean(difference**2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))
    return {
        "mae": float(np.mean(np.abs(difference))),
        "rmse": float(np.sqrt(mse)),
        "psnr": psnr,
        "ssim": _ssim(truth, pred, data_range, dims),
    }
