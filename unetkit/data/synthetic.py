"""Synthetic fluorescence nuclei with exact instance labels, for tests and the demo.

An image is built the way a widefield fluorescence picture forms: non-overlapping, slightly irregular
ellipses (some clustered and touching) carry a per-nucleus stain brightness and chromatin-like texture;
the optical PSF blurs them, uneven illumination and background are added, and the camera adds shot
and read noise. Everything is drawn from the caller's ``numpy.random.Generator``, so a seed fixes the
result bit for bit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetkit.data.io import write_labels, write_png
from unetkit.errors import InputError

MAX_OVERLAP = 0.2  # a new nucleus is dropped when this share of it lies on earlier nuclei
MIN_AREA = 30  # px; smaller remnants (squeezed between neighbours or cut by the border) are dropped
_NAME = "synth_{:04d}"
_NAME_RE = re.compile(r"synth_(\d{4,})$")


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], n_waves: int = 3) -> np.ndarray:
    """Low-frequency field in [-1, 1] of ``shape``: a gradient plus a few slow cosine waves."""
    y = np.linspace(0.0, 1.0, shape[0], dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, shape[1], dtype=np.float32)[None, :]
    gy, gx = rng.uniform(-1, 1, 2)
    field = gy * (y - 0.5) + gx * (x - 0.5)
    total = abs(gy) / 2 + abs(gx) / 2
    for _ in range(n_waves):
        ky, kx = rng.uniform(-1.2, 1.2, 2)  # at most ~1 cycle across the image
        amplitude = rng.uniform(0.3, 1.0)
        field = field + amplitude * np.cos(2 * np.pi * (ky * y + kx * x) + rng.uniform(0, 2 * np.pi))
        total += amplitude
    return (field / total).astype(np.float32)


def claim_free_pixels(box: np.ndarray, inside: np.ndarray, max_overlap: float, min_size: int) -> np.ndarray | None:
    """Pixels of a new object (``inside``, any dimension) not yet taken in ``box``, or None to skip it.

    Skipped when more than ``max_overlap`` of it is taken or fewer than ``min_size`` pixels stay free;
    when neighbours cut the free part in pieces, the biggest piece is kept (objects stay one piece).
    """
    taken = inside & (box > 0)
    if taken.sum() > max_overlap * inside.sum():
        return None
    free = inside & ~taken
    if taken.any():
        parts, n_parts = ndimage.label(free)
        if n_parts > 1:  # a neighbour cut it in pieces: keep the biggest
            free = parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1
    return free if int(free.sum()) >= min_size else None


def _place_nuclei(
    rng: np.random.Generator,
    shape: tuple[int, int],
    density: float,
    radius_range: tuple[float, float],
    cluster_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels ``(H, W)`` uint16 ids 1..N and a radial profile ``(H, W)`` float32.

    The profile is 1 at a nucleus centre and falls to 0.7 at its rim, so touching nuclei keep a faint
    dark seam between them, as real ones do.
    """
    height, width = shape
    r_min, r_max = radius_range
    labels = np.zeros(shape, dtype=np.uint16)
    profile = np.zeros(shape, dtype=np.float32)
    # Typical radius for this image, e.g. range (5, 16) -> 7.2 .. 11.6 px; each nucleus varies around it.
    typical = rng.uniform(r_min + 0.2 * (r_max - r_min), r_min + 0.6 * (r_max - r_min))
    target_area = density * height * width
    n_expected = max(1, round(target_area / (np.pi * typical**2)))
    centres = rng.uniform((0, 0), (height, width), size=(max(1, round(n_expected / 6)), 2))
    covered, next_id = 0, 1
    for _ in range(3 * n_expected):
        if covered >= target_area:
            break
        radius = float(np.clip(typical * rng.lognormal(0.0, 0.22), r_min, r_max))
        ratio = rng.uniform(0.6, 1.0)  # minor / major axis
        a, b = min(radius / np.sqrt(ratio), r_max), radius * np.sqrt(ratio)
        if rng.random() < cluster_fraction:
            cy, cx = centres[rng.integers(len(centres))] + rng.normal(0.0, 1.5 * typical, 2)
        else:
            cy, cx = rng.uniform((0, 0), (height, width))
        angle = rng.uniform(0, np.pi)
        harmonics = rng.uniform(0.0, 0.06, 4)  # boundary wobble of orders 2..5
        phases = rng.uniform(0, 2 * np.pi, 4)

        half = int(np.ceil(a * 1.3)) + 1
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, height)
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, width)
        if y1 - y0 < 2 or x1 - x0 < 2:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / a  # along the major axis, in radii
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / b
        rho = np.sqrt(u**2 + v**2)
        theta = np.arctan2(v, u)
        orders = range(2, 6)
        rim = 1.0 + sum(h * np.cos(k * theta + p) for k, h, p in zip(orders, harmonics, phases, strict=True))
        inside = rho < rim

        box = labels[y0:y1, x0:x1]  # a view: writes go into labels
        free = claim_free_pixels(box, inside, MAX_OVERLAP, MIN_AREA)
        if free is None:
            continue
        area = int(free.sum())
        box[free] = next_id
        profile[y0:y1, x0:x1][free] = 1.0 - 0.3 * np.minimum(rho / rim, 1.0)[free] ** 2
        covered += area
        next_id += 1
    return labels, profile


