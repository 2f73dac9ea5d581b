"""Synthetic 3D fluorescence nuclei volumes with exact instance labels, for tests and benchmarks.

A volume forms like a widefield/confocal stack: ellipsoidal nuclei (some clustered and touching) carry
a per-nucleus stain brightness and a chromatin-like texture; an anisotropic PSF blurs them (more along
z), and background plus shot and read noise are added. Stacks are usually sampled more coarsely in z
than in x/y: with ``anisotropy=2`` a voxel is twice as deep as it is wide, so a round nucleus of radius
8 px in x/y spans only 8 / 2 = 4 slices either side of its centre. Everything is drawn from the caller's
``numpy.random.Generator`` (same seed, same volume bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetkit.data.synthetic import claim_free_pixels
from unetkit.data.volumes import VolumeMeta, write_label_volume, write_volume
from unetkit.errors import InputError

MAX_OVERLAP = 0.2  # a new nucleus is dropped when this share of it lies on earlier nuclei
MIN_VOXELS = 40  # smaller remnants (squeezed between neighbours or cut by the border) are dropped


def _place_nuclei(rng: np.random.Generator, shape: tuple[int, int, int], density: float,
                  radius_range: tuple[float, float], anisotropy: float,
                  cluster_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels ``(D, H, W)`` uint16 (ids 1..N) and a radial profile (1 at centres, 0.7 at rims)."""
    depth, height, width = shape
    r_min, r_max = radius_range
    labels = np.zeros(shape, dtype=np.uint16)
    profile = np.zeros(shape, dtype=np.float32)
    typical = rng.uniform(r_min + 0.2 * (r_max - r_min), r_min + 0.6 * (r_max - r_min))
    volume_um = depth * anisotropy * height * width  # in x/y voxel units
    target = density * depth * height * width
    n_expected = max(1, round(density * volume_um / (4 / 3 * np.pi * typical**3)))
    centres = rng.uniform((0, 0, 0), shape, size=(max(1, round(n_expected / 5)), 3))
    covered, next_id = 0, 1
    for _ in range(4 * n_expected):
        if covered >= target:
            break
        radius = float(np.clip(typical * rng.lognormal(0.0, 0.18), r_min, r_max))
        radii = radius * rng.uniform(0.75, 1.2, 3)  # (z, y, x) semi-axes in x/y voxel units
        if rng.random() < cluster_fraction:
            centre = centres[rng.integers(len(centres))] + rng.normal(0.0, 1.5 * typical, 3) * (
                1 / anisotropy, 1, 1)
        else:
            centre = rng.uniform((0, 0, 0), shape)
        angle = rng.uniform(0, np.pi)  # in-plane orientation
        half = [int(np.ceil(radii.max() / a)) + 1 for a in (anisotropy, 1, 1)]
        lo = [max(int(c) - h, 0) for c, h in zip(centre, half, strict=True)]
        hi = [min(int(c) + h + 1, n) for c, h, n in zip(centre, half, shape, strict=True)]
        if any(b - a < 2 for a, b in zip(lo, hi, strict=True)):
            continue
        dz = (np.arange(lo[0], hi[0], dtype=np.float32)[:, None, None] - centre[0]) * anisotropy
        dy = np.arange(lo[1], hi[1], dtype=np.float32)[None, :, None] - centre[1]
        dx = np.arange(lo[2], hi[2], dtype=np.float32)[None, None, :] - centre[2]
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        rho = np.sqrt((dz / radii[0]) ** 2 + (v / radii[1]) ** 2 + (u / radii[2]) ** 2)
        inside = rho < 1.0
        box = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]  # a view: writes go into labels
        free = claim_free_pixels(box, inside, MAX_OVERLAP, MIN_VOXELS)
        if free is None:
            continue
        size = int(free.sum())
        box[free] = next_id
        profile[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][free] = 1.0 - 0.3 * rho[free] ** 2
        covered += size
        next_id += 1
    return labels, profile


