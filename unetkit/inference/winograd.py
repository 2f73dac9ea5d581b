"""Winograd F(4x4, 3x3) convolutions for CPU prediction: 4x fewer multiplications per 3x3 conv.

A 3x3 convolution computes each 4x4 block of outputs from a 6x6 input tile. Winograd's minimal
filtering algorithm (Lavin and Gray 2016) transforms the tiles (``B^T d B``) and the filters
(``G g G^T``) so that a block costs 36 channel-matrix products instead of 144: one batched matrix
multiply of 36 (tiles x C) @ (C x K) GEMMs, with the transforms as two small GEMMs over memory. The
transforms only pay where the channel count makes the big GEMM dominate: the deep, wide levels of a
U-Net. Measured on a 2-core AVX2 CPU per layer (batch 4, channels_last direct conv as reference):
C=128 at 128 px 0.63x (slower), C=256 at 64 px 1.47x, C=512 at 32 px 2.37x, C=1024 at 16 px 2.85x;
hence the default ``min_channels=256``. Outputs equal the direct convolution to ~1e-5 relative error
(float32; the transforms hold coefficients up to 8).

Used for CPU prediction only (``accelerate_convs``); eval-mode batch norm after a converted conv is
folded into it, and a following ReLU is fused. Those channel thresholds were fitted to one AVX2 CPU;
with ``autotune`` every conv from 128 input channels up is converted and times Winograd against the
direct convolution at its first call (per shape class, cached per machine: ``unetkit.cpu.autotune``),
keeping the direct one where Winograd does not win, or is less accurate than 32x PyTorch's own float32
error (the transforms' coefficients amplify rounding ~10x by measurement, on AVX2 and AVX-512 alike).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.cpu import autotune as tuning
from unetkit.cpu.numerics import as_accurate

# Lavin and Gray's F(4x4, 3x3) transforms, interpolation points 0, 1, -1, 2, -2 and infinity.
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
TILE, OUT = 6, 4  # input tile and output block sides


@functools.lru_cache(maxsize=16)
def _kron(matrix: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 2D transform ``M X M^T`` of a flattened tile as one matrix, ``M kron M`` (built once per
    dtype and device, not on every convolution)."""
    m = torch.tensor(matrix, dtype=torch.float64)
    return torch.kron(m, m).to(dtype=dtype, device=device)


def winograd_filters(weight: torch.Tensor) -> torch.Tensor:
    """(K, C, 3, 3) filters -> (36, C, K) transformed filters ``G g G^T``, one (C, K) matrix per tile position."""
    g = torch.tensor(_G, dtype=torch.float64)
    transformed = torch.einsum("ak,ockl,bl->aboc", g, weight.detach().double(), g)  # (6, 6, K, C)
    k, c = weight.shape[:2]
    return transformed.reshape(TILE * TILE, k, c).transpose(1, 2).contiguous().to(weight.dtype)


CHUNK_ELEMENTS = 2**25  # tile rows per pass are capped so the transformed tiles stay near 128 MB (fp32)


