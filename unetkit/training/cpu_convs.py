"""Faster CPU training for 2D U-Nets: channels-last 3x3 convolutions whose weight gradient runs as GEMMs.

On a CPU, oneDNN's NHWC convolution is the fastest forward pass and input gradient, but its weight
gradient is 2-4x slower than the rest (23-57 GFLOP/s against 120-150 on a 2-core AVX2 machine), which
is why NHWC training used to lose to NCHW. Here the weight gradient of a 3x3, stride-1 convolution is
nine matrix products over the channels-last tensors instead: in a flattened NHWC image the input pixel
at kernel offset (i, j) of output pixel p sits at row ``p + (i - 1) * width + (j - 1)`` (same padding),
so each offset is one GEMM of the output gradient (rows x out) with a contiguous slice of the input
(rows x in), with no copy of either.
2x2 stride-2 up-convolutions become one GEMM and a pixel shuffle. Numbers: BENCHMARKS.md (issue 7).

The modules keep their classes' parameters and ``state_dict`` keys; anything they do not cover (CUDA,
NCHW inputs, other dtypes, evaluation without gradients) goes through the ordinary PyTorch path.

The gains were measured on one AVX2 CPU; on AVX-512 oneDNN's own weight gradient is faster and the GEMMs
may gain nothing. With ``autotune`` each layer shape class is timed both ways at its first training call
(``unetkit.cpu.autotune``, cached per machine) and the GEMM path runs only where it wins.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.cpu import autotune as tuning
from unetkit.cpu.numerics import as_accurate
from unetkit.inference.winograd import convertible

ROWS_PER_GEMM = 8192  # pixels per GEMM: keeps both operands of the nine products in cache together


def _nhwc_rows(tensor: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) as the (N * H * W, C) matrix of its pixels; copies only if not channels-last already."""
    return tensor.permute(0, 2, 3, 1).contiguous().view(-1, tensor.shape[1])


