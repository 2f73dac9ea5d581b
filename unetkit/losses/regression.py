"""Pixel-wise regression losses (image-to-image: virtual staining, denoising, restoration).

The network output is linear (no activation) with one channel per target channel, compared with the
normalised target (see ``unetkit.data.image_targets``). Functional core: ``regression_loss`` on
(B, C, *S) tensors; ``RegressionLoss`` is the module the trainer calls like ``SegmentationLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.config import LossConfig
from unetkit.errors import InputError

REGRESSION_LOSSES = ("l1", "mse", "smooth_l1")


def regression_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "l1",
    pixel_weights: torch.Tensor | None = None,
    beta: float = 0.1,
) -> torch.Tensor:
    """Mean per-pixel error between ``pred`` and ``target``, both (B, C, *S).

    ``kind``: ``l1`` |p - t|, ``mse`` (p - t)^2, or ``smooth_l1`` (quadratic below ``beta``, linear
    above; beta 0.1 is a tenth of the normalised target range). ``pixel_weights`` (B, *S) scales every
    channel of a pixel; the mean divides by the pixel count, so weights keep their absolute meaning.
    Example: pred [0, 1], target [0.5, 0.5] -> l1 0.5, mse 0.25, smooth_l1 (0.5 - 0.05) = 0.45.
    """
    if kind not in REGRESSION_LOSSES:
        raise InputError(f"loss.regression must be one of {', '.join(REGRESSION_LOSSES)}; got '{kind}'")
    if pred.shape != target.shape:
        raise InputError(
            f"regression output {tuple(pred.shape)} and target {tuple(target.shape)} differ; set "
            "model.out_channels to the number of target channels"
        )
    pred, target = pred.float(), target.float()
    if kind == "l1":
        per_value = (pred - target).abs()
    elif kind == "mse":
        per_value = (pred - target) ** 2
    else:
        per_value = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    if pixel_weights is None:
        return per_value.mean()
    return (per_value * pixel_weights.float().unsqueeze(1)).mean()


class RegressionLoss(nn.Module):
    """``loss.regression`` (l1 | mse | smooth_l1) between linear outputs and normalised targets."""

    def __init__(self, config: LossConfig):
        super().__init__()
        if config.regression not in REGRESSION_LOSSES:
            raise InputError(
                f"loss.regression must be one of {', '.join(REGRESSION_LOSSES)}; got '{config.regression}'"
            )
        self.kind = config.regression

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
        return regression_loss(pred, target, self.kind, pixel_weights)
