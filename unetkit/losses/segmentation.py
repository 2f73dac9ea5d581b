"""Segmentation losses: pixel-weighted softmax cross-entropy (paper, eq. 1) and soft Dice.

Functional cores take logits (B, K, *S) and integer targets (B, *S); the ``SegmentationLoss`` module
combines them with the weights of a ``LossConfig``. Pixels equal to ``ignore_index`` (and pixels whose
weight is 0) do not count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.config import LossConfig


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    pixel_weights: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Mean over counted pixels of w(x) * -log softmax(logits)[target(x)].

    ``pixel_weights`` (B, *S) is the paper's weight map w(x); ``class_weights`` (K,) scales each class.
    The mean divides by the number of counted pixels, so w(x) keeps its absolute meaning
    (a border pixel with w = 11 counts 11 times a plain one).
    """
    valid = target != ignore_index
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    per_pixel = F.cross_entropy(logits.float(), safe_target, weight=None, reduction="none")
    weights = valid.float()
    if class_weights is not None:
        weights = weights * class_weights.to(logits.device)[safe_target]
    if pixel_weights is not None:
        weights = weights * pixel_weights.float()
    return (per_pixel * weights).sum() / valid.sum().clamp(min=1)


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, eps: float = 1.0
) -> torch.Tensor:
    """1 - mean over foreground classes of the soft Dice between softmax(logits) and one-hot target.

    Counts are pooled over the batch (a patch without foreground does not make the loss explode);
    ``eps`` smooths empty classes.
    """
    num_classes = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1)
    valid = (target != ignore_index).unsqueeze(1).float()
    safe_target = torch.where(target != ignore_index, target, torch.zeros_like(target))
    one_hot = F.one_hot(safe_target, num_classes).movedim(-1, 1).float()
    dims = [0, *range(2, logits.ndim)]
    intersection = (probs * one_hot * valid).sum(dims)
    denominator = ((probs + one_hot) * valid).sum(dims)
    dice = (2 * intersection + eps) / (denominator + eps)
    return 1 - dice[1:].mean() if num_classes > 1 else 1 - dice.mean()


class SegmentationLoss(nn.Module):
    """ce_weight * weighted CE + dice_weight * soft Dice, as configured in ``LossConfig``."""

    def __init__(self, config: LossConfig, ignore_index: int = 255):
        super().__init__()
        self.config = config
        self.ignore_index = ignore_index
        weights = torch.tensor(config.class_weights, dtype=torch.float32) if config.class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.config.ce_weight:
            loss = loss + self.config.ce_weight * weighted_cross_entropy(
                logits, target, pixel_weights, self.class_weights, self.ignore_index)
        if self.config.dice_weight:
            loss = loss + self.config.dice_weight * soft_dice_loss(logits, target, self.ignore_index)
        return loss
