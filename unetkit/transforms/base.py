"""The transform interface: a sample dict in, a new sample dict out, randomness from a Generator.

A sample is ``dict[str, np.ndarray]``:

- ``"image"``: (C, *S) float32, required;
- ``"target"``: optional, integer labels (*S) or a float regression target (C', *S);
- ``"weights"``: optional, (*S) float32 per-pixel loss weights (e.g. the paper's weight map).

S is the spatial shape, the last ``spatial_dims`` axes of every array, so geometric transforms act on
the same axes of every entry and keep image, target and weights aligned. A transform is any callable
``(sample, rng) -> sample`` that returns a new dict and never writes into the input arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from unetkit.errors import InputError

Sample = dict[str, np.ndarray]
Transform = Callable[[Sample, np.random.Generator], Sample]

# Interpolation orders when a transform resamples (elastic, affine). Labels always use 0 (nearest
# neighbour) so they stay within their label set. Float targets and weight maps are smooth, so linear
# is enough there and never overshoots (weights stay positive). The image, measured on one core
# (benchmarks/augment_speed.py; image + int labels + float weights per sample):
#   2D 572x572 elastic: 56 ms with a cubic image, 35 ms with a linear one (the image alone 30 vs 11 ms);
#   3D 64^3 elastic:   104 ms with a cubic image, 44 ms with a linear one (64 vs 8 taps per voxel).
# Cubic is affordable (a CPU step of the paper net takes seconds; on a GPU a few loader workers keep
# up) and avoids linear interpolation's random, position-dependent blur (at a half-pixel offset it
# averages 4 pixels and halves the noise std; small 3D objects lose contrast). Where loading is the
# bottleneck, pass image_order=1 to RandomElastic / RandomAffine.
IMAGE_ORDER = 3
FLOAT_ORDER = 1


def interpolation_order(key: str, array: np.ndarray, image_order: int = IMAGE_ORDER) -> int:
    """Spline order used to resample ``array`` stored under ``key``: integers 0, image cubic, rest linear."""
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return 0
    if key == "image":
        return image_order
    return FLOAT_ORDER


def spatial_shape(sample: Sample, spatial_dims: int) -> tuple[int, ...]:
    """The spatial shape S shared by every array of ``sample``; raises InputError when they disagree.

    Example: image (1, 572, 572), target (572, 572), weights (572, 572), spatial_dims=2 -> (572, 572).
    """
    if spatial_dims not in (1, 2, 3):
        raise InputError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    if "image" not in sample:
        raise InputError(f"a sample needs an 'image' array (C, *S); got keys {sorted(sample)}")
    image = sample["image"]
    if image.ndim != spatial_dims + 1:
        raise InputError(
            f"image must be channels-first with {spatial_dims} spatial axes, i.e. {spatial_dims + 1} axes "
            f"(C, *S), got shape {image.shape}; add a channel axis with image[None] for gray images"
        )
    shape = tuple(image.shape[1:])
    for key, array in sample.items():
        if array.ndim < spatial_dims or tuple(array.shape[-spatial_dims:]) != shape:
            raise InputError(
                f"sample['{key}'] has shape {array.shape} but its last {spatial_dims} axes must match "
                f"the image's spatial shape {shape}"
            )
    return shape


def check_probability(p: float, name: str = "p") -> float:
    """Return ``p`` as float after checking 0 <= p <= 1."""
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name} must be a probability in [0, 1], got {p}")
    return float(p)


class Compose:
    """Apply transforms in order, passing the same Generator to each.

    Example: ``Compose([RandomFlip(2), RandomIntensity()])(sample, np.random.default_rng(0))``.
    """

    def __init__(self, transforms: Iterable[Transform]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return dict(sample)

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"
