"""Segmenting an in-memory array equals the file pipeline's tiled prediction; viewer arrays to (C, *S)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.io import normalize_percentile
from unetkit.errors import InputError
from unetkit.inference.predict import NetGeometry, TorchPredictor, predict_tiled
from unetkit.inference.segment import as_channels_first, segment_array
from unetkit.models.registry import build_model


def test_as_channels_first_layouts():
    assert as_channels_first(np.zeros((5, 6))).shape == (1, 5, 6)
    assert as_channels_first(np.zeros((5, 6, 4)), rgb=True).shape == (3, 5, 6)
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(as_channels_first(data, channel=1), data[1:2])
    with pytest.raises(InputError, match="choose the channel"):
        as_channels_first(data)
    with pytest.raises(InputError, match="2 channel"):
        as_channels_first(data, channel=2)
    # a trailing axis of 2 to 4 is channels, not X; a time series or 5 axes is not one image
    with pytest.raises(InputError, match=r"last axis \(2 values\) looks like channels"):
        as_channels_first(np.zeros((64, 80, 2)), channel=0)
    with pytest.raises(InputError, match="4 axes; choose the channel"):
        as_channels_first(np.zeros((2, 3, 16, 16)))
    assert as_channels_first(np.zeros((2, 8, 16, 16)), channel=1).shape == (1, 8, 16, 16)  # a 3D model's stack
    with pytest.raises(InputError, match="5 axes"):
        as_channels_first(np.zeros((2, 2, 3, 16, 16)), channel=0)


def test_segment_array_matches_tiled_prediction(tmp_path):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 32})
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})
    image = np.random.default_rng(0).integers(0, 4000, (1, 40, 50)).astype(np.uint16)
    result = segment_array(tmp_path, image, device="cpu")
    expected = predict_tiled(normalize_percentile(image), TorchPredictor(model, "cpu"),
                             NetGeometry.from_config(config.model), 2, 32, config.inference.overlap, 1)
    np.testing.assert_allclose(result.foreground, 1 - expected[0], atol=1e-5)
    assert result.labels is not None and result.labels.shape == (40, 50)
    assert np.array_equal(result.mask, result.foreground > config.inference.threshold)
    assert segment_array(tmp_path, image, device="cpu", instances=False).labels is None
    # NaN pixels: named after the layer (not the checkpoint), or replaced as asked
    holes = image.astype(np.float32)
    holes[0, :3] = np.nan
    with pytest.raises(InputError, match="layer 'cells'"):
        segment_array(tmp_path, holes, device="cpu", name="layer 'cells'")
    filled = segment_array(tmp_path, holes, device="cpu", nan_policy="zero")
    assert np.isfinite(filled.foreground).all()
