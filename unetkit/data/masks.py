"""Multiclass masks: class tables, the mask formats people store, and class statistics.

A multiclass target is an integer class map (*S): 0 = background, 1..K-1 the classes, and
``ignore_label`` (default 255) for pixels left out of loss and metrics. Supported files:

- index images (PNG/TIFF, 8 or 16 bit): the class id per pixel, read as stored;
- palette PNGs: the palette index is the class id (read as stored, colours are only for display);
- RGB colour-coded masks: each class has a colour in the class table (``data.class_colors``, background
  first); pixels of ``data.ignore_color`` get the ignore label, any other colour is an error;
- one binary mask per class (``unetkit.data.class_folders``), merged here by a priority order.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit.config import DataConfig
from unetkit.errors import InputError

# A qualitative palette for classes 1.. (class 0, background, stays clear in overlays); more classes get
# evenly spread hues.
_PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
)


def default_class_names(num_classes: int) -> list[str]:
    """["background", "class1", ..., "class{K-1}"]: the names used when a config names no classes."""
    return ["background"] + [f"class{c}" for c in range(1, num_classes)]


def default_colors(num_classes: int) -> np.ndarray:
    """(K, 3) uint8 display colours: black background, then a qualitative palette, then spread hues."""
    colours = [(0, 0, 0)]
    for index in range(1, num_classes):
        if index <= len(_PALETTE):
            colours.append(_PALETTE[index - 1])
        else:  # golden-ratio hue steps keep neighbouring ids apart
            r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.75, 0.95)
            colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.asarray(colours, dtype=np.uint8)


@dataclass(frozen=True)
class ClassTable:
    """Class names (background first), optional mask colours per class and the ignore value/colour."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...] = ()  # colours of colour-coded masks; empty = index masks
    ignore_label: int = 255
    ignore_color: tuple[int, int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def display_colors(self) -> np.ndarray:
        """(K, 3) uint8 colours for overlays and legends: the mask colours when given, else defaults."""
        if self.colors:
            return np.asarray(self.colors, dtype=np.uint8)
        return default_colors(self.num_classes)

    @classmethod
    def from_config(cls, data: DataConfig, num_classes: int | None = None) -> ClassTable:
        """The table of a config's ``class_names`` / ``class_colors`` / ``ignore_*`` entries.

        ``num_classes`` fills in default names when the config names none.
        """
        colors = tuple(_rgb(c, f"data.class_colors[{i}]") for i, c in enumerate(data.class_colors))
        names = list(data.class_names)
        if not names:
            count = num_classes or len(colors)
            if not count:
                raise InputError(
                    "the number of classes is unknown: set data.class_names (background first), "
                    "data.class_colors, or model.out_channels"
                )
            names = default_class_names(count)
        if colors and len(colors) != len(names):
            raise InputError(
                f"data.class_colors has {len(colors)} colours but there are {len(names)} classes "
                f"({', '.join(names)}); give one [R, G, B] per class, background first"
            )
        if len(set(names)) != len(names):
            raise InputError(f"data.class_names has repeated names: {', '.join(names)}; names must be unique")
        if len(names) < 2:
            raise InputError(f"multiclass needs at least 2 classes (background first), got {names}")
        if 0 <= data.ignore_label < len(names):
            raise InputError(
                f"data.ignore_label {data.ignore_label} is also a class id (0..{len(names) - 1}); choose an "
                "ignore label outside the classes, e.g. 255"
            )
        ignore_color = _rgb(data.ignore_color, "data.ignore_color") if data.ignore_color else None
        return cls(tuple(names), colors, int(data.ignore_label), ignore_color)


def _rgb(value: Sequence[int], what: str) -> tuple[int, int, int]:
    if len(value) != 3 or any(not isinstance(v, int) or not 0 <= v <= 255 for v in value):
        raise InputError(f"{what} must be an [R, G, B] list of integers 0..255, got {list(value)}")
    return int(value[0]), int(value[1]), int(value[2])


def class_dtype(num_classes: int, ignore_label: int) -> type:
    """uint8 when class ids and the ignore label fit in a byte (K <= 255, ignore 255), else int32."""
    return np.uint8 if max(num_classes - 1, ignore_label) <= 255 else np.int32


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """A per-class mask as bool: non-zero, or for a drawn mask the values above half its maximum.

    A mask is drawn (0/255 with anti-aliased edges) when its maximum is 128 or more and most of its values between
    0 and the maximum have a higher neighbour (the slope of a blurred edge); otherwise its non-zero values are all
    the class: 0/1 masks, and masks of instance ids 1..N, whose pixels neighbour their own id or 0 (where two
    objects touch, one side only). An all-zero mask is all off. Examples: values [0, 10, 127, 128, 255, 255, 255]
    in a row -> [F, F, F, T, T, T, T]; ids [0, 1, 2, 3, 77] -> [F, T, T, T, T].
    """
    mask = np.asarray(mask)
    top = mask.max() if mask.size else 0
    if top <= 0:
        return np.zeros(mask.shape, dtype=bool)
    on = mask > 0
    between = on & (mask < top)
    if top < 128 or not between.any():
        return on
    from scipy import ndimage as ndi

    rising = ndi.maximum_filter(mask, size=3, mode="nearest") > mask  # a higher value beside it
    drawn = np.count_nonzero(between & rising) * 2 >= np.count_nonzero(between)
    return mask.astype(np.float64) * 2 > float(top) if drawn else on


def merge_class_masks(masks: Sequence[np.ndarray], priority: Sequence[int]) -> np.ndarray:
    """One binary mask per foreground class (class c at ``masks[c - 1]``) -> class map (*S) int32.

    ``priority`` lists class ids highest first; where masks overlap, the higher class wins. Pixels in
    no mask are background (0). Example: masks for classes 1 and 2 overlapping at one pixel, priority
    [2, 1] -> that pixel is 2.
    """
    if not masks:
        raise InputError("no class masks to merge")
    shape = np.shape(masks[0])
    if sorted(priority) != list(range(1, len(masks) + 1)):
        raise InputError(f"priority {list(priority)} must order the class ids 1..{len(masks)} once each")
    labels = np.zeros(shape, dtype=np.int32)
    for class_id in reversed(list(priority)):  # paint lowest priority first, highest last
        labels[binary_mask(masks[class_id - 1])] = class_id
    return labels


def priority_order(class_names: Sequence[str], class_priority: Sequence[str]) -> list[int]:
    """Class ids (1..K-1) highest priority first: the names in ``class_priority``, then the rest in
    class order. Example: names [bg, a, b, c], priority [c] -> [3, 1, 2]."""
    foreground = list(class_names[1:])
    unknown = [name for name in class_priority if name not in foreground]
    if unknown:
        raise InputError(
            f"data.class_priority names {', '.join(unknown)}, which are not classes; the classes are "
            f"{', '.join(foreground)}"
        )
    first = [foreground.index(name) + 1 for name in dict.fromkeys(class_priority)]
    return first + [c for c in range(1, len(foreground) + 1) if c not in first]


def colors_to_classes(rgb: np.ndarray, table: ClassTable, path: str | Path = "mask") -> np.ndarray:
    """Colour-coded mask (3, H, W) -> class map (H, W) int32 by the table's colours.

    Pixels of ``table.ignore_color`` get ``table.ignore_label``; other unknown colours raise an
    InputError listing them with their pixel counts.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise InputError(f"{path}: expected an RGB mask (3, H, W), got shape {rgb.shape}")
    # One integer per colour: R * 65536 + G * 256 + B, e.g. (255, 0, 0) -> 16711680.
    keys = (rgb[0].astype(np.int64) << 16) | (rgb[1].astype(np.int64) << 8) | rgb[2].astype(np.int64)
    lookup = {(r << 16) | (g << 8) | b: c for c, (r, g, b) in enumerate(table.colors)}
    if table.ignore_color is not None:
        r, g, b = table.ignore_color
        lookup.setdefault((r << 16) | (g << 8) | b, table.ignore_label)
    values, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    unknown = [(int(v), int(n)) for v, n in zip(values, counts, strict=True) if int(v) not in lookup]
    if unknown:
        unknown.sort(key=lambda item: -item[1])
        shown = ", ".join(f"({v >> 16}, {(v >> 8) & 255}, {v & 255}) x{n}" for v, n in unknown[:5])
        raise InputError(
            f"{path}: {len(unknown)} colour(s) not in the class table: {shown}. Add them to "
            "data.class_colors (one [R, G, B] per class, background first) or set data.ignore_color"
        )
    mapped = np.asarray([lookup[int(v)] for v in values], dtype=np.int32)
    return mapped[inverse].reshape(keys.shape)


def read_class_mask(path: str | Path, table: ClassTable) -> np.ndarray:
    """A multiclass mask file -> class map (H, W) int32, checked against the table.

    With colours in the table, colour files (RGB, or palette PNGs shown as colours) are mapped by colour;
    gray files are index images in every case (palette PNGs without a colour table give their indices).
    """
    from unetkit.data.io import check_lossless, read_image, read_labels

    path = Path(path)
    if table.colors:
        check_lossless(path)  # a lossy mask's colours are no class table's (read_labels checks the others)
        image = read_image(path)  # (C, H, W); palette PNGs come as RGB
        if image.shape[0] == 3:
            if image.dtype != np.uint8:
                raise InputError(f"{path}: colour-coded masks must be 8-bit RGB, got {image.dtype}")
            return check_class_ids(colors_to_classes(image, table, path), table, path)
    return check_class_ids(read_labels(path), table, path)


def check_class_ids(labels: np.ndarray, table: ClassTable, path: str | Path = "mask") -> np.ndarray:
    """Return ``labels`` after checking every value is a class id (0..K-1) or the ignore label."""
    labels = np.asarray(labels)
    bad = (labels >= table.num_classes) & (labels != table.ignore_label)
    if bad.any():
        found = np.unique(labels[bad])[:10].tolist()
        raise InputError(
            f"{path}: class ids {found} outside 0..{table.num_classes - 1} (classes: "
            f"{', '.join(table.names)}); set data.class_names to all classes, background first, or mark "
            f"unlabelled pixels with the ignore label {table.ignore_label}"
        )
    return labels


def class_pixel_counts(targets: Sequence[np.ndarray], num_classes: int,
                       ignore_label: int = 255) -> np.ndarray:
    """Pixels per class (K,) int64 over all class maps, ignore-label pixels left out."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for target in targets:
        values = np.asarray(target).ravel()
        values = values[values != ignore_label].astype(np.int64)
        counts += np.bincount(values, minlength=num_classes)[:num_classes]
    return counts


def frequency_class_weights(counts: Sequence[int], cap: float = 10.0) -> list[float]:
    """Median frequency balancing: w_c = median(f) / f_c over the classes present, capped at ``cap``.

    f_c is the share of class c among counted pixels. A rare class gets a larger weight, but at most
    ``cap`` so one tiny class does not dominate the loss; absent classes get 1.
    Example: counts [600, 300, 100] -> f [0.6, 0.3, 0.1], median 0.3 -> weights [0.5, 1.0, 3.0].
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        raise InputError("no labelled pixels in the training masks: cannot derive class weights")
    freq = counts / counts.sum()
    median = float(np.median(freq[present]))
    weights = np.ones(len(counts), dtype=np.float64)
    weights[present] = np.minimum(median / freq[present], cap)
    return [round(float(w), 4) for w in weights]
