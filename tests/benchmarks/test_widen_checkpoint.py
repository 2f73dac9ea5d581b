"""benchmarks/widen_checkpoint.py: the doubled U-Net computes what the narrow one does (no noise), in training
mode too (batch-norm batch statistics), and the noise makes the copies of a channel differ."""

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import widen_checkpoint  # noqa: E402

from unetkit.config import ModelConfig  # noqa: E402
from unetkit.models.registry import build_model  # noqa: E402


def narrow_and_wide() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    config = ModelConfig(name="unet", in_channels=3, out_channels=3, depth=3, base_channels=4, padding="same",
                         norm="batch")
    narrow = build_model(config)
    with torch.no_grad():  # batch-norm statistics and affine parameters away from their identity start
        for module in narrow.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return narrow, build_model(dataclasses.replace(config, base_channels=8))


@pytest.mark.parametrize("train_mode", [False, True])
def test_widened_net_computes_the_same_function(train_mode: bool):
    narrow, wide = narrow_and_wide()
    wide.load_state_dict(widen_checkpoint.widen_state(narrow, wide, noise=0.0, seed=0))
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in narrow.parameters())
    # float64: halving is exact, so the two nets differ only by the order of their sums, ~1e-16 relative per
    # operation; 1e-9 of the output's scale leaves six orders of magnitude for any CPU's kernels and ~20 layers
    narrow.double().train(train_mode)
    wide.double().train(train_mode)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        expected, got = narrow(x), wide(x)
    scale = float(expected.abs().max())
    assert torch.allclose(got, expected, rtol=0, atol=1e-9 * max(scale, 1.0))


def test_noise_breaks_the_symmetry_of_the_copies():
    narrow, wide = narrow_and_wide()
    state = widen_checkpoint.widen_state(narrow, wide, noise=0.01, seed=0)
    filters = state["first.0.weight"]  # (8, 3, 3, 3): channels 2k and 2k+1 copy old channel k
    assert not torch.equal(filters[0], filters[1])
    relative = float((filters[0] - filters[1]).abs().max() / filters.abs().max())
    assert 0 < relative < 0.1
    quiet = widen_checkpoint.widen_state(narrow, wide, noise=0.0, seed=0)["first.0.weight"]
    assert torch.equal(quiet[0], quiet[1])