def make_nuclei_image(
    rng: np.random.Generator,
    shape: tuple[int, int] = (256, 256),
    density: float = 0.22,
    radius_range: tuple[float, float] = (5.0, 16.0),
    cluster_fraction: float = 0.5,
    dim_fraction: float = 0.15,
    blur_sigma: float = 1.2,
    noise: float = 1.0,
    bit_depth: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence image and its instance labels.

    Args:
        rng: source of all randomness (same generator state -> identical output).
        shape: (H, W) in pixels.
        density: share of the image area to cover with nuclei (placement may fall a little short).
        radius_range: smallest and largest nucleus radius in px.
        cluster_fraction: share of nuclei placed around cluster centres (these touch often).
        dim_fraction: share of faint nuclei (30-50% of the typical brightness).
        blur_sigma: std in px of the Gaussian PSF.
        noise: scales shot and read noise (0 = noise-free).
        bit_depth: 8 or 16, the dtype of the returned image.

    Returns:
        image ``(H, W)`` uint8 or uint16, labels ``(H, W)`` uint16 with ids 1..N (0 = background).
    """
    if bit_depth not in (8, 16):
        raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if len(shape) != 2 or min(shape) < 8:
        raise InputError(f"shape must be (H, W) with sides of at least 8 px, got {shape}")
    if not 0 < density < 1:
        raise InputError(f"density is the share of the area covered by nuclei, in (0, 1); got {density}")
    shape = (int(shape[0]), int(shape[1]))
    labels, profile = _place_nuclei(rng, shape, density, radius_range, cluster_fraction)
    n = int(labels.max())

    # Stain brightness per nucleus, index 0 = background: most near 1, a few dim ones.
    brightness = np.clip(rng.lognormal(0.0, 0.2, n + 1), 0.6, 1.6)
    dim = rng.random(n + 1) < dim_fraction
    brightness[dim] = rng.uniform(0.3, 0.5, int(dim.sum()))
    brightness[0] = 0.0
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
    texture /= texture.std() + 1e-6  # unit std chromatin-like texture
    stain = brightness[labels].astype(np.float32) * profile * (1.0 + rng.uniform(0.1, 0.25) * texture)
    optical = ndimage.gaussian_filter(np.maximum(stain, 0.0), blur_sigma) if blur_sigma > 0 else stain

    illumination = 1.0 + rng.uniform(0.1, 0.3) * _smooth_field(rng, shape)  # vignetting, uneven lamp
    background = rng.uniform(0.04, 0.12) * (1.0 + 0.5 * _smooth_field(rng, shape))  # autofluorescence
    signal = illumination * optical + background  # ~1 on a typical nucleus, ~0.1 off nuclei

    if noise > 0:
        photons = rng.uniform(60.0, 150.0) / noise**2  # photons at signal 1: shot-noise SNR ~8-12
        signal = rng.poisson(signal * photons).astype(np.float32) / photons
        signal += rng.normal(0.0, 0.01 * noise, shape).astype(np.float32)  # camera read noise

    # Signal 1 -> 150 of 255 (8 bit) or 6000 of 65535 (16 bit), leaving headroom for bright nuclei.
    scale, offset, top = (150.0, 2.0, 255) if bit_depth == 8 else (6000.0, 100.0, 65535)
    image = np.clip(np.rint(signal * scale + offset), 0, top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    return image, labels


def make_membrane_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A gray EM-like image (H, W) uint8: cells of ~40 px with light textured interiors and dark 2-3 px
    membranes (as ISBI 2012 ssTEM slices look at 4 nm/px), for the test tensor of a membrane model."""
    h, w = shape
    n_cells = max(4, h * w // 1600)  # one cell per 40x40 px
    seeds = np.zeros(shape, np.int32)
    seeds[rng.integers(0, h, n_cells), rng.integers(0, w, n_cells)] = np.arange(1, n_cells + 1)
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    voronoi = seeds[iy, ix]  # (H, W) cell ids: each pixel its nearest seed's
    # read the straight-edged Voronoi cells through a smoothly warped grid, so membranes bend
    grid = np.mgrid[:h, :w].astype(np.float32)
    warp = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), 6) for _ in range(2)])
    cells = ndimage.map_coordinates(voronoi, grid + 60 * warp, order=0, mode="nearest")
    border = np.zeros(shape, bool)
    border[:-1] |= cells[:-1] != cells[1:]
    border[:, :-1] |= cells[:, :-1] != cells[:, 1:]
    membrane = ndimage.binary_dilation(border, iterations=1)
    interior = rng.uniform(0.55, 0.8, n_cells + 1)[cells] + 0.6 * ndimage.gaussian_filter(
        rng.standard_normal(shape), 1.5)
    signal = ndimage.gaussian_filter(np.where(membrane, 0.15, interior), 1.0) + 0.04 * rng.standard_normal(shape)
    return np.clip(signal * 255, 0, 255).astype(np.uint8)


