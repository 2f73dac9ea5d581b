"""Instance label overlays: every object in its own colour, neighbours always in different colours.

Colours come from a fixed palette of 12 well-separated hues and are assigned by a seeded greedy
colouring of the objects' neighbourhood graph (objects closer than ``NEIGHBOUR_GAP`` px are
neighbours), so two touching nuclei never share a colour and the same labels give the same picture.
Save the result with :func:`unetkit.visualize.images.save_rgb` (or ``unetkit.data.io.write_png``).
"""

from __future__ import annotations

import colorsys

import numpy as np
from skimage.segmentation import expand_labels

from unetkit.errors import InputError
from unetkit.visualize.images import to_display_rgb

# Objects whose gap is at most this many px count as neighbours and get different colours.
NEIGHBOUR_GAP = 3

# 12 hues 30 degrees apart; odd hues darker, so two nearby hues also differ in brightness.
PALETTE = np.array([colorsys.hsv_to_rgb(i / 12, 0.85, 1.0 if i % 2 == 0 else 0.7) for i in range(12)])
PALETTE = (PALETTE * 255).round().astype(np.uint8)  # (12, 3)


def neighbour_pairs(labels: np.ndarray, gap: int = NEIGHBOUR_GAP, rows: int = 256) -> np.ndarray:
    """Pairs (a, b) with a < b of ids of the 2D ``labels`` (H, W) closer than ``gap`` px, shape (P, 2).

    Each object is grown by ``gap // 2 + 1`` px into the background (``expand_labels``, which stops where
    two objects meet); ids that then share an edge are neighbours. The growing is done in strips of
    ``rows`` rows with a margin of the growth's reach (what a pixel becomes depends only on the pixels within
    that distance), so its distance transform holds a strip, not the image: 33 -> 3 bytes per pixel at 9 MP.
    """
    grow = gap // 2 + 1 if gap > 0 else 0
    margin = grow + 1  # the row after a strip is compared with its last row, and must be grown exactly too
    height = labels.shape[0]
    pairs = []
    for top in range(0, height, rows):
        end = min(top + rows, height)
        low, high = max(0, top - margin), min(height, end + margin)
        block = labels[low:high]
        grown = expand_labels(block, distance=grow) if grow else block
        strip = grown[top - low:end - low + 1]  # the strip's rows and the next one (if any)
        for a, b in ((strip[:-1, :], strip[1:, :]), (strip[:end - top, :-1], strip[:end - top, 1:])):
            differ = (a != b) & (a > 0) & (b > 0)
            pairs.append(np.stack([np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])], 1))
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), labels.dtype)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def instance_colours(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Colour table (max_id + 1, 3) uint8 for 2D ``labels``; row 0 (background) is black.

    Greedy colouring in a seeded random order: each object takes a random palette colour not used by
    an already coloured neighbour (a nucleus rarely has 12 neighbours; if it does it reuses a colour).
    """
    top = int(labels.max()) if labels.size else 0
    table = np.zeros((top + 1, 3), dtype=np.uint8)
    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return table
    rng = np.random.default_rng(seed)
    neighbours: dict[int, list[int]] = {int(i): [] for i in ids}
    for a, b in neighbour_pairs(labels):
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    colour = {}
    for i in rng.permutation(ids):
        used = {colour[n] for n in neighbours[int(i)] if n in colour}
        free = [c for c in range(len(PALETTE)) if c not in used]
        colour[int(i)] = int(rng.choice(free if free else len(PALETTE)))
    for i, c in colour.items():
        table[i] = PALETTE[c]
    return table


def _inner_borders(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another id (the image's edge is no border): skimage's
    ``find_boundaries(labels, mode="inner") & (labels > 0)``, with bool temporaries instead of int64 ones."""
    height, width = labels.shape
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    border = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        border |= padded[dy:dy + height, dx:dx + width] != centre
    return border & (labels > 0)


def instance_overlay(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.45, outlines: bool = True, seed: int = 0
) -> np.ndarray:
    """RGB picture (H, W, 3) uint8 of ``image`` with each object of ``labels`` (H, W) tinted in its colour.

    ``image`` is (H, W) or channels-first (C, H, W), any dtype and range (percentile-stretched for
    display; 1 channel gray, 3 RGB). ``alpha`` is the colour's share inside objects (0 shows the image
    only). ``outlines`` draws each object's inner border in its full colour, which separates touching
    objects even at low ``alpha``.
    """
    labels = np.asarray(labels)
    image = np.asarray(image)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"labels of shape {labels.shape} and dtype {labels.dtype}; expected integer (H, W)")
    if image.shape != labels.shape and not (image.ndim == 3 and image.shape[1:] == labels.shape):
        raise InputError(
            f"image of shape {image.shape} does not fit labels of shape {labels.shape}; expected (H, W) or "
            f"channels-first (C, H, W) with (H, W) = {labels.shape}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must lie in [0, 1], got {alpha}")
    if labels.dtype == bool or labels.dtype.itemsize > 4 or labels.dtype == np.uint32:  # int32 and smaller as they are
        labels = labels.astype(np.int64, copy=False)
    if labels.size and labels.min() < 0:
        raise InputError(f"labels hold negative ids ({labels.min()}); ids must be >= 0")
    rgb = to_display_rgb(image)  # (H, W, 3) uint8; only the objects' pixels are blended in float
    palette = instance_colours(labels, seed).astype(np.float32)  # (ids + 1, 3)
    inside = labels > 0
    blended = (1 - alpha) * rgb[inside].astype(np.float32) + alpha * palette[labels[inside]]
    rgb[inside] = blended.round().clip(0, 255).astype(np.uint8)
    if outlines:
        border = _inner_borders(labels)
        rgb[border] = palette[labels[border]].round().clip(0, 255).astype(np.uint8)
    return rgb