def make_nuclei_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (32, 64, 64),
    density: float = 0.25,
    radius_range: tuple[float, float] = (5.0, 9.0),
    anisotropy: float = 2.0,
    cluster_fraction: float = 0.5,
    blur_sigma: float = 1.0,
    noise: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclei volume and its instance labels.

    Args:
        rng: source of all randomness.
        shape: (D, H, W) in voxels.
        density: share of the volume to cover with nuclei (placement may fall a little short).
        radius_range: smallest and largest nucleus radius in x/y pixels.
        anisotropy: z voxel size / x-y voxel size (2: slices twice as far apart as pixels).
        cluster_fraction: share of nuclei placed around cluster centres (these touch often).
        blur_sigma: PSF std in x/y px (along z: ``2 * blur_sigma / anisotropy`` slices).
        noise: scales shot and read noise (0 = noise-free).

    Returns:
        image ``(D, H, W)`` uint16, labels ``(D, H, W)`` uint16 with ids 1..N (0 = background).
    """
    if len(shape) != 3 or min(shape) < 4:
        raise InputError(f"shape must be (D, H, W) with sides of at least 4 voxels, got {shape}")
    if not 0 < density < 1:
        raise InputError(f"density is the share of the volume covered by nuclei, in (0, 1); got {density}")
    if anisotropy <= 0:
        raise InputError(f"anisotropy (z voxel size / x-y voxel size) must be > 0, got {anisotropy}")
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    labels, profile = _place_nuclei(rng, shape, density, radius_range, anisotropy, cluster_fraction)
    n = int(labels.max())
    brightness = np.clip(rng.lognormal(0.0, 0.2, n + 1), 0.5, 1.6)
    brightness[0] = 0.0
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (1.0 / anisotropy, 1.2, 1.2))
    texture /= texture.std() + 1e-6
    stain = brightness[labels].astype(np.float32) * profile * (1.0 + rng.uniform(0.1, 0.2) * texture)
    sigma = (2 * blur_sigma / anisotropy, blur_sigma, blur_sigma)  # the PSF is ~2x longer along z
    optical = ndimage.gaussian_filter(np.maximum(stain, 0.0), sigma) if blur_sigma > 0 else stain
    z_falloff = np.linspace(1.0, rng.uniform(0.7, 1.0), shape[0], dtype=np.float32)[:, None, None]  # depth loss
    haze = ndimage.gaussian_filter(optical, (4.0 / anisotropy, 4.0, 4.0))  # out-of-focus light
    # ~1 on a nucleus; between nuclei 0.1 (crisp confocal) to ~1.2 (hazy widefield, low contrast as real stacks)
    signal = (optical + rng.uniform(0.0, 0.4) * haze) * z_falloff + rng.uniform(0.1, 0.9)
    if noise > 0:
        photons = rng.uniform(50.0, 120.0) / noise**2  # photons at signal 1: shot-noise SNR ~7-11
        signal = rng.poisson(signal * photons).astype(np.float32) / photons
        signal += rng.normal(0.0, 0.01 * noise, shape).astype(np.float32)
    image = np.clip(np.rint(signal * 4000.0 + 100.0), 0, 65535).astype(np.uint16)
    return image, labels


def write_synthetic_volumes(out_dir: str | Path, n_volumes: int, seed: int = 0,
                            shape: tuple[int, int, int] = (32, 64, 64), anisotropy: float = 2.0,
                            shapes: Sequence[tuple[int, int, int]] | None = None) -> list[Path]:
    """Write a 3D folders-layout dataset: ``images/vol_NNNN.tif`` (uint16 ZYX) and ``masks/vol_NNNN.tif``
    (uint16 instance ids), both with the voxel spacing (z = ``anisotropy``, y = x = 1 micron) in their
    metadata. Volume i is drawn from seed ``(seed, i)``; returns the image paths."""
    if n_volumes < 1:
        raise InputError(f"n_volumes must be at least 1, got {n_volumes}")
    if shapes is not None and len(shapes) != n_volumes:
        raise InputError(f"shapes gives {len(shapes)} shapes for {n_volumes} volumes; give one per volume")
    out_dir = Path(out_dir)
    meta = VolumeMeta(spacing=(float(anisotropy), 1.0, 1.0), unit="micron")
    written = []
    for i, volume_shape in enumerate(shapes or [shape] * n_volumes):
        rng = np.random.default_rng((seed, i))
        image, labels = make_nuclei_volume(rng, tuple(volume_shape), density=rng.uniform(0.18, 0.3),
                                           anisotropy=anisotropy)
        written.append(write_volume(out_dir / "images" / f"vol_{i:04d}.tif", image, meta))
        write_label_volume(out_dir / "masks" / f"vol_{i:04d}.tif", labels, meta)
    return written
