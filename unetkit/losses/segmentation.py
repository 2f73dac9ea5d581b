"""Segmentation losses: pixel-weighted softmax cross-entropy (paper, eq. 1), soft Dice and Lovasz-softmax.

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


def jaccard_gradient(truth_sorted: torch.Tensor) -> torch.Tensor:
    """Weights of the Lovasz extension of the Jaccard loss for pixels sorted by decreasing error.

    ``truth_sorted`` (..., N) is 1 where a pixel is of the class. Entry i is how much the Jaccard loss
    1 - |A n B| / |A u B| grows when the i-th worst pixel joins the i - 1 before it as an error
    (Berman et al. 2018, eq. 8): [1, 1] -> [0.5, 0.5]; [1, 0] -> [1, 0] (once the only pixel of the
    class is missed, a false positive adds nothing). A row without the class gives zeros.
    """
    positives = truth_sorted.sum(-1, keepdim=True)
    intersection = positives - truth_sorted.cumsum(-1)
    union = (positives + (1 - truth_sorted).cumsum(-1)).clamp(min=1)
    jaccard = 1 - intersection / union
    steps = torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)
    return steps * (positives > 0)


def lovasz_softmax_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean over images and their present foreground classes of the Lovasz-softmax Jaccard loss.

    A convex surrogate of 1 - IoU per image and class (Berman, Rannen Triki and Blaschko 2018): where
    softmax probabilities are 0 or 1 it equals 1 - IoU exactly. Per image, because the DSB score and
    its kin score objects image by image; a class absent from an image's truth is left to the other
    terms (its IoU is 0 for any false positive). Logits (B, K, *S), targets (B, *S).
    """
    num_classes = logits.shape[1]
    first = 1 if num_classes > 1 else 0  # foreground classes only, as the Dice term
    probs = torch.softmax(logits.float(), dim=1).flatten(2)[:, first:]  # (B, K', N)
    target = target.flatten(1).unsqueeze(1)  # (B, 1, N)
    valid = target != ignore_index
    classes = torch.arange(first, num_classes, device=logits.device).view(1, -1, 1)
    truth = ((target == classes) & valid).float()  # (B, K', N)
    # an ignored pixel gets error 0 and no class: it sorts among the last and adds nothing
    errors = (truth - probs).abs() * valid
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    per_row = (errors_sorted * jaccard_gradient(truth.gather(-1, order))).sum(-1)  # (B, K')
    present = truth.amax(-1) > 0
    return per_row[present].mean() if present.any() else logits.float().sum() * 0.0


class SegmentationLoss(nn.Module):
    """ce_weight * weighted CE + dice_weight * soft Dice + lovasz_weight * Lovasz-softmax (``LossConfig``)."""

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
        if self.config.lovasz_weight:
            loss = loss + self.config.lovasz_weight * lovasz_softmax_loss(logits, target, self.ignore_index)
        return loss
