"""The U-Net paper's elastic deformation: a coarse random displacement grid, cubic-spline interpolated.

Paper (Ronneberger et al. 2015, sec. 3.1): "random displacement vectors on a coarse 3 by 3 grid ...
sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel displacements are
then computed using bicubic interpolation." Here the grid points span the patch corners (grid=3 on
572 px puts them at 0, 285.5 and 571) and the dense field is the tensor product of 1D natural cubic
splines through the grid values. Because the spline is linear in those values it is precomputed as one
(n, grid) matrix per axis, so a 572x572 field is two small matrix products (~1 ms) instead of a 2D
spline evaluation per pixel. Resampling then costs one ``map_coordinates`` call per array.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline

from unetkit.errors import InputError
from unetkit.transforms.base import IMAGE_ORDER, Sample, check_probability, interpolation_order, spatial_shape


@lru_cache(maxsize=64)
def _spline_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) float32 matrix W so that ``W @ values`` evaluates, at pixels 0..size-1, the natural
    cubic spline through ``values`` placed at ``linspace(0, size - 1, grid)``.

    Natural (zero curvature at the ends) keeps the field free at the patch border; scipy.ndimage's
    spline modes would mirror the 3 grid values and force a zero slope at the corners instead.
    With grid=2 the natural spline is the straight line between the two values.
    """
    if size == 1:
        return np.full((1, grid), 1.0 / grid, dtype=np.float32)  # a single pixel: the mean displacement
    knots = np.linspace(0.0, size - 1.0, grid)
    spline = CubicSpline(knots, np.eye(grid), bc_type="natural")  # one spline per unit grid vector
    matrix = spline(np.arange(size, dtype=float)).astype(np.float32)
    matrix.setflags(write=False)  # shared through the cache
    return matrix


def elastic_displacement(
    shape: tuple[int, ...], rng: np.random.Generator, grid: int = 3, sigma: float = 10.0
) -> np.ndarray:
    """Smooth random displacement field, (ndim, *shape) float32 in px.

    ``grid`` points per axis (grid**ndim in all, e.g. 3x3 in 2D, 3x3x3 in 3D) each get a displacement
    vector with components ~ N(0, sigma^2); the field interpolates them exactly at the grid points.
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    if ndim not in (1, 2, 3) or min(shape) < 1:
        raise InputError(f"elastic_displacement needs a 1D, 2D or 3D shape of positive sizes, got {shape}")
    if int(grid) != grid or grid < 2:
        raise InputError(f"elastic grid must be an integer >= 2 (paper: 3), got {grid}")
    if sigma < 0:
        raise InputError(f"elastic sigma must be >= 0 px (paper: 10), got {sigma}")
    grid = int(grid)
    coarse = rng.normal(0.0, sigma, size=(ndim,) + (grid,) * ndim).astype(np.float32)  # (ndim, g, .., g)
    matrices = [_spline_matrix(n, grid) for n in shape]
    # Tensor product: field[d, i, j] = sum_ab W0[i, a] W1[j, b] coarse[d, a, b] (and likewise in 3D).
    letters = "ijk"[:ndim]
    coarse_letters = "abc"[:ndim]
    operands = [f"{i}{a}" for i, a in zip(letters, coarse_letters, strict=True)]
    expression = ",".join(operands) + f",z{coarse_letters}->z{letters}"
    field = np.einsum(expression, *matrices, coarse, optimize=True)
    return np.ascontiguousarray(field, dtype=np.float32)


def _check_displacement(array: np.ndarray, displacement: np.ndarray) -> int:
    ndim = displacement.shape[0] if displacement.ndim > 1 else 0
    if ndim != displacement.ndim - 1 or array.ndim < ndim:
        raise InputError(
            f"displacement must have shape (ndim, *S) with S the last ndim axes of the array; got "
            f"displacement {displacement.shape} for array {array.shape}"
        )
    if tuple(array.shape[-ndim:]) != tuple(displacement.shape[1:]):
        raise InputError(
            f"displacement spatial shape {displacement.shape[1:]} does not match the array's last "
            f"{ndim} axes {array.shape[-ndim:]}"
        )
    return ndim


def _resample(array: np.ndarray, coordinates: np.ndarray, order: int, mode: str) -> np.ndarray:
    """Sample every leading-axis slice of ``array`` at ``coordinates`` (ndim, *S); keeps the dtype."""
    ndim = coordinates.shape[0]
    source = array.view(np.uint8) if array.dtype == bool else array  # map_coordinates has no bool
    flat = source.reshape((-1,) + source.shape[-ndim:])
    out = np.empty_like(flat)
    for index in range(flat.shape[0]):
        ndimage.map_coordinates(flat[index], coordinates, output=out[index], order=order, mode=mode)
    out = out.reshape(array.shape)
    return out.view(bool) if array.dtype == bool else out


def _coordinates(displacement: np.ndarray) -> np.ndarray:
    """Sampling positions ``identity + displacement``, (ndim, *S) float32."""
    return np.indices(displacement.shape[1:], dtype=np.float32) + displacement


def apply_displacement(
    array: np.ndarray, displacement: np.ndarray, order: int, mode: str = "reflect"
) -> np.ndarray:
    """Resample ``array`` (channels-first (C, *S) or labels (*S)) at ``identity + displacement``.

    ``order`` is the spline order (0 for labels, keeping them in their label set); outside positions
    are mirrored (``mode="reflect"``). A zero field returns an exact copy. The dtype is kept.
    """
    _check_displacement(array, displacement)
    if not np.any(displacement):
        return array.copy()
    return _resample(array, _coordinates(displacement), order, mode)


class RandomElastic:
    """Paper elastic deformation: ONE random field per sample moves image, target and weights together.

    Each array is resampled with the order its dtype calls for (``base.interpolation_order``): integer
    labels nearest, image ``image_order`` (cubic by default, see ``base.IMAGE_ORDER``), float targets
    and weights linear.
    """

    def __init__(
        self,
        spatial_dims: int,
        grid: int = 3,
        sigma: float = 10.0,
        p: float = 1.0,
        image_order: int = IMAGE_ORDER,
    ):
        if int(grid) != grid or grid < 2:
            raise InputError(f"elastic grid must be an integer >= 2 (paper: 3), got {grid}")
        if sigma < 0:
            raise InputError(f"elastic sigma must be >= 0 px (paper: 10), got {sigma}")
        self.spatial_dims = spatial_dims
        self.grid = int(grid)
        self.sigma = float(sigma)
        self.p = check_probability(p)
        self.image_order = int(image_order)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        shape = spatial_shape(sample, self.spatial_dims)
        if rng.random() >= self.p or self.sigma == 0:
            return dict(sample)
        coordinates = _coordinates(elastic_displacement(shape, rng, self.grid, self.sigma))
        return {
            key: _resample(array, coordinates, interpolation_order(key, array, self.image_order), "reflect")
            for key, array in sample.items()
        }

    def __repr__(self) -> str:
        return (
            f"RandomElastic(spatial_dims={self.spatial_dims}, grid={self.grid}, sigma={self.sigma}, "
            f"p={self.p})"
        )
