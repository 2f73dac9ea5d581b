"""Losses: models return logits, activations live here."""

from unetkit.losses.regression import RegressionLoss, regression_loss
from unetkit.losses.segmentation import SegmentationLoss, soft_dice_loss, weighted_cross_entropy

__all__ = [
    "RegressionLoss", "SegmentationLoss", "regression_loss", "soft_dice_loss", "weighted_cross_entropy",
]
