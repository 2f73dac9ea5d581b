"""Geometric augmentations applied identically to image, target and weights (2D and 3D).

Flips and 90-degree rotations permute pixels exactly (no interpolation). The free rotation + shift
resamples every array with the order its dtype calls for (``base.interpolation_order``) and fills
the outside by mirroring, as the paper extrapolates missing context by mirroring.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from unetkit.errors import InputError
from unetkit.transforms.base import IMAGE_ORDER, Sample, check_probability, interpolation_order, spatial_shape


class RandomFlip:
    """Flip each of the last ``spatial_dims`` axes independently with probability ``p``."""

    def __init__(self, spatial_dims: int, p: float = 0.5):
        self.spatial_dims = spatial_dims
        self.p = check_probability(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        spatial_shape(sample, self.spatial_dims)
        flip = rng.random(self.spatial_dims) < self.p
        axes = tuple(int(a) - self.spatial_dims for a in np.flatnonzero(flip))  # e.g. (-2,) = H in 2D
        if not axes:
            return dict(sample)
        # np.flip returns a negative-stride view; copy so that torch.from_numpy accepts the result.
        return {key: np.ascontiguousarray(np.flip(array, axis=axes)) for key, array in sample.items()}

    def __repr__(self) -> str:
        return f"RandomFlip(spatial_dims={self.spatial_dims}, p={self.p})"


class RandomRot90:
    """Rotate by k * 90 degrees in the last two axes, k uniform in 0..3.

    Non-square patches (H != W) only use k in {0, 2} so that every sample of a batch keeps its shape.
    """

    def __init__(self, spatial_dims: int):
        if spatial_dims < 2:
            raise InputError(f"RandomRot90 needs at least 2 spatial axes, got spatial_dims={spatial_dims}")
        self.spatial_dims = spatial_dims

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        shape = spatial_shape(sample, self.spatial_dims)
        square = shape[-1] == shape[-2]
        k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        if k == 0:
            return dict(sample)
        return {key: np.ascontiguousarray(np.rot90(array, k, axes=(-2, -1))) for key, array in sample.items()}

    def __repr__(self) -> str:
        return f"RandomRot90(spatial_dims={self.spatial_dims})"


def affine_matrix(
    shape: tuple[int, ...], degrees: float, shift: tuple[float, ...], zoom: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) for ``scipy.ndimage.affine_transform``: zoom and rotate about the centre, then shift.

    Rotation and zoom act in the last two axes (for 3D: in-plane, as a change of magnification; the
    depth axis is untouched); ``zoom`` > 1 makes objects larger; ``shift`` in px per axis moves the
    content towards larger indices. affine_transform maps each output coordinate o to the input
    coordinate ``matrix @ o + offset = (zR)^-1 (o - c - shift) + c``.
    """
    if zoom <= 0:
        raise InputError(f"affine_matrix needs zoom > 0, got {zoom}")
    ndim = len(shape)
    angle = math.radians(degrees)
    inverse = np.eye(ndim)
    cos, sin = math.cos(angle), math.sin(angle)
    inverse[-2:, -2:] = np.array([[cos, sin], [-sin, cos]]) / zoom  # (zR(angle))^-1 = R(-angle) / z
    centre = (np.asarray(shape, dtype=float) - 1) / 2
    offset = centre - inverse @ (centre + np.asarray(shift, dtype=float))
    return inverse, offset


class RandomAffine:
    """Free rotation (uniform in +-max_degrees), zoom and shift (uniform in +-max_shift_fraction of each side).

    The zoom factor is drawn log-uniformly in [1 / (1 + max_zoom), 1 + max_zoom], so enlarging and
    shrinking are equally likely: objects of one size are seen at the sizes other images have.
    Example: a 256x256 patch with max_shift_fraction=0.1 moves by up to 25.6 px per axis; max_zoom=0.25
    shows it between 0.8x and 1.25x. Outside values are mirrored (``mode="reflect"``: d c b a | a b c d).
    The image is resampled with ``image_order`` (cubic by default, see ``base.IMAGE_ORDER``); labels
    with nearest neighbours, so a boundary class 2 px wide becomes 1.6 to 2.5 px wide.
    """

    def __init__(
        self,
        spatial_dims: int,
        max_degrees: float = 0.0,
        max_shift_fraction: float = 0.0,
        p: float = 1.0,
        image_order: int = IMAGE_ORDER,
        max_zoom: float = 0.0,
    ):
        if spatial_dims < 2:
            raise InputError(f"RandomAffine needs at least 2 spatial axes, got spatial_dims={spatial_dims}")
        if max_degrees < 0 or not 0 <= max_shift_fraction < 1:
            raise InputError(
                f"RandomAffine needs max_degrees >= 0 and 0 <= max_shift_fraction < 1, "
                f"got {max_degrees} and {max_shift_fraction}"
            )
        if not 0 <= max_zoom <= 1:
            raise InputError(f"RandomAffine needs 0 <= max_zoom <= 1 (at most 2x), got {max_zoom}")
        self.spatial_dims = spatial_dims
        self.max_degrees = float(max_degrees)
        self.max_shift_fraction = float(max_shift_fraction)
        self.max_zoom = float(max_zoom)
        self.p = check_probability(p)
        self.image_order = int(image_order)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        shape = spatial_shape(sample, self.spatial_dims)
        if rng.random() >= self.p:
            return dict(sample)
        degrees = rng.uniform(-self.max_degrees, self.max_degrees)
        shift = rng.uniform(-self.max_shift_fraction, self.max_shift_fraction, len(shape)) * np.array(shape)
        # drawn only when asked for, so that runs without zoom keep their random streams
        zoom = math.exp(rng.uniform(-1, 1) * math.log1p(self.max_zoom)) if self.max_zoom else 1.0
        matrix, offset = affine_matrix(shape, degrees, tuple(shift), zoom)
        return {
            key: _affine(array, matrix, offset, interpolation_order(key, array, self.image_order))
            for key, array in sample.items()
        }

    def __repr__(self) -> str:
        return (
            f"RandomAffine(spatial_dims={self.spatial_dims}, max_degrees={self.max_degrees}, "
            f"max_shift_fraction={self.max_shift_fraction}, max_zoom={self.max_zoom}, p={self.p})"
        )


def _affine(array: np.ndarray, matrix: np.ndarray, offset: np.ndarray, order: int) -> np.ndarray:
    """Resample every leading-axis slice (channels) of ``array`` with the same spatial affine map."""
    ndim = matrix.shape[0]
    source = array.view(np.uint8) if array.dtype == bool else array
    flat = source.reshape((-1,) + source.shape[-ndim:])
    out = np.empty_like(flat)
    for index in range(flat.shape[0]):
        ndimage.affine_transform(
            flat[index], matrix, offset=offset, output=out[index], order=order, mode="reflect"
        )
    out = out.reshape(array.shape)
    return out.view(bool) if array.dtype == bool else out
