"""Images of small objects predicted again at twice the size (instances, 2D).

A nucleus of 40 px (7 px across) is hard for a network that also sees nuclei of 2000 px: its 2 px boundary
class leaves it almost no interior, and one pixel of outline moves its IoU a lot. When the objects of an
image are small (the median object of the first prediction under ``postprocess.upscale_below_area`` px),
the normalised image is enlarged 2x (bicubic), predicted again, and the probabilities are brought back by
the mean of each 2x2 block, so the labels are made at the image's own size as before: the same
post-processing, object filter and output shapes. This is the Cellpose way of meeting a network's object
size, decided per image from the network's own first answer; measured on DSB 2018 in BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unetkit.config import RunConfig

FACTOR = 2


def rule_applies(config: RunConfig) -> bool:
    """True for the models this rule is for: 2D models of a task whose answer is objects (``Task.sizes_objects``:
    instances) with ``postprocess.upscale_below_area`` > 0."""
    from unetkit.models.registry import model_spatial_dims
    from unetkit.tasks import get_task

    return (config.postprocess.upscale_below_area > 0 and get_task(config).sizes_objects
            and model_spatial_dims(config.model) == 2)


def takes_enlarging(median_area: float, config: RunConfig) -> bool:
    """True where an image whose first answer's median object is ``median_area`` px is predicted again at 2x:
    it has objects, and they are under ``postprocess.upscale_below_area``."""
    return 0 < median_area < config.postprocess.upscale_below_area


def median_object_area(labels: np.ndarray) -> float:
    """Median pixel count of the objects of an instance label image (0 when it has none)."""
    sizes = np.bincount(np.asarray(labels).ravel())[1:]
    sizes = sizes[sizes > 0]
    return float(np.median(sizes)) if sizes.size else 0.0


def _cubic_bspline(x: float) -> float:
    x = abs(x)
    return 2 / 3 - x ** 2 + x ** 3 / 2 if x < 1 else (2 - x) ** 3 / 6 if x < 2 else 0.0


# Output pixel 2k of a 2x enlargement sits at input position k - 1/4 and pixel 2k + 1 at k + 1/4 (pixel centres
# aligned), so each reads four spline coefficients with fixed weights: those at k-2..k+1 and k-1..k+2.
_EVEN_TAPS = tuple(_cubic_bspline(d) for d in (1.75, 0.75, 0.25, 1.25))
_ODD_TAPS = tuple(_cubic_bspline(d) for d in (1.25, 0.25, 0.75, 1.75))


def _double_axis(coefficients: np.ndarray, axis: int) -> np.ndarray:
    """Cubic B-spline coefficients along ``axis`` -> the spline sampled at twice the density there."""
    c = np.moveaxis(coefficients, axis, -1)
    n = c.shape[-1]
    padded = np.pad(c, [(0, 0)] * (c.ndim - 1) + [(2, 2)], mode="reflect")  # mirrored about the edge pixels
    even = sum(w * padded[..., i:i + n] for i, w in enumerate(_EVEN_TAPS))
    odd = sum(w * padded[..., i + 1:i + 1 + n] for i, w in enumerate(_ODD_TAPS))
    return np.moveaxis(np.stack([even, odd], axis=-1).reshape(*c.shape[:-1], 2 * n), -1, axis)


def enlarge(image: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    """(C, H, W) float image enlarged 2x per side, bicubic (a cubic B-spline), pixel centres kept aligned.

    The values of skimage's ``rescale(image, 2, order=3, channel_axis=0, anti_aliasing=False, clip=False)``
    (tested), 13x faster: the spline filter once per axis, then two fixed 4-tap filters per axis. Not clipped to
    the image's range, as skimage would by default: a clip depends on the whole image, and an image read box by
    box (``small_objects_lazy.Enlarged``) must give the same values.
    """
    from scipy.ndimage import spline_filter1d

    if factor != 2:
        raise ValueError(f"enlarge doubles images (factor 2); got {factor}")
    coefficients = np.asarray(image, dtype=np.float64)
    for axis in (1, 2):
        coefficients = spline_filter1d(coefficients, 3, axis=axis, mode="mirror")
    return _double_axis(_double_axis(coefficients, 1), 2).astype(np.float32)


def block_mean(output: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    """(K, fH, fW) -> (K, H, W): the mean of each ``factor`` x ``factor`` block (probabilities stay
    probabilities)."""
    k, height, width = output.shape
    h, w = height // factor, width // factor
    return output[:, : h * factor, : w * factor].reshape(k, h, factor, w, factor).mean(axis=(2, 4))


@dataclass
class ScaledOutput:
    """A network output at the image's own size, and how it was made.

    - ``probabilities``: (K, *S) output of the image
    - ``scale``: 1, or ``FACTOR`` where the image was predicted again enlarged
    - ``labels``: the instance labels of ``probabilities`` where the rule already made them to size the objects
      (scale 1), so they need not be made twice; None otherwise
    """

    probabilities: np.ndarray
    scale: int = 1
    labels: np.ndarray | None = None


def upscale_if_small(output: np.ndarray, image: np.ndarray, config: RunConfig, kind: str,
                     predict: Callable[[np.ndarray], np.ndarray]) -> ScaledOutput:
    """``output`` (K, H, W) of the prepared ``image`` (C, H, W), or, when its median object is under
    ``config.postprocess.upscale_below_area`` px, ``predict`` of the enlarged image brought back to (K, H, W).
    A lazily read ``image`` (``Predictor.prepare`` of a memmap or zarr array) is read whole only to be enlarged.

    ``kind``: the instance target (``three-class`` ...), for the post-processing that sizes the objects.
    """
    from unetkit.inference.postprocess import postprocess

    if config.postprocess.upscale_below_area <= 0 or len(image.shape) != 3:
        return ScaledOutput(output)
    labels = postprocess(output, config.postprocess, kind)
    if not takes_enlarging(median_object_area(labels), config):
        return ScaledOutput(output, 1, labels)
    if not isinstance(image, np.ndarray):  # a lazy view (memmap, zarr) whose output is in memory: read it whole
        image = np.asarray(image[(slice(None),) * len(image.shape)], dtype=np.float32)
    return ScaledOutput(block_mean(predict(enlarge(image))).astype(output.dtype, copy=False), FACTOR)
