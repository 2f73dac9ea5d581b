"""The picture of a weight map: colour-mapped, with a colour bar (the middle slice of a volume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.safety.atomic import atomic_path


def save_weight_picture(weights: np.ndarray, path: str | Path, title: str) -> None:
    """Colour-mapped PNG of ``weights`` (2D, or the middle slice of 3D) with a colour bar; no pyplot, so no global
    backend. Written under a temporary name and renamed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if weights.ndim == 3:
        title += f" (slice {weights.shape[0] // 2} of {weights.shape[0]})"
        weights = weights[weights.shape[0] // 2]
    height, width = weights.shape
    scale = 8.0 / max(height, width)  # the longer side 8 inches
    figure = Figure(figsize=(width * scale + 1.5, height * scale + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = axes.imshow(weights, cmap="viridis", interpolation="nearest")
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()
    figure.colorbar(shown, ax=axes, label="weight", fraction=0.046, pad=0.02)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, bbox_inches="tight", format="png")
