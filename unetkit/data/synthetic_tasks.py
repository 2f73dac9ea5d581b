"""Synthetic data with exact answers for the multiclass and regression tasks (tests and demos).

- Cells (multiclass): background, cytoplasm, nucleus. Cells are irregular touching blobs (placed like
  the synthetic nuclei of ``unetkit.data.synthetic``, but larger); each holds a nucleus that follows its
  shape, shrunk by a random amount. Cytoplasm is dim and textured, nuclei bright, and cell-to-cell
  brightness varies, so the classes overlap a little in gray value and context matters.
- Virtual stain (regression): the target is a clean nuclear fluorescence signal (a per-nucleus
  brightness on a dome profile, in arbitrary units with an offset), the input a transmitted-light-like
  picture of the same field: nuclei slightly darker with a bright halo, unstained debris, uneven
  illumination, blur and noise. The nuclear brightness is only partly visible in the input.

Everything comes from the caller's seed: the same seed writes byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from unetkit.data.io import write_png, write_tiff
from unetkit.data.masks import default_colors
from unetkit.data.synthetic import image_shapes, make_nuclei_image
from unetkit.errors import InputError

CELL_CLASSES = ("background", "cytoplasm", "nucleus")
MASK_FORMATS = ("index", "palette", "rgb", "class-folders")
_NAME = "cells_{:04d}"
_STAIN_NAME = "stain_{:04d}"


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-std Gaussian-filtered white noise (H, W) float32."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _illumination(rng: np.random.Generator, shape: tuple[int, int], amount: float) -> np.ndarray:
    """1 +- ``amount``: a tilted plane plus a slow wave (uneven lamp, vignetting)."""
    y = np.linspace(-0.5, 0.5, shape[0], dtype=np.float32)[:, None]
    x = np.linspace(-0.5, 0.5, shape[1], dtype=np.float32)[None, :]
    gy, gx = rng.uniform(-1, 1, 2)
    wave = np.cos(2 * np.pi * (rng.uniform(-0.8, 0.8) * y + rng.uniform(-0.8, 0.8) * x) + rng.uniform(0, 6.3))
    field = (gy * y + gx * x) + 0.5 * wave
    return (1.0 + amount * field / (np.abs(field).max() + 1e-6)).astype(np.float32)


def _inner_distance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (H, W) of each object pixel to its object's border (touching objects count as borders),
    and the largest such distance per id (index 0 unused)."""
    border = np.zeros(labels.shape, dtype=bool)
    border[:-1] |= labels[:-1] != labels[1:]
    border[1:] |= labels[1:] != labels[:-1]
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    distance = ndimage.distance_transform_edt((labels > 0) & ~border).astype(np.float32)
    distance[labels > 0] += 1.0  # border pixels 1, one step in 2, ...
    top = np.zeros(int(labels.max()) + 1, dtype=np.float32)
    np.maximum.at(top, labels.ravel(), distance.ravel())
    return distance, top


