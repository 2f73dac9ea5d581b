"""Winograd F(4x4, 3x3) convolutions equal the direct ones; only eligible layers are converted.

float32 Winograd is compared with a float64 reference: its error must stay within
``WINOGRAD_ERROR_FACTOR`` times PyTorch's own float32 error on the same CPU (the transforms amplify
rounding ~10x), never a fixed tolerance against PyTorch's float32 result, which moves between CPUs.
"""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unetkit.checkpoint import save_checkpoint
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.cpu import autotune
from unetkit.cpu.numerics import as_accurate
from unetkit.inference.engines import load_engine_model
from unetkit.inference.winograd import (
    WINOGRAD_ERROR_FACTOR,
    WinogradConv2d,
    accelerate_convs,
    winograd_conv2d,
    winograd_filters,
)
from unetkit.models.unet import UNet


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", [(2, 17, 23), (1, 8, 8), (3, 5, 12), (1, 3, 3)])
def test_winograd_conv_equals_direct_conv(padding, shape):
    torch.manual_seed(0)
    n, h, w = shape
    x = torch.randn(n, 7, h, w)
    weight, bias = torch.randn(5, 7, 3, 3), torch.randn(5)
    direct = F.conv2d(x, weight, bias, padding=padding)
    exact = F.conv2d(x.double(), weight.double(), bias.double(), padding=padding)
    got = winograd_conv2d(x.permute(0, 2, 3, 1).contiguous(), winograd_filters(weight), bias, padding)
    assert got.permute(0, 3, 1, 2).shape == direct.shape
    assert as_accurate(got.permute(0, 3, 1, 2), direct, exact, factor=WINOGRAD_ERROR_FACTOR)
    # in float64 the algorithm itself is exact: any error above rounding would be a bug, not float32
    got64 = winograd_conv2d(x.double().permute(0, 2, 3, 1).contiguous(), winograd_filters(weight.double()),
                            bias.double(), padding)
    torch.testing.assert_close(got64.permute(0, 3, 1, 2), exact, rtol=1e-10, atol=1e-10)


