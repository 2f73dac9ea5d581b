"""Losses: models return logits, activations live here."""

from unetkit.losses.segmentation import SegmentationLoss, soft_dice_loss, weighted_cross_entropy

__all__ = ["SegmentationLoss", "soft_dice_loss", "weighted_cross_entropy"]
