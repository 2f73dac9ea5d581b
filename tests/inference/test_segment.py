"""Segmenting an in-memory array equals the file pipeline's tiled prediction; viewer arrays to (C, *S)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.io import normalize_percentile
from unetkit.errors import InputError
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.segment import (
    as_channels_first,
    load_segmenter,
    segment_array,
    segment_with,
    stack_segmentations,
    viewer_images,
)
from unetkit.inference.tile_plan import NetGeometry
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


def test_viewer_images_reads_stacks_plane_by_plane_for_the_models_axes():
    """A z-stack or time series was refused in napari; it is now the planes of a stack, for the model's axes."""
    stack = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    planes, is_stack = viewer_images(stack)  # gray 2D model: 5 planes
    assert is_stack and len(planes) == 5 and planes[3].shape == (1, 6, 7)
    np.testing.assert_array_equal(planes[3][0], stack[3])
    volume, is_stack = viewer_images(stack, spatial_dims=3)  # a 3D model: one volume
    assert not is_stack and volume[0].shape == (1, 5, 6, 7)
    colour, is_stack = viewer_images(stack[:3], in_channels=3)  # as many planes as a colour model's channels
    assert not is_stack and colour[0].shape == (3, 6, 7)
    rgb_stack, is_stack = viewer_images(np.zeros((4, 6, 7, 3)), rgb=True, in_channels=3)
    assert is_stack and len(rgb_stack) == 4 and rgb_stack[0].shape == (3, 6, 7)
    one, is_stack = viewer_images(np.zeros((6, 7)), channel=0)  # a gray plane's channel 0 is itself
    assert not is_stack and one[0].shape == (1, 6, 7)
    picked, is_stack = viewer_images(np.zeros((2, 4, 6, 7)), channel=1)  # channel, then a stack of 4
    assert is_stack and len(picked) == 4 and picked[0].shape == (1, 6, 7)
    with pytest.raises(InputError, match=r"4 axes \(2, 3, 6, 7\), its channel aside, for a 2D model"):
        viewer_images(np.zeros((2, 3, 6, 7)))
    with pytest.raises(InputError, match="looks like channels"):
        viewer_images(np.zeros((6, 7, 2)))


def test_a_stack_is_segmented_plane_by_plane_with_ids_of_its_own(tmp_path):
    config = apply_overrides(RunConfig(), {"task": "instances", "model.out_channels": 3, "model.depth": 2,
                                           "model.base_channels": 4, "inference.tile_size": 32})
    torch.manual_seed(0)
    weights = build_model(config.model).state_dict()
    ckpt.save_checkpoint(tmp_path / "m.pt", {"config": to_dict(config), "model": weights})
    rng = np.random.default_rng(0)
    stack = (rng.random((3, 40, 48)) * 200).astype(np.uint8)
    predictor = load_segmenter(tmp_path / "m.pt", device="cpu")
    planes, _ = viewer_images(stack)
    parts = [segment_with(predictor, plane) for plane in planes]
    whole = stack_segmentations(parts)
    assert whole.foreground.shape == whole.labels.shape == (3, 40, 48) and whole.probabilities.shape == (3, 3, 40, 48)
    for index, part in enumerate(parts):
        np.testing.assert_array_equal(whole.foreground[index], part.foreground)
        np.testing.assert_array_equal(whole.labels[index] > 0, part.labels > 0)
        alone = segment_array(tmp_path / "m.pt", stack[index][None], device="cpu")
        np.testing.assert_array_equal(alone.labels, part.labels)
    ids = [set(np.unique(plane[plane > 0])) for plane in whole.labels]
    assert sum(len(i) for i in ids) == len(set().union(*ids)) > 0  # no id shared by two planes


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
