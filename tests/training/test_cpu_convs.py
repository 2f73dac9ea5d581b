"""The GEMM weight gradient and up-convolution used for CPU NHWC training are as accurate as PyTorch's own.

float32 results are compared with a float64 reference, and the GEMM path's error must stay within a small
factor of PyTorch's float32 error on the same CPU (``unetkit.cpu.numerics.as_accurate``): fixed
tolerances against PyTorch's float32 result held on one CPU and failed on AVX-512 ones.
"""

import copy
import json

import pytest
import torch

from unetkit.cpu import autotune
from unetkit.cpu.numerics import as_accurate
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
def test_gemm_conv_is_as_accurate_as_pytorchs_output_and_gradients(bias, padding):
    torch.manual_seed(2)
    plain = torch.nn.Conv2d(16, 8, 3, padding=padding, bias=bias)
    fast, exact = copy.deepcopy(plain), copy.deepcopy(plain).double()
    fast.__class__ = GemmGradConv2d
    x = torch.randn(2, 16, 21, 19)
    inputs = (x.clone().requires_grad_(), x.contiguous(memory_format=NHWC).requires_grad_(),
              x.double().requires_grad_())
    outputs = [net(xi) for net, xi in zip((plain, fast, exact), inputs, strict=True)]
    assert "Conv3x3ChannelsLast" in outputs[1].grad_fn.name()  # the GEMM path really ran
    assert as_accurate(outputs[1], outputs[0], outputs[2])
    grad = torch.randn_like(outputs[0])
    for y in outputs:
        y.backward(grad.to(y.dtype))
    assert as_accurate(inputs[1].grad, inputs[0].grad, inputs[2].grad)
    assert as_accurate(fast.weight.grad, plain.weight.grad, exact.weight.grad)
    if bias:
        assert as_accurate(fast.bias.grad, plain.bias.grad, exact.bias.grad)


def test_gemm_conv_takes_the_ordinary_path_outside_nhwc_training():
    conv = torch.nn.Conv2d(16, 4, 3, padding=1)
    conv.__class__ = GemmGradConv2d
    nchw = torch.randn(1, 16, 8, 8, requires_grad=True)
    assert conv(nchw).grad_fn.name() == "ConvolutionBackward0"
    with torch.no_grad():
        assert conv(nchw.detach().contiguous(memory_format=NHWC)).grad_fn is None
    assert "Conv3x3ChannelsLast" in conv(nchw.contiguous(memory_format=NHWC)).grad_fn.name()


def test_gemm_upconv_is_as_accurate_as_pytorchs_output_and_gradients():
    torch.manual_seed(3)
    plain = torch.nn.ConvTranspose2d(6, 4, 2, stride=2)
    fast, exact = copy.deepcopy(plain), copy.deepcopy(plain).double()
    fast.__class__ = GemmUpConv2d
    x = torch.randn(2, 6, 5, 7)
    inputs = (x.clone().requires_grad_(), x.contiguous(memory_format=NHWC).requires_grad_(),
              x.double().requires_grad_())
    outputs = [net(xi) for net, xi in zip((plain, fast, exact), inputs, strict=True)]
    assert outputs[1].shape == (2, 4, 10, 14)
    assert as_accurate(outputs[1], outputs[0], outputs[2])
    grad = torch.randn_like(outputs[0])
    for y in outputs:
        y.backward(grad.to(y.dtype))
    for got, pytorch, reference in ((inputs[1].grad, inputs[0].grad, inputs[2].grad),
                                    (fast.weight.grad, plain.weight.grad, exact.weight.grad),
                                    (fast.bias.grad, plain.bias.grad, exact.bias.grad)):
        assert as_accurate(got, pytorch, reference)


