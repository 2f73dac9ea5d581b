"""The validation loss: the run's loss of whole-image predictions, recovered from their probabilities."""

import numpy as np
import pytest
import torch

from unetkit.config import RunConfig, apply_overrides
from unetkit.tasks import get_task


def test_loss_of_log_probabilities_equals_the_loss_of_the_logits():
    # softmax(log softmax(z)) = softmax(z): cross-entropy and soft Dice of the recovered input are the loss
    config = apply_overrides(RunConfig(), {"loss.dice_weight": 0.5})
    task = get_task("binary")
    loss = task.loss(config)
    logits = torch.randn(1, 2, 12, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    target = torch.randint(0, 2, (1, 12, 16), generator=torch.Generator().manual_seed(1))
    probs = torch.softmax(logits, 1)[0].numpy()
    recovered = torch.from_numpy(task.loss_input(probs, config))[None]
    assert float(loss(recovered, target)) == pytest.approx(float(loss(logits, target)), rel=1e-9)


def test_regression_loss_input_is_the_normalised_prediction():
    config = apply_overrides(RunConfig(), {"task": "regression", "data.target_offset": [10.0],
                                           "data.target_scale": [4.0]})
    task = get_task("regression")
    normalised = np.random.default_rng(0).normal(size=(1, 8, 8)).astype(np.float32)
    stored_units = normalised * 4.0 + 10.0  # what the predictor returns after its output transform
    np.testing.assert_allclose(task.loss_input(stored_units, config), normalised, rtol=1e-5, atol=1e-6)
