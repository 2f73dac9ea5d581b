"""The GEMM weight gradient and up-convolution used for CPU NHWC training agree with PyTorch's own."""

import copy

import pytest
import torch

from unetkit.models.unet import UNet
from unetkit.training import cpu_convs
from unetkit.training.cpu_convs import (
    GemmGradConv2d,
    GemmUpConv2d,
    accelerate_training_convs,
    conv3x3_weight_grad,
)

NHWC = torch.channels_last


def _reference_weight_grad(x, grad, weight, padding):
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, [1, 1], [padding, padding], [1, 1], False, [0, 0], 1, [False, True, False])[1]


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize(("height", "width"), [(35, 35), (17, 20), (8, 3)])
def test_weight_grad_matches_pytorch_exactly_in_float64(padding, height, width):
    torch.manual_seed(0)
    x = torch.randn(2, 5, height, width, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    grad = torch.randn(2, 7, height + 2 * padding - 2, width + 2 * padding - 2, dtype=torch.float64)
    expected = _reference_weight_grad(x, grad, weight, padding)
    got = conv3x3_weight_grad(x.contiguous(memory_format=NHWC), grad.contiguous(memory_format=NHWC), padding)
    assert got.shape == (7, 5, 3, 3)
    assert torch.allclose(got, expected, atol=1e-10, rtol=0)


def test_weight_grad_blocks_of_rows_add_up_across_images(monkeypatch):
    # blocks of 37 rows end mid-row and mid-image: every block boundary must be seamless
    monkeypatch.setattr(cpu_convs, "ROWS_PER_GEMM", 37)
    torch.manual_seed(1)
    x = torch.randn(3, 4, 11, 9, dtype=torch.float64)
    grad = torch.randn(3, 6, 11, 9, dtype=torch.float64)
    expected = _reference_weight_grad(x, grad, torch.zeros(6, 4, 3, 3, dtype=torch.float64), 1)
    assert torch.allclose(conv3x3_weight_grad(x, grad, 1), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("padding", [0, 1])
def test_gemm_conv_gives_pytorchs_output_and_gradients(bias, padding):
    torch.manual_seed(2)
    plain = torch.nn.Conv2d(16, 8, 3, padding=padding, bias=bias)
    fast = copy.deepcopy(plain)
    fast.__class__ = GemmGradConv2d
    x = torch.randn(2, 16, 21, 19)
    x_plain, x_fast = x.clone().requires_grad_(), x.contiguous(memory_format=NHWC).requires_grad_()
    y_plain, y_fast = plain(x_plain), fast(x_fast)
    assert torch.allclose(y_fast, y_plain, atol=1e-5)
    grad = torch.randn_like(y_plain)
    y_plain.backward(grad)
    y_fast.backward(grad)
    assert torch.allclose(x_fast.grad, x_plain.grad, atol=1e-4)
    assert torch.allclose(fast.weight.grad, plain.weight.grad, atol=1e-3, rtol=1e-4)
    if bias:
        assert torch.allclose(fast.bias.grad, plain.bias.grad, atol=1e-3, rtol=1e-4)


def test_gemm_conv_takes_the_ordinary_path_outside_nhwc_training():
    conv = torch.nn.Conv2d(16, 4, 3, padding=1)
    conv.__class__ = GemmGradConv2d
    nchw = torch.randn(1, 16, 8, 8, requires_grad=True)
    assert conv(nchw).grad_fn.name() == "ConvolutionBackward0"
    with torch.no_grad():
        assert conv(nchw.detach().contiguous(memory_format=NHWC)).grad_fn is None
    assert "Conv3x3ChannelsLast" in conv(nchw.contiguous(memory_format=NHWC)).grad_fn.name()


def test_gemm_upconv_gives_pytorchs_output_and_gradients():
    torch.manual_seed(3)
    plain = torch.nn.ConvTranspose2d(6, 4, 2, stride=2)
    fast = copy.deepcopy(plain)
    fast.__class__ = GemmUpConv2d
    x = torch.randn(2, 6, 5, 7)
    x_plain, x_fast = x.clone().requires_grad_(), x.contiguous(memory_format=NHWC).requires_grad_()
    y_plain, y_fast = plain(x_plain), fast(x_fast)
    assert y_fast.shape == (2, 4, 10, 14)
    assert torch.allclose(y_fast, y_plain, atol=1e-5)
    grad = torch.randn_like(y_plain)
    y_plain.backward(grad)
    y_fast.backward(grad)
    for got, expected in ((x_fast.grad, x_plain.grad), (fast.weight.grad, plain.weight.grad),
                          (fast.bias.grad, plain.bias.grad)):
        assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_accelerated_unet_trains_like_the_plain_one_and_keeps_its_state_dict(padding):
    torch.manual_seed(4)
    plain = UNet(1, 2, padding=padding, depth=3, base_channels=8)
    fast = copy.deepcopy(plain)
    # every 3x3 conv with >= 16 inputs, and the 2 up-convolutions
    expected = sum(1 for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
                   and m.in_channels >= 16) + 2
    assert accelerate_training_convs(fast) == expected
    assert list(fast.state_dict()) == list(plain.state_dict())
    fast = fast.to(memory_format=NHWC)
    x = torch.randn(2, 1, 92, 92)
    y_plain, y_fast = plain(x), fast(x.contiguous(memory_format=NHWC))
    assert torch.allclose(y_fast, y_plain, atol=1e-4)
    grad = torch.randn_like(y_plain)
    y_plain.backward(grad)
    y_fast.backward(grad)
    for (name, p_plain), p_fast in zip(plain.named_parameters(), fast.parameters(), strict=True):
        scale = p_plain.grad.norm()
        assert (p_fast.grad - p_plain.grad).norm() <= 1e-4 * scale + 1e-6, name