def _smooth(net: torch.nn.Module) -> torch.nn.Module:
    """ReLU -> SiLU. ReLU's kink makes a gradient discontinuous: a pre-activation within rounding of zero
    (1 of 67,712 in this net on an AVX-512 EPYC, for plain NHWC oneDNN as much as for the GEMMs) flips and
    drops a pixel's whole gradient, so two correct float32 paths then differ by percents. A smooth
    activation keeps the comparison about the convolutions."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, torch.nn.SiLU())
    return net


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_accelerated_unet_trains_like_the_plain_one_and_keeps_its_state_dict(padding):
    torch.manual_seed(4)
    plain = _smooth(UNet(1, 2, padding=padding, depth=3, base_channels=8))
    fast, exact = copy.deepcopy(plain), copy.deepcopy(plain).double()
    # every 3x3 conv with >= 16 inputs, and the 2 up-convolutions
    expected = sum(1 for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
                   and m.in_channels >= 16) + 2
    assert accelerate_training_convs(fast) == expected
    assert list(fast.state_dict()) == list(plain.state_dict())
    fast = fast.to(memory_format=NHWC)
    x = torch.randn(2, 1, 92, 92)
    y_plain, y_fast, y_exact = plain(x), fast(x.contiguous(memory_format=NHWC)), exact(x.double())
    assert as_accurate(y_fast, y_plain, y_exact)
    grad = torch.randn_like(y_plain)
    for y in (y_plain, y_fast, y_exact):
        y.backward(grad.to(y.dtype))
    for (name, p_exact), p_plain, p_fast in zip(exact.named_parameters(), plain.parameters(), fast.parameters(),
                                                strict=True):
        assert as_accurate(p_fast.grad, p_plain.grad, p_exact.grad), name


def test_autotuned_layers_measure_once_and_take_the_cached_path(monkeypatch):
    """With autotune, each layer shape class is timed at its first training call and cached; the cached
    choice, whichever it is, decides the path every layer of that class takes."""
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "1")
    net = UNet(1, 2, padding="same", depth=2, base_channels=16).to(memory_format=NHWC)
    assert accelerate_training_convs(net, autotune=True) == 6  # 5 convs with >= 16 inputs, 1 up-conv
    x = torch.randn(1, 1, 32, 32).contiguous(memory_format=NHWC)
    torch.manual_seed(7)
    net(x).sum().backward()  # measures every class now
    after_tuning = torch.rand(4)
    torch.manual_seed(7)
    assert torch.equal(torch.rand(4), after_tuning)  # the measurements left training's random stream alone
    table = autotune.load_table()[autotune.machine_key()]
    assert sorted(table) == ["conv3x3-weight-grad C16 K16 pad1 32x32", "conv3x3-weight-grad C16 K32 pad1 16x16",
                             "conv3x3-weight-grad C32 K16 pad1 32x32", "conv3x3-weight-grad C32 K32 pad1 16x16",
                             "upconv2x2 C32 K16 pad0 16x16"]
    assert all(row["fast_ms"] > 0 and row["plain_ms"] > 0 and row["note"] == "" for row in table.values())
    conv, up = net.ups[0].convs[0], net.ups[0].up
    x_conv = torch.randn(1, 32, 32, 32).contiguous(memory_format=NHWC).requires_grad_()
    x_up = torch.randn(1, 32, 16, 16).contiguous(memory_format=NHWC).requires_grad_()
    for fast in (False, True):  # rewrite the cache as if the measurement had gone either way
        autotune.cache_path().write_text(json.dumps(
            {autotune.machine_key(): {key: {**row, "fast": fast} for key, row in table.items()}}))
        autotune._decided.clear()
        assert ("Conv3x3ChannelsLast" in conv(x_conv).grad_fn.name()) is fast
        assert (up(x_up).grad_fn.name() == "ConvolutionBackward0") is not fast


def test_autotuned_upconv_first_met_under_inference_mode_is_measured_and_predicts(monkeypatch):
    """Validation tiles are larger than the training patches: their shape class is first met under
    inference_mode, where the forward + backward measurement still has to run (it used to raise)."""
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "1")
    up = torch.nn.ConvTranspose2d(16, 8, 2, stride=2)
    accelerate_training_convs(torch.nn.Sequential(up), autotune=True)
    x = torch.randn(1, 16, 24, 24).contiguous(memory_format=NHWC)
    with torch.inference_mode():
        y = up(x)
    assert sorted(autotune.load_table()[autotune.machine_key()]) == ["upconv2x2 C16 K8 pad0 24x24"]
    reference = torch.nn.functional.conv_transpose2d(x.double(), up.weight.double(), up.bias.double(), stride=2)
    assert as_accurate(y, torch.nn.functional.conv_transpose2d(x, up.weight, up.bias, stride=2), reference)