def _padded_rows(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, C, h, w) placed at the top left of a zero (N, height, width, C) grid, as pixel rows."""
    n, c, h, w = tensor.shape
    out = tensor.new_empty((n, height, width, c))
    out[:, h:].zero_()
    out[:, :h, w:].zero_()
    out[:, :h, :w].copy_(tensor.permute(0, 2, 3, 1))
    return out.view(-1, c)


@functools.lru_cache(maxsize=256)
def _wrapped_rows(batch: int, height: int, width: int, i: int, j: int) -> torch.Tensor:
    """Output pixels whose input at kernel offset (i, j) lies in the zero padding of a "same" 3x3 conv:
    in the flattened image those reads wrap into a neighbouring row or image instead."""
    h = torch.arange(height).view(1, height, 1)
    w = torch.arange(width).view(1, 1, width)
    outside = ((h + i - 1 < 0) | (h + i - 1 >= height)) | ((w + j - 1 < 0) | (w + j - 1 >= width))
    outside = outside.expand(batch, height, width).reshape(-1)
    rows = outside.nonzero().view(-1)
    offset = (i - 1) * width + (j - 1)
    in_range = (rows + offset >= 0) & (rows + offset < batch * height * width)
    return rows[in_range]


def _accumulate_shifted_products(result: torch.Tensor, grad_rows: torch.Tensor, x_rows: torch.Tensor,
                                 offsets: list[tuple[int, int, int]]) -> None:
    """result[i, j] += sum over rows p of grad_rows[p] (outer) x_rows[p + offset], a block of rows at a
    time so that the block of ``grad_rows`` stays in cache across the nine products."""
    total = x_rows.shape[0]
    for start in range(0, grad_rows.shape[0], ROWS_PER_GEMM):
        end = min(start + ROWS_PER_GEMM, grad_rows.shape[0])
        for i, j, offset in offsets:
            first, stop = max(start, -offset), min(end, total - offset)
            if stop > first:
                result[i, j].addmm_(grad_rows[first:stop].t(), x_rows[first + offset:stop + offset])


def conv3x3_weight_grad(inputs: torch.Tensor, grad_output: torch.Tensor, padding: int) -> torch.Tensor:
    """Weight gradient (out, in, 3, 3) of a stride-1 3x3 convolution with padding 0 or 1, as GEMMs.

    Row p of the output gradient pairs with row ``p + offset`` of the input's pixel rows. With padding 1
    (same size) both share one grid: the products are taken over the flattened tensors as they are, and
    the few pairs that wrapped across a row or image edge (where the padding's zeros belong) are
    subtracted. With padding 0 the gradient is placed on the input's wider grid first.
    """
    batch, channels, height, width = inputs.shape
    out_channels = grad_output.shape[1]
    x_rows = _nhwc_rows(inputs)
    result = inputs.new_zeros((3, 3, out_channels, channels))
    if padding == 1:
        grad_rows = _nhwc_rows(grad_output)
        offsets = [(i, j, (i - 1) * width + (j - 1)) for i in range(3) for j in range(3)]
        _accumulate_shifted_products(result, grad_rows, x_rows, offsets)
        for i, j, offset in offsets:
            if (i, j) != (1, 1):
                rows = _wrapped_rows(batch, height, width, i, j)
                result[i, j].addmm_(grad_rows[rows].t(), x_rows[rows + offset], alpha=-1)
    elif padding == 0:
        grad_rows = _padded_rows(grad_output, height, width)
        _accumulate_shifted_products(result, grad_rows, x_rows, [(i, j, i * width + j) for i in range(3)
                                                                  for j in range(3)])
    else:
        raise ValueError(f"padding must be 0 or 1; got {padding}")
    return result.permute(2, 3, 0, 1)


def _conv_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding: int,
                   mask: list[bool], bias_sizes: list[int] | None = None) -> tuple:
    """PyTorch's (oneDNN's) convolution backward: (input, weight, bias) gradients where ``mask`` asks."""
    return torch.ops.aten.convolution_backward(grad_output, x, weight, bias_sizes, [1, 1], [padding, padding],
                                               [1, 1], False, [0, 0], 1, mask)


def _conv_candidates(channels: int, weight: torch.Tensor, has_bias: bool, padding: int, height: int,
                     width: int) -> tuple:
    """The whole backward of one conv both ways on a random slice: oneDNN's alone (plain), oneDNN's input
    gradient + GEMM weight gradient + summed bias (fast); and the GEMM weight gradient's accuracy."""
    rng = torch.Generator().manual_seed(0)  # its own generator: training's random stream is not touched
    k = weight.shape[0]
    x = torch.randn(1, channels, height, width, generator=rng).contiguous(memory_format=torch.channels_last)
    w = weight.detach().clone().contiguous(memory_format=torch.channels_last)
    grad = torch.randn(1, k, height + 2 * padding - 2, width + 2 * padding - 2, generator=rng).contiguous(
        memory_format=torch.channels_last)
    bias_sizes = [k] if has_bias else None

    def plain():
        return _conv_backward(grad, x, w, padding, [True, True, has_bias], bias_sizes)

    def fast():
        grad_input = _conv_backward(grad, x, w, padding, [True, False, False])[0]
        return grad_input, conv3x3_weight_grad(x, grad, padding), grad.sum((0, 2, 3)) if has_bias else None

    def accurate() -> bool:
        reference = _conv_backward(grad.double(), x.double(), w.double(), padding, [False, True, False])[1]
        return as_accurate(conv3x3_weight_grad(x, grad, padding), plain()[1], reference)

    return fast, plain, accurate


@torch.compiler.disable  # a Python-side decision (environment, cache file): not for dynamo to trace
def _gemm_wins(module: nn.Module, kind: str, x: torch.Tensor, prepare) -> bool:
    """True without ``module.autotune``; else the autotuned choice for this layer's shape class."""
    if not getattr(module, "autotune", False) or not tuning.env_allows():
        return True
    height, width = tuning.measured_slice(x.shape[2], x.shape[3])
    key = f"{kind} C{x.shape[1]} K{module.out_channels} pad{module.padding[0]} {height}x{width}"
    # the candidates time forward + backward: measured with autograd on, also when a shape class is first
    # met under inference_mode (validation tiles larger than the training patches)
    with torch.inference_mode(False), torch.enable_grad():
        return tuning.choose(key, lambda: prepare(height, width))


