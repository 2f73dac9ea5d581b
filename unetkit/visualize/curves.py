"""Training curves from the per-epoch rows of metrics.csv."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(rows: list[dict], path: str | Path, best_epoch: int | None = None) -> Path:
    """Loss (train, and validation when the rows have ``val_loss``), validation scores and learning rate
    per epoch, in one PNG; ``best_epoch`` (the checkpoint kept as best.pt) is marked on each panel."""
    path = Path(path)
    epochs = [row["epoch"] for row in rows]
    score_keys = [k for k in ("val_dice", "val_iou", "val_dsb_score", "val_mean_dice", "val_psnr")
                  if any(_finite(row.get(k)) for row in rows)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [row["train_loss"] for row in rows], marker="o", ms=3, label="train loss")
    if any(_finite(row.get("val_loss")) for row in rows):
        axes[0].plot(epochs, [row.get("val_loss") for row in rows], marker="o", ms=3, label="validation loss")
    axes[0].set_title("loss")
    for key in score_keys:
        axes[1].plot(epochs, [row.get(key) for row in rows], marker="o", ms=3, label=key.removeprefix("val_"))
    axes[1].set_title("validation")
    axes[2].plot(epochs, [row["lr"] for row in rows], color="gray")
    axes[2].set_title("learning rate")
    for ax in axes:
        if best_epoch is not None and best_epoch in epochs:
            ax.axvline(best_epoch, color="tab:green", ls="--", lw=1, label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
