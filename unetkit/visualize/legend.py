"""Class legends under overlays, so a multiclass picture says which colour is which class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def legend_strip(names: Sequence[str], colors: np.ndarray, width: int, skip_background: bool = True
                 ) -> np.ndarray:
    """A white (h, ``width``, 3) uint8 strip with a colour swatch and the name of each class.

    Entries flow left to right and wrap to new lines; the text size follows the width (12 px for
    600 px wide pictures, at least 10 and at most 24). Class 0 is left out with ``skip_background``
    (overlays leave it clear).
    """
    size = int(np.clip(width // 50, 10, 24))
    font = _font(size)
    pad, gap = size // 2, size
    entries = [(name, tuple(int(v) for v in colors[i])) for i, name in enumerate(names)
               if not (skip_background and i == 0)]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [size + pad + int(probe.textlength(name, font=font)) for name, _ in entries]
    rows, row, used = [], [], pad
    for entry, entry_width in zip(entries, widths, strict=True):
        if row and used + entry_width > width - pad:
            rows.append(row)
            row, used = [], pad
        row.append((entry, entry_width))
        used += entry_width + gap
    if row:
        rows.append(row)
    line = size + pad
    strip = Image.new("RGB", (width, pad + line * max(len(rows), 1)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        x, y = pad, pad + r * line
        for (name, colour), entry_width in row:
            draw.rectangle([x, y, x + size - 1, y + size - 1], fill=colour, outline=(0, 0, 0))
            draw.text((x + size + pad // 2, y + size // 2), name, fill=(0, 0, 0), font=font, anchor="lm")
            x += entry_width + gap
    return np.asarray(strip)


def with_legend(rgb: np.ndarray, names: Sequence[str], colors: np.ndarray, skip_background: bool = True
                ) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with the class legend below it: (H + h, W, 3)."""
    strip = legend_strip(names, colors, rgb.shape[1], skip_background)
    return np.concatenate([rgb, strip], axis=0)
