"""Paired augmentations of sample dicts {"image", "target", "weights"}: geometry, appearance, gray values."""

from unetkit.transforms.appearance import RandomColor, RandomInvert
from unetkit.transforms.base import Compose, Sample, Transform, interpolation_order, spatial_shape
from unetkit.transforms.build import build_transforms
from unetkit.transforms.elastic import RandomElastic, apply_displacement, elastic_displacement
from unetkit.transforms.intensity import RandomIntensity
from unetkit.transforms.spatial import RandomAffine, RandomFlip, RandomRot90, affine_matrix

__all__ = [
    "Compose",
    "RandomAffine",
    "RandomColor",
    "RandomElastic",
    "RandomFlip",
    "RandomIntensity",
    "RandomInvert",
    "RandomRot90",
    "Sample",
    "Transform",
    "affine_matrix",
    "apply_displacement",
    "build_transforms",
    "elastic_displacement",
    "interpolation_order",
    "spatial_shape",
]