def winograd_conv2d(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor | None, padding: int,
                    relu: bool = False, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """3x3 stride-1 convolution of NHWC ``x`` (N, H, W, C) with ``winograd_filters``; NHWC out.

    The transformed tiles take 36/16 of the input's size (and as much again while transformed), so
    rows of tiles are processed in chunks of at most ``chunk_elements`` transformed values: memory
    stays bounded for large tiles and batches.
    """
    n, h, w, c = x.shape
    k = filters.shape[-1]
    out_h, out_w = h + 2 * padding - 2, w + 2 * padding - 2
    rows, cols = -(-out_h // OUT), -(-out_w // OUT)
    padded = F.pad(x, (0, 0, padding, OUT * cols + 2 - w - padding, padding, OUT * rows + 2 - h - padding))
    input_transform, output_transform = _kron(_BT, x.dtype, x.device), _kron(_AT, x.dtype, x.device)
    out = torch.empty(n, OUT * rows, OUT * cols, k, dtype=x.dtype, device=x.device)
    s = padded.stride()
    step = max(1, chunk_elements // (TILE * TILE * n * cols * max(c, k)))
    for first in range(0, rows, step):
        count = min(step, rows - first)
        band = padded[:, OUT * first:OUT * (first + count) + 2]  # every 6x6 tile, stride 4, as a view
        tiles = band.as_strided((TILE, TILE, n, count, cols, c), (s[1], s[2], s[0], OUT * s[1], OUT * s[2], s[3]))
        transformed = input_transform @ tiles.reshape(TILE * TILE, -1)
        products = torch.bmm(transformed.view(TILE * TILE, n * count * cols, c), filters)
        blocks = output_transform @ products.view(TILE * TILE, -1)  # (16, tiles * K)
        target = out[:, OUT * first:OUT * (first + count)].view(n, count, OUT, cols, OUT, k)
        target.copy_(blocks.view(OUT, OUT, n, count, cols, k).permute(2, 3, 0, 4, 1, 5))
    out = out[:, :out_h, :out_w]
    if bias is not None:
        out = out.add_(bias)
    return out.relu_() if relu else out


WINOGRAD_ERROR_FACTOR = 32  # accepted error against float64, in units of PyTorch's own float32 conv error
AUTOTUNE_MIN_CHANNELS = 128  # with autotune, the narrowest convs timed (0.63x at 128 on the AVX2 CPU)
FIXED_MIN_CHANNELS = 256  # without autotune: the rule measured on the AVX2 CPU (see the module docstring)


def _winograd_candidates(filters: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int,
                         height: int, width: int) -> tuple:
    """One conv both ways on a random NHWC slice: oneDNN's direct conv (plain) and Winograd (fast), and
    Winograd's accuracy against float64 relative to the direct conv's."""
    rng = torch.Generator().manual_seed(0)  # its own: the caller's random stream is untouched
    x = torch.randn(1, weight.shape[1], height, width, generator=rng).contiguous(
        memory_format=torch.channels_last)
    nhwc = x.permute(0, 2, 3, 1)

    def accurate() -> bool:
        reference = F.conv2d(x.double(), weight.double(), bias.double(), padding=padding)
        fast = winograd_conv2d(nhwc, filters, bias, padding).permute(0, 3, 1, 2)
        plain = F.conv2d(x, weight, bias, padding=padding)
        return as_accurate(fast, plain, reference, factor=WINOGRAD_ERROR_FACTOR)

    return (lambda: winograd_conv2d(nhwc, filters, bias, padding),
            lambda: F.conv2d(x, weight, bias, padding=padding), accurate)


class WinogradConv2d(nn.Module):
    """Inference replacement of a 3x3, stride-1 ``nn.Conv2d`` (optionally with batch norm folded in and
    ReLU fused); takes and returns NCHW tensors, computing in NHWC (channels_last memory). With
    ``autotune`` it runs the direct conv (folded weights) where that measured faster on this machine."""

    def __init__(self, conv: nn.Conv2d, batch_norm: nn.BatchNorm2d | None = None, relu: bool = False,
                 autotune: bool = False):
        super().__init__()
        weight = conv.weight.detach()
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=weight.dtype)
        if batch_norm is not None:  # y = (conv - mean) * gamma / std + beta, folded into weights and bias
            scale = batch_norm.weight.detach() / torch.sqrt(batch_norm.running_var + batch_norm.eps)
            weight = weight * scale[:, None, None, None]
            bias = (bias - batch_norm.running_mean) * scale + batch_norm.bias.detach()
        self.register_buffer("filters", winograd_filters(weight))
        self.register_buffer("bias", bias.clone())
        # the folded direct-conv weights, kept for the direct path only when autotune may choose it
        self.register_buffer("weight", weight.clone().contiguous(memory_format=torch.channels_last)
                             if autotune else None)
        self.padding = int(conv.padding[0])
        self.relu = relu
        self.autotune = autotune

    @torch.compiler.disable  # a Python-side decision (environment, cache file): not for dynamo to trace
    def _winograd_wins(self, x: torch.Tensor) -> bool:
        if not self.autotune or not tuning.env_allows():
            return True
        height, width = tuning.measured_slice(x.shape[2], x.shape[3], pixels=2**16)
        key = (f"winograd3x3 C{x.shape[1]} K{self.bias.shape[0]} pad{self.padding} {height}x{width}")
        return tuning.choose(key, lambda: _winograd_candidates(self.filters, self.weight, self.bias, self.padding,
                                                               height, width))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._winograd_wins(x):
            out = F.conv2d(x.contiguous(memory_format=torch.channels_last), self.weight, self.bias,
                           padding=self.padding)
            return out.relu_() if self.relu else out
        nhwc = x.permute(0, 2, 3, 1).contiguous()  # free when x is channels_last
        return winograd_conv2d(nhwc, self.filters, self.bias, self.padding, self.relu).permute(0, 3, 1, 2)


def convertible(conv: nn.Module, min_channels: int) -> bool:
    """A plain 3x3, stride-1, ungrouped 2D conv with zero padding 0 or 1 and enough input channels."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.padding in ((0, 0), (1, 1)) and conv.in_channels >= min_channels)


def accelerate_convs(model: nn.Module, min_channels: int | None = None, autotune: bool = False) -> int:
    """Swap the eligible 3x3 convs of ``model`` (in eval mode) for ``WinogradConv2d``; returns how many.

    Inside ``nn.Sequential`` blocks an eval-mode ``BatchNorm2d`` right after the conv is folded in and a
    ReLU after that is fused, both replaced by identities. Call on a model used for inference only.
    ``min_channels`` (None: 128 with ``autotune``, which then times each conv; 256 without) is the
    narrowest conv converted.
    """
    autotune = autotune and tuning.env_allows()
    if min_channels is None:
        min_channels = AUTOTUNE_MIN_CHANNELS if autotune else FIXED_MIN_CHANNELS
    replaced = 0
    for block in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        layers = list(block.children())
        for i, layer in enumerate(layers):
            if not convertible(layer, min_channels):
                continue
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            foldable = type(nxt) is nn.BatchNorm2d and not nxt.training and nxt.running_mean is not None
            norm = nxt if foldable else None
            after = i + 2 if foldable else i + 1  # where a fusable ReLU would stand
            relu = after < len(layers) and type(layers[after]) is nn.ReLU
            block[i] = WinogradConv2d(layer, norm, relu, autotune)
            if foldable:
                block[i + 1] = nn.Identity()
            if relu:
                block[after] = nn.Identity()
            replaced += 1
    return replaced
