"""Flip TTA: None keeps the checkpoint's inference.tta, True / False override it (the CLI flags: tests/cli)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.inference.files import PredictOptions, load_predictor
from unetkit.models.registry import build_model


@pytest.fixture()
def tta_checkpoint(tmp_path):
    """A tiny untrained net whose checkpoint asks for flip TTA (``inference.tta=true``)."""
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 32,
                                           "inference.tta": True})
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    return ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})


@pytest.mark.parametrize(("asked", "expected"), [(None, True), (True, True), (False, False)])
def test_the_option_overrides_the_checkpoint_only_when_given(tta_checkpoint, asked, expected):
    predictor = load_predictor(tta_checkpoint, PredictOptions(tta=asked, device="cpu"))
    assert predictor.config.inference.tta is expected


def test_turning_tta_off_changes_the_output_of_an_asymmetric_net(tta_checkpoint):
    image = np.random.default_rng(0).random((1, 40, 50)).astype(np.float32)
    kept = load_predictor(tta_checkpoint, PredictOptions(device="cpu")).output(image)
    off = load_predictor(tta_checkpoint, PredictOptions(tta=False, device="cpu")).output(image)
    # an untrained net is not flip-equivariant, so averaging over flips must move the probabilities
    assert np.abs(kept - off).max() > 1e-4

