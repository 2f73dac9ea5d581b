"""Memory estimates from the meta device, the largest patch that fits, and the errors naming one."""

import re

import pytest
import torch

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models import memory, sizes
from unetkit.models.registry import build_model

torch.set_num_threads(1)

TINY_3D = ModelConfig(name="unet3d", depth=1, base_channels=4, norm="none", padding="same")
SMALL_3D = ModelConfig(name="unet3d", depth=3, base_channels=4, norm="batch", padding="same")


def test_prediction_peak_of_a_one_level_net_by_hand():
    # input (1, 1, 8, 8, 8) = 512 voxels. conv1 out 4 ch (8192 B) stays while conv2 writes its 4 ch
    # (8192 B): peak 16384 B of activations. Parameters: conv 1->4 (4*27+4) + conv 4->4 (4*4*27+4)
    # + 1x1 head 4->2 (8+2) = 558 floats = 2232 B. Total 18616 B.
    assert memory.estimate_bytes(TINY_3D, (1, 1, 8, 8, 8), training=False) == 18616


def test_estimate_equals_tracking_real_cpu_tensors():
    from unetkit.models.memory import _LiveBytes

    torch.manual_seed(0)
    model = build_model(SMALL_3D)
    tracker = _LiveBytes()
    x = torch.rand(2, 1, 8, 16, 16)
    with tracker:
        loss = torch.log_softmax(model(x).float(), dim=1).mean()
        loss.backward()
        del loss
    params = sum(p.numel() * 4 for p in model.parameters())
    assert memory.estimate_bytes(SMALL_3D, (2, 1, 8, 16, 16), training=True) == tracker.peak + 3 * params


def test_training_needs_more_than_prediction_and_grows_with_the_voxels():
    small = memory.estimate_bytes(SMALL_3D, (1, 1, 8, 16, 16), training=True)
    large = memory.estimate_bytes(SMALL_3D, (1, 1, 16, 32, 32), training=True)
    params = 3 * sum(p.numel() * 4 for p in build_model(SMALL_3D).parameters())  # weights + 2 AdamW moments
    assert 7.5 < (large - params) / (small - params) < 8.5  # 8x the voxels, 8x the activations
    assert memory.estimate_bytes(SMALL_3D, (1, 1, 8, 16, 16), training=False) < small / 2


def test_round_down_to_sizes_the_net_accepts():
    assert memory.round_down_size(SMALL_3D, (13, 40, 33)) == (12, 40, 32)  # same: multiples of 4
    valid = ModelConfig(name="unet3d", depth=3, padding="valid")
    shape = memory.round_down_size(valid, (60, 70, 80))
    assert all(sizes.valid_output_size((s,), 3) for s in shape) and shape == (60, 68, 80)  # 44 + 4k
    assert memory.round_down_size(SMALL_3D, (3, 40, 40)) is None
    assert memory.smallest_size(valid) == (44, 44, 44)


def test_largest_fitting_size_fits_and_one_step_larger_does_not():
    budget = memory.estimate_bytes(SMALL_3D, (2, 1, 16, 64, 64), training=True)
    fitted = memory.largest_fitting_size(SMALL_3D, (32, 128, 128), 2, budget, training=True)
    assert memory.estimate_bytes(SMALL_3D, (2, 1, *fitted), training=True) <= budget
    assert fitted[0] <= 16 and fitted[1] <= 64 and all(s % 4 == 0 for s in fitted)
    bigger = tuple(s + 4 for s in fitted)
    assert memory.estimate_bytes(SMALL_3D, (2, 1, *bigger), training=True) > budget
    assert memory.largest_fitting_size(SMALL_3D, (32, 128, 128), 2, 1000, training=True) is None


def test_training_memory_error_names_a_patch_that_fits():
    limit_gb = memory.estimate_bytes(SMALL_3D, (2, 1, 16, 48, 48), training=True) / memory.GB
    assert memory.check_training_memory(SMALL_3D, (16, 48, 48), 2, "cpu", limit_gb) > 0
    with pytest.raises(InputError, match=r"data\.patch_shape=\[(\d+), (\d+), (\d+)\]") as error:
        memory.check_training_memory(SMALL_3D, (32, 128, 128), 2, "cpu", limit_gb)
    message = str(error.value)
    assert "train.memory_limit_gb" in message and "needs about" in message
    suggested = tuple(int(v) for v in re.search(r"patch_shape=\[(\d+), (\d+), (\d+)\]", message).groups())
    assert memory.estimate_bytes(SMALL_3D, (2, 1, *suggested), training=True) <= limit_gb * memory.GB


def test_prediction_tile_shrinks_to_the_budget_or_fails_clearly():
    limit_gb = memory.estimate_bytes(SMALL_3D, (1, 1, 16, 32, 32), training=False) / memory.GB
    assert memory.fit_prediction_tile(SMALL_3D, (16, 32, 32), 4, "cpu", limit_gb) == ((16, 32, 32), 1)
    tile, batch = memory.fit_prediction_tile(SMALL_3D, (32, 64, 64), 4, "cpu", limit_gb)
    assert batch == 1 and all(t <= s for t, s in zip(tile, (16, 32, 32), strict=True))
    with pytest.raises(InputError, match=r"smallest tile this network accepts, \(4, 4, 4\)"):
        memory.fit_prediction_tile(SMALL_3D, (32, 64, 64), 4, "cpu", 1e-6)


def test_budget_from_limit_or_free_memory():
    assert memory.memory_budget("cpu", 2.0) == 2 * memory.GB
    assert 0 < memory.memory_budget("cpu") <= memory.available_bytes("cpu")
    with pytest.raises(InputError, match="memory_limit_gb must be >= 0"):
        memory.memory_budget("cpu", -1)
