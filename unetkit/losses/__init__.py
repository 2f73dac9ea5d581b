"""Losses: models return logits, activations live here."""

from unetkit.losses.regression import RegressionLoss, regression_loss
from unetkit.losses.segmentation import (
    SegmentationLoss,
    lovasz_softmax_loss,
    soft_dice_loss,
    weighted_cross_entropy,
)

__all__ = [
    "RegressionLoss", "SegmentationLoss", "lovasz_softmax_loss", "regression_loss", "soft_dice_loss",
    "weighted_cross_entropy",
]
