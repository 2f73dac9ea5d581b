"""Winograd F(4x4, 3x3) convolutions equal the direct ones; only eligible layers are converted."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unetkit.checkpoint import save_checkpoint
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.inference.engines import load_engine_model
from unetkit.inference.winograd import WinogradConv2d, accelerate_convs, winograd_conv2d, winograd_filters
from unetkit.models.unet import UNet


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", [(2, 17, 23), (1, 8, 8), (3, 5, 12), (1, 3, 3)])
def test_winograd_conv_equals_direct_conv(padding, shape):
    torch.manual_seed(0)
    n, h, w = shape
    x = torch.randn(n, 7, h, w)
    weight, bias = torch.randn(5, 7, 3, 3), torch.randn(5)
    direct = F.conv2d(x, weight, bias, padding=padding)
    got = winograd_conv2d(x.permute(0, 2, 3, 1).contiguous(), winograd_filters(weight), bias, padding)
    assert got.permute(0, 3, 1, 2).shape == direct.shape
    torch.testing.assert_close(got.permute(0, 3, 1, 2), direct, rtol=1e-4, atol=1e-4 * direct.abs().max().item())


def test_chunked_rows_of_tiles_give_the_same_result():
    torch.manual_seed(0)
    x = torch.randn(2, 30, 21, 5)
    filters, bias = winograd_filters(torch.randn(4, 5, 3, 3)), torch.randn(4)
    whole = winograd_conv2d(x, filters, bias, 1)
    for chunk in (1, 36 * 2 * 6 * 5 * 2, 36 * 2 * 6 * 5 * 3):  # one, two and three rows of tiles per pass
        torch.testing.assert_close(winograd_conv2d(x, filters, bias, 1, chunk_elements=chunk), whole)


def test_a_single_tile_by_hand():
    """One 6x6 input, one all-ones filter: every output is the sum of a 3x3 window."""
    x = torch.arange(36, dtype=torch.float32).reshape(1, 6, 6, 1)
    out = winograd_conv2d(x, winograd_filters(torch.ones(1, 1, 3, 3)), None, padding=0)
    expected = torch.tensor([[sum(6 * (r + i) + c + j for i in range(3) for j in range(3)) for c in range(4)]
                             for r in range(4)], dtype=torch.float32)
    torch.testing.assert_close(out[0, :, :, 0], expected, rtol=1e-5, atol=1e-4)


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
        expected, got = net(x), fast(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_valid_padding_net_keeps_its_output_size():
    net = UNet(1, 2, padding="valid", base_channels=4, depth=3).eval()
    fast = copy.deepcopy(net)
    assert accelerate_convs(fast, min_channels=1) == 10
    x = torch.randn(1, 1, 92, 92)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-5)


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
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)
