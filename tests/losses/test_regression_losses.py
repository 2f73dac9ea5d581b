"""Regression losses against hand-computed values."""

import pytest
import torch

from unetkit.config import LossConfig
from unetkit.errors import InputError
from unetkit.losses import RegressionLoss, regression_loss


def test_losses_match_hand_computed_values():
    pred = torch.tensor([0.0, 1.0, 0.5]).reshape(1, 1, 1, 3)
    target = torch.tensor([0.5, 0.5, 0.5]).reshape(1, 1, 1, 3)
    # errors 0.5, 0.5, 0
    assert regression_loss(pred, target, "l1").item() == pytest.approx(1.0 / 3)
    assert regression_loss(pred, target, "mse").item() == pytest.approx(0.5 / 3)
    # smooth L1, beta 0.1: |e| >= beta -> |e| - beta / 2 = 0.45 for both errors
    assert regression_loss(pred, target, "smooth_l1").item() == pytest.approx(0.9 / 3)


def test_pixel_weights_scale_every_channel_of_a_pixel():
    pred = torch.zeros(1, 2, 1, 2)
    target = torch.ones(1, 2, 1, 2)
    weights = torch.tensor([[[0.0, 2.0]]])  # (B, H, W)
    # per value |e| = 1; weights 0 and 2 on both channels -> (0 + 2 + 0 + 2) / 4
    assert regression_loss(pred, target, "l1", weights).item() == pytest.approx(1.0)


def test_module_uses_the_config_and_refuses_bad_input():
    loss = RegressionLoss(LossConfig(regression="mse"))
    assert loss(torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 3.0)).item() == pytest.approx(9.0)
    with pytest.raises(InputError, match="l1, mse, smooth_l1"):
        RegressionLoss(LossConfig(regression="huber"))
    with pytest.raises(InputError, match="model.out_channels"):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