def make_cells_image(rng: np.random.Generator, shape: tuple[int, int] = (256, 256), density: float = 0.5,
                     noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic cell image (H, W) uint8 and its class map (H, W) uint8: 0 background,
    1 cytoplasm, 2 nucleus (``CELL_CLASSES``)."""
    if len(shape) != 2 or min(shape) < 16:
        raise InputError(f"shape must be (H, W) with sides of at least 16 px, got {shape}")
    shape = (int(shape[0]), int(shape[1]))
    _, cells = make_nuclei_image(rng, shape, density=density, radius_range=(12.0, 26.0), cluster_fraction=0.6,
                                 noise=0.0)
    cells = cells.astype(np.int32)
    n = int(cells.max())
    distance, top = _inner_distance(cells)
    # A nucleus keeps the pixels deeper than a share of the cell's depth, e.g. depth 14 px, share 0.5:
    # the inner region deeper than 7 px; a smooth wobble makes its outline irregular.
    share = rng.uniform(0.35, 0.6, n + 1).astype(np.float32)
    depth = distance * (1.0 + 0.15 * _smooth_noise(rng, shape, 4.0))
    nucleus = (cells > 0) & (depth > share[cells] * top[cells])
    classes = np.where(nucleus, 2, np.where(cells > 0, 1, 0)).astype(np.uint8)

    cyto_level = rng.uniform(0.2, 0.42, n + 1).astype(np.float32)
    nucleus_level = rng.uniform(0.55, 1.0, n + 1).astype(np.float32)
    texture = 1.0 + 0.18 * _smooth_noise(rng, shape, 1.2)
    signal = np.where(nucleus, nucleus_level[cells], np.where(cells > 0, cyto_level[cells], 0.0)) * texture
    signal = ndimage.gaussian_filter(signal.astype(np.float32), 1.2)
    signal = _illumination(rng, shape, 0.2) * signal + rng.uniform(0.04, 0.1)
    if noise > 0:
        photons = rng.uniform(80.0, 160.0) / noise**2
        signal = rng.poisson(np.maximum(signal, 0) * photons).astype(np.float32) / photons
    image = np.clip(np.rint(signal * 180 + 3), 0, 255).astype(np.uint8)
    return image, classes


def _write_mask(out_dir: Path, name: str, classes: np.ndarray, mask_format: str) -> None:
    colours = default_colors(len(CELL_CLASSES))
    if mask_format == "index":
        write_png(out_dir / "masks" / f"{name}.png", classes)
    elif mask_format == "palette":
        image = Image.fromarray(classes, mode="P")
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: len(colours)] = colours
        image.putpalette(palette.ravel().tolist())
        (out_dir / "masks").mkdir(parents=True, exist_ok=True)
        image.save(out_dir / "masks" / f"{name}.png")
    elif mask_format == "rgb":
        write_png(out_dir / "masks" / f"{name}.png", colours[classes])
    else:  # class-folders: one 0/255 mask per class
        for class_id, class_name in enumerate(CELL_CLASSES[1:], start=1):
            write_png(out_dir / class_name / f"{name}.png", (classes == class_id).astype(np.uint8) * 255)


def write_multiclass_dataset(out_dir: str | Path, n_images: int, seed: int = 0,
                             sizes: Sequence[tuple[int, int]] | None = None, mask_format: str = "index",
                             shape: tuple[int, int] = (256, 256)) -> list[Path]:
    """Write ``n_images`` synthetic cell images with masks; returns the image paths.

    ``mask_format``: ``index`` (masks/ class ids 0..2 as PNG), ``palette`` (masks/ palette PNG),
    ``rgb`` (masks/ colour-coded with ``default_colors(3)``: set ``data.class_colors`` to them) or
    ``class-folders`` (cytoplasm/ and nucleus/ 0/255 PNGs next to images/).
    """
    if mask_format not in MASK_FORMATS:
        raise InputError(f"mask_format must be one of {', '.join(MASK_FORMATS)}, got '{mask_format}'")
    shapes = image_shapes(n_images, shape, sizes)
    out_dir = Path(out_dir)
    written = []
    for i, size in enumerate(shapes):
        image, classes = make_cells_image(np.random.default_rng((seed, 7, i)), tuple(size))
        name = _NAME.format(i)
        written.append(write_png(out_dir / "images" / f"{name}.png", image))
        _write_mask(out_dir, name, classes, mask_format)
    return written


def _split_sizes(seed: int, split: int, count: int, low: int, high: int) -> list[tuple[int, int]]:
    sizes = np.random.default_rng((seed, split, 2_000_000)).integers(low, high + 1, size=(count, 2))
    sizes[0] |= 1  # odd sides in the first image of each split exercise tiling and padding
    return [(int(h), int(w)) for h, w in sizes]


def write_multiclass_splits(out_dir: str | Path, seed: int = 0, n_train: int = 16, n_val: int = 4,
                            n_test: int = 4, mask_format: str = "index") -> dict[str, Path]:
    """``out_dir/train``, ``val`` and ``test`` cell datasets (sides 192..320 px)."""
    splits = {}
    for k, (name, count) in enumerate((("train", n_train), ("val", n_val), ("test", n_test)), start=1):
        if count > 0:
            write_multiclass_dataset(Path(out_dir) / name, count, seed * 1000 + k,
                                     _split_sizes(seed, k, count, 192, 320), mask_format)
            splits[name] = Path(out_dir) / name
    return splits


# --------------------------------------------------------------------------------------------------
# virtual staining


def make_virtual_stain_pair(rng: np.random.Generator, shape: tuple[int, int] = (256, 256)
                            ) -> tuple[np.ndarray, np.ndarray]:
    """(transmitted-light-like input (H, W) uint16, nuclear stain target (H, W) float32).

    Target units: background 100, nuclei 100 + 400..1000 (dome profile), as a camera might record.
    """
    shape = (int(shape[0]), int(shape[1]))
    _, nuclei = make_nuclei_image(rng, shape, density=float(rng.uniform(0.12, 0.28)), noise=0.0)
    nuclei = nuclei.astype(np.int32)
    n = int(nuclei.max())
    distance, top = _inner_distance(nuclei)
    brightness = rng.uniform(0.4, 1.0, n + 1).astype(np.float32)
    brightness[0] = 0
    dome = np.where(nuclei > 0, 0.7 + 0.3 * np.sqrt(distance / np.maximum(top[nuclei], 1.0)), 0.0)
    stain = ndimage.gaussian_filter((brightness[nuclei] * dome).astype(np.float32), 1.0)
    target = (100.0 + 1000.0 * stain).astype(np.float32)

    # The input sees a nucleus as a little darker (absorption partly tracks the stain) with a bright
    # phase halo just outside; debris is dark too but unstained.
    inside = (nuclei > 0).astype(np.float32)
    absorption = (0.5 * brightness + 0.5 * rng.uniform(0.3, 1.0, n + 1)).astype(np.float32)[nuclei] * inside
    debris = np.zeros(shape, dtype=np.float32)
    for _ in range(max(1, n // 3)):
        cy, cx = rng.uniform((0, 0), shape)
        radius = rng.uniform(2.0, 5.0)
        y, x = np.ogrid[: shape[0], : shape[1]]
        debris[(y - cy) ** 2 + (x - cx) ** 2 < radius**2] = rng.uniform(0.5, 1.0)
    halo = ndimage.gaussian_filter(inside, 3.0) - ndimage.gaussian_filter(inside, 1.0)
    light = (0.7 - 0.12 * ndimage.gaussian_filter(absorption, 1.0) + 0.25 * halo
             - 0.12 * ndimage.gaussian_filter(debris, 1.0) + 0.02 * _smooth_noise(rng, shape, 4.0))
    light = ndimage.gaussian_filter(_illumination(rng, shape, 0.25) * light, 0.8)
    light = light + rng.normal(0.0, 0.02, shape).astype(np.float32)
    image = np.clip(np.rint(light * 30000), 0, 65535).astype(np.uint16)
    return image, target


def write_regression_dataset(out_dir: str | Path, n_images: int, seed: int = 0,
                             sizes: Sequence[tuple[int, int]] | None = None,
                             shape: tuple[int, int] = (256, 256)) -> list[Path]:
    """Write ``images/stain_NNNN.png`` (16-bit input) and ``targets/stain_NNNN.tif`` (float32 target)."""
    shapes = image_shapes(n_images, shape, sizes)
    out_dir = Path(out_dir)
    written = []
    for i, size in enumerate(shapes):
        image, target = make_virtual_stain_pair(np.random.default_rng((seed, 11, i)), tuple(size))
        name = _STAIN_NAME.format(i)
        written.append(write_png(out_dir / "images" / f"{name}.png", image))
        write_tiff(out_dir / "targets" / f"{name}.tif", target)
    return written


def write_regression_splits(out_dir: str | Path, seed: int = 0, n_train: int = 16, n_val: int = 4,
                            n_test: int = 4) -> dict[str, Path]:
    """``out_dir/train``, ``val`` and ``test`` virtual-stain datasets (sides 192..320 px)."""
    splits = {}
    for k, (name, count) in enumerate((("train", n_train), ("val", n_val), ("test", n_test)), start=1):
        if count > 0:
            write_regression_dataset(Path(out_dir) / name, count, seed * 1000 + k,
                                     _split_sizes(seed, k, count, 192, 320))
            splits[name] = Path(out_dir) / name
    return splits
