"""Build the training augmentation pipeline from ``AugmentConfig``."""

from __future__ import annotations

from unetkit.config import AugmentConfig
from unetkit.errors import InputError
from unetkit.transforms.appearance import RandomColor, RandomInvert
from unetkit.transforms.base import Compose
from unetkit.transforms.elastic import RandomElastic
from unetkit.transforms.intensity import RandomIntensity
from unetkit.transforms.spatial import RandomAffine, RandomFlip, RandomRot90


def build_transforms(config: AugmentConfig, spatial_dims: int) -> Compose:
    """Compose of the enabled augmentations: spatial first (elastic, affine, flips, rot90), then the
    appearance changes (colour, inversion; off by default), intensity last.

    Resampling transforms come first so that each sample is interpolated from the original pixels
    (elastic and affine could be merged into one resampling later; flips and rot90 are exact and
    cheap). Intensity goes last so that mirrored borders get the same gray value changes as the rest.
    Example: the defaults (flips, rot90, intensity) in 2D give
    ``Compose([RandomFlip(2), RandomRot90(2), RandomIntensity()])``.
    """
    if spatial_dims not in (2, 3):
        raise InputError(f"augmentations support spatial_dims 2 or 3, got {spatial_dims}")
    if config.rotation_degrees < 0:
        raise InputError(f"augment.rotation_degrees must be >= 0 (0 = off), got {config.rotation_degrees}")
    if not 0 <= config.shift < 1:
        raise InputError(f"augment.shift must be a patch fraction in [0, 1) (0 = off), got {config.shift}")
    transforms = []
    if config.elastic:
        transforms.append(RandomElastic(spatial_dims, grid=config.elastic_grid, sigma=config.elastic_sigma))
    if not 0 <= config.zoom <= 1:
        raise InputError(f"augment.zoom must be in [0, 1] (0 = off, 1 = up to 2x), got {config.zoom}")
    if config.rotation_degrees > 0 or config.shift > 0 or config.zoom > 0:
        transforms.append(
            RandomAffine(spatial_dims, config.rotation_degrees, config.shift, max_zoom=config.zoom)
        )
    if config.flips:
        transforms.append(RandomFlip(spatial_dims))
    if config.rot90:
        transforms.append(RandomRot90(spatial_dims))
    if config.color > 0:
        transforms.append(RandomColor(config.color))
    if config.invert > 0:
        transforms.append(RandomInvert(config.invert))
    if config.intensity:
        transforms.append(RandomIntensity())
    return Compose(transforms)