def _write_images(out_dir: Path, shapes: Sequence[tuple[int, int]], entropy: tuple[int, int]) -> list[Path]:
    """Write ``out_dir/images/synth_NNNN.png`` and ``out_dir/masks/synth_NNNN.tif``; image i is drawn
    from seed ``(*entropy, i)`` so it does not depend on the other images."""
    out_dir = Path(out_dir)
    written = []
    for i, shape in enumerate(shapes):
        rng = np.random.default_rng((*entropy, i))
        image, labels = make_nuclei_image(rng, shape=tuple(shape), density=rng.uniform(0.12, 0.3))
        name = _NAME.format(i)
        written.append(write_png(out_dir / "images" / f"{name}.png", image))
        write_labels(out_dir / "masks" / f"{name}.tif", labels)
    # Files of an earlier, larger run (synth_0030.* after writing 24 images) would join this dataset.
    for folder, ext in (("images", ".png"), ("masks", ".tif")):
        for path in (out_dir / folder).glob(f"synth_*{ext}"):
            match = _NAME_RE.match(path.stem)
            if match and int(match.group(1)) >= len(shapes):
                path.unlink()
    return written


def image_shapes(n_images: int, shape: Sequence[int], sizes: Sequence[Sequence[int]] | None) -> list[tuple]:
    """One (H, W) per image: ``sizes`` when given (checked to have ``n_images`` entries), else ``shape``."""
    if n_images < 1:
        raise InputError(f"n_images must be at least 1, got {n_images}")
    if sizes is not None and len(sizes) != n_images:
        raise InputError(f"sizes gives {len(sizes)} shapes for {n_images} images; give one per image")
    return [tuple(s) for s in sizes] if sizes is not None else [tuple(shape)] * n_images


def write_synthetic_dataset(
    out_dir: str | Path,
    n_images: int,
    seed: int = 0,
    shape: tuple[int, int] = (256, 256),
    sizes: Sequence[tuple[int, int]] | None = None,
) -> list[Path]:
    """Write a folders-layout dataset of ``n_images`` and return the image paths.

    Layout: ``out_dir/images/synth_0000.png`` (8-bit) and ``out_dir/masks/synth_0000.tif`` (uint16
    instance ids). ``sizes`` gives one (H, W) per image for mixed sizes; otherwise all are ``shape``.
    The same seed writes byte-identical files.
    """
    return _write_images(Path(out_dir), image_shapes(n_images, shape, sizes), (seed, 0))


def write_synthetic_splits(
    out_dir: str | Path, seed: int = 0, n_train: int = 24, n_val: int = 6, n_test: int = 6
) -> dict[str, Path]:
    """Write ``out_dir/train``, ``val`` and ``test`` datasets with mixed, partly odd image sizes.

    Sides are drawn from 200..400 px and the first image of each split has odd sides (e.g. 301x377)
    so that tiling and padding of odd sizes are exercised. Each split draws from its own seed.
    """
    splits = {}
    for k, (name, count) in enumerate((("train", n_train), ("val", n_val), ("test", n_test)), start=1):
        if count < 1:
            continue
        sizes = np.random.default_rng((seed, k, 1_000_000)).integers(200, 401, size=(count, 2))
        sizes[0] |= 1  # make both sides of the first image odd
        _write_images(Path(out_dir) / name, [(int(h), int(w)) for h, w in sizes], (seed, k))
        splits[name] = Path(out_dir) / name
    return splits


def write_new_synthetic_data(out: str | Path, *, n: int | None = None, size: tuple[int, int] = (256, 256),
                             n_train: int = 24, n_val: int = 6, n_test: int = 6, seed: int = 0) -> dict[str, int]:
    """A new synthetic dataset in the folder ``out`` (absent or empty): ``n`` images of ``size``, or train / val /
    test splits (``write_synthetic_splits``). Returns the image count of each folder written (``dataset``, or the
    split names).

    Never over or mixed into an existing dataset, and complete or absent: it is written as ``.<out>.unfinished``
    beside ``out`` and renamed at the end (an interrupted run leaves nothing under ``out``'s name).
    """
    import shutil

    out = Path(out).resolve()  # "." has no name to put the unfinished one beside
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} already exists and is not an empty folder; its images and masks would be "
                         "overwritten or mixed with new ones: choose a new folder, or remove it first")
    partial = out.with_name(f".{out.name}.unfinished")
    shutil.rmtree(partial, ignore_errors=True)  # an earlier interrupted one's
    try:
        if n is not None:
            counts = {"dataset": len(write_synthetic_dataset(partial, n, seed=seed, shape=tuple(size)))}
        else:
            splits = write_synthetic_splits(partial, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
            counts = {name: len(list((folder / "images").iterdir())) for name, folder in splits.items()}
        if out.is_dir():
            out.rmdir()  # empty, checked above
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return counts