def test_chunked_rows_of_tiles_give_the_same_result():
    """In float64 chunking must not change a digit that matters; in float32 the batched products of a
    chunk may take another kernel (AVX-512 does), so there each chunking is held to float32 accuracy."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 30, 21, 5), torch.randn(4, 5, 3, 3), torch.randn(4)
    exact = F.conv2d(x.double().permute(0, 3, 1, 2), weight.double(), bias.double(), padding=1).permute(0, 2, 3, 1)
    direct = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=1).permute(0, 2, 3, 1)
    for chunk in (1, 36 * 2 * 6 * 5 * 2, 36 * 2 * 6 * 5 * 3):  # one, two and three rows of tiles per pass
        got64 = winograd_conv2d(x.double(), winograd_filters(weight.double()), bias.double(), 1, chunk_elements=chunk)
        torch.testing.assert_close(got64, exact, rtol=1e-10, atol=1e-10)
        got = winograd_conv2d(x, winograd_filters(weight), bias, 1, chunk_elements=chunk)
        assert as_accurate(got, direct, exact, factor=WINOGRAD_ERROR_FACTOR)


def test_a_single_tile_by_hand():
    """One 6x6 input, one all-ones filter: every output is the sum of a 3x3 window."""
    x = torch.arange(36, dtype=torch.float64).reshape(1, 6, 6, 1)
    out = winograd_conv2d(x, winograd_filters(torch.ones(1, 1, 3, 3, dtype=torch.float64)), None, padding=0)
    expected = torch.tensor([[sum(6 * (r + i) + c + j for i in range(3) for j in range(3)) for c in range(4)]
                             for r in range(4)], dtype=torch.float64)
    torch.testing.assert_close(out[0, :, :, 0], expected, rtol=1e-12, atol=1e-10)


def _trained_like(net: nn.Module) -> nn.Module:
    """Give batch norms non-trivial running statistics and affine parameters."""
    torch.manual_seed(1)
    net.train()
    for _ in range(3):
        net(torch.randn(2, 1, 64, 64) * 3 + 1)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def test_accelerated_unet_matches_the_direct_one_with_batch_norm_folded_and_relu_fused():
    net = _trained_like(UNet(1, 2, padding="same", norm="batch", base_channels=8, depth=4))
    fast = copy.deepcopy(net)
    replaced = accelerate_convs(fast, min_channels=32)
    eligible = sum(1 for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
                   and m.in_channels >= 32)
    assert replaced == eligible > 0
    assert sum(isinstance(m, WinogradConv2d) for m in fast.modules()) == replaced
    assert not any(isinstance(m, nn.Conv2d) and m.in_channels >= 32 and m.kernel_size == (3, 3)
                   for m in fast.modules())
    x = torch.randn(2, 1, 96, 80).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected, got, exact = net(x), fast(x), copy.deepcopy(net).double()(x.double())
    assert as_accurate(got, expected, exact, factor=WINOGRAD_ERROR_FACTOR)


def test_valid_padding_net_keeps_its_output_size():
    net = UNet(1, 2, padding="valid", base_channels=4, depth=3).eval()
    fast = copy.deepcopy(net)
    assert accelerate_convs(fast, min_channels=1) == 10
    x = torch.randn(1, 1, 92, 92)
    with torch.inference_mode():
        assert fast(x).shape == net(x).shape == (1, 2, 52, 52)
        assert as_accurate(fast(x), net(x), copy.deepcopy(net).double()(x.double()), factor=WINOGRAD_ERROR_FACTOR)


def test_ineligible_convs_are_left_alone():
    block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                          nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                          nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.Conv2d(4, 8, 3, padding=1))
    assert accelerate_convs(block, min_channels=1) == 1  # only the last, plain 3x3 conv
    assert [type(m) for m in block] == [nn.Conv2d] * 5 + [WinogradConv2d]
    assert accelerate_convs(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)), min_channels=16) == 0


def _checkpoint(tmp_path, base):
    config = apply_overrides(RunConfig(), {"model.base_channels": base, "model.depth": 2, "model.padding": "same"})
    net = UNet(1, 2, padding="same", base_channels=base, depth=2, norm=config.model.norm)
    return save_checkpoint(tmp_path / "m.pt", {"config": to_dict(config), "model": net.state_dict()})


def test_cpu_torch_engine_uses_winograd_for_wide_convs_unless_turned_off(tmp_path):
    path = _checkpoint(tmp_path, base=128)  # the second level has 256 channels
    fast, _ = load_engine_model(path, "torch", "cpu")
    plain, _ = load_engine_model(path, "torch", "cpu", winograd=False)
    converted = sum(isinstance(m, WinogradConv2d) for m in fast.modules())
    assert converted == 2  # 256 -> 256 (level 2) and 256 -> 128 (decoder)
    assert not any(isinstance(m, WinogradConv2d) for m in plain.modules())
    x = torch.randn(1, 1, 32, 32)
    with torch.inference_mode():
        exact = copy.deepcopy(plain).double()(x.double())
        assert as_accurate(fast(x), plain(x), exact, factor=WINOGRAD_ERROR_FACTOR)


def test_autotuned_winograd_times_convs_from_128_channels_and_runs_the_cached_choice(monkeypatch):
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "1")
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(128, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)).eval()
    fast = copy.deepcopy(block)
    assert accelerate_convs(fast, autotune=True) == 1  # 128 inputs: a candidate only when timed
    assert accelerate_convs(copy.deepcopy(block), autotune=False) == 0  # the fixed rule wants 256
    x = torch.randn(1, 128, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected, exact = block(x), copy.deepcopy(block).double()(x.double())
        fast(x)
        table = autotune.load_table()[autotune.machine_key()]
        assert list(table) == ["winograd3x3 C128 K16 pad1 20x24"]
        for winograd in (False, True):  # either measured outcome gives the conv's result
            autotune.cache_path().write_text(json.dumps(
                {autotune.machine_key(): {key: {**row, "fast": winograd} for key, row in table.items()}}))
            autotune._decided.clear()
            assert as_accurate(fast(x), expected, exact, factor=WINOGRAD_ERROR_FACTOR if winograd else 8)