class _Conv3x3ChannelsLast(torch.autograd.Function):
    """3x3 stride-1 convolution: oneDNN forward and input gradient, GEMM weight gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, 1, padding)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, weight = ctx.saved_tensors
        pad = ctx.padding
        grad_output = grad_output.contiguous(memory_format=torch.channels_last)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _conv_backward(grad_output, x, weight, pad, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_weight = conv3x3_weight_grad(x, grad_output, pad)
        if ctx.has_bias and ctx.needs_input_grad[2]:  # a plain sum: asking convolution_backward for it
            grad_bias = grad_output.sum((0, 2, 3))       # measured 3.4x slower (196 vs 57 ms with input grad)
        return grad_input, grad_weight, grad_bias, None


def _fast_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """float32 channels-last CPU input: what the GEMM paths are written and measured for."""
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype == torch.float32 == weight.dtype
            and x.is_contiguous(memory_format=torch.channels_last))


class GemmGradConv2d(nn.Conv2d):
    """``nn.Conv2d`` (3x3, stride 1, padding 0 or 1) with the GEMM weight gradient on channels-last CPU input."""

    autotune = False  # set per module by accelerate_training_convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and self.weight.requires_grad and _fast_path(x, self.weight)
                and _gemm_wins(self, "conv3x3-weight-grad", x, lambda h, w: _conv_candidates(
                    x.shape[1], self.weight, self.bias is not None, self.padding[0], h, w))):
            return _Conv3x3ChannelsLast.apply(x, self.weight, self.bias, self.padding[0])
        return super().forward(x)


class GemmUpConv2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (2x2, stride 2) as one GEMM and a pixel shuffle on channels-last CPU input."""

    autotune = False  # set per module by accelerate_training_convs

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (output_size is not None or not _fast_path(x, self.weight)
                or not _gemm_wins(self, "upconv2x2", x, lambda h, w: _upconv_candidates(self, h, w))):
            return super().forward(x, output_size)
        return gemm_upconv2d(x, self.weight, self.bias)


def gemm_upconv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """2x2 stride-2 transposed convolution of NHWC-stored (N, C, H, W) ``x`` with (C, K, 2, 2) ``weight``:
    one (pixels x C) @ (C x 4K) GEMM, then each pixel's 4K values spread over its 2x2 output block."""
    batch, channels, height, width = x.shape
    out = weight.shape[1]
    pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)
    columns = weight.permute(0, 2, 3, 1).reshape(channels, 4 * out)  # columns: (row, col, out)
    y = pixels @ columns if bias is None else torch.addmm(bias.repeat(4), pixels, columns)
    y = y.view(batch, height, width, 2, 2, out).permute(0, 1, 3, 2, 4, 5).reshape(batch, 2 * height, 2 * width, out)
    return y.permute(0, 3, 1, 2)


def _upconv_candidates(module: nn.ConvTranspose2d, height: int, width: int) -> tuple:
    """Forward and backward of one up-convolution both ways on a random slice (no accuracy check: one GEMM
    over the input channels is the reduction PyTorch's kernel does too)."""
    rng = torch.Generator().manual_seed(0)  # its own generator: training's random stream is not touched
    x = torch.randn(1, module.in_channels, height, width, generator=rng).contiguous(
        memory_format=torch.channels_last)
    x.requires_grad_()
    weight = module.weight.detach().clone().requires_grad_()
    bias = module.bias.detach().clone().requires_grad_() if module.bias is not None else None
    grad = torch.randn(1, module.out_channels, 2 * height, 2 * width, generator=rng).contiguous(
        memory_format=torch.channels_last)

    def run(conv) -> None:
        x.grad = weight.grad = None
        with torch.enable_grad():  # also when called from a forward that runs without autograd (compiled)
            conv().backward(grad)

    return (lambda: run(lambda: gemm_upconv2d(x, weight, bias)),
            lambda: run(lambda: F.conv_transpose2d(x, weight, bias, stride=2)), None)


def _is_plain_upconv(module: nn.Module) -> bool:
    return (type(module) is nn.ConvTranspose2d and module.kernel_size == (2, 2) and module.stride == (2, 2)
            and module.padding == (0, 0) and module.output_padding == (0, 0) and module.dilation == (1, 1)
            and module.groups == 1)


def accelerate_training_convs(model: nn.Module, min_channels: int = 16, autotune: bool = False) -> int:
    """Switch a 2D net's plain 3x3 convs (``min_channels`` inputs or more) and 2x2 up-convs to the GEMM
    versions in place; returns how many. Parameters, buffers and ``state_dict`` keys are untouched (the
    classes only add a forward path), so checkpoints and optimizers see the same model. Convs with fewer
    inputs (the first one, on 1-3 image channels) keep oneDNN's path: GEMMs that narrow do not pay.
    ``autotune``: each converted layer times its GEMM path against oneDNN's at its first training call
    (per shape class, cached per machine) and keeps the faster (see ``unetkit.cpu.autotune``)."""
    changed = 0
    for module in model.modules():
        if convertible(module, min_channels):  # the plain 3x3 convs Winograd prediction converts, too
            module.__class__ = GemmGradConv2d
        elif _is_plain_upconv(module):
            module.__class__ = GemmUpConv2d
        else:
            continue
        module.autotune = autotune
        changed += 1
    return changed
