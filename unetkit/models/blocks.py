"""Layer factories and U-Net building blocks that work for 1, 2 and 3 spatial dimensions.

Every block takes ``spatial_dims`` and picks ``nn.Conv2d`` or ``nn.Conv3d`` (and the matching pooling,
normalisation and up-sampling), so one U-Net class serves images and volumes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetkit.errors import InputError

NORMS = ("none", "batch", "instance", "group")
UPSAMPLES = ("transpose", "bilinear")
PADDINGS = ("valid", "same")

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise a clear error when an option is not one of its allowed values."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got '{value}'")


def conv(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, padding: int) -> nn.Module:
    """A convolution of the right dimensionality (bias is kept: the paper's net has no norm)."""
    return _CONV[spatial_dims](in_channels, out_channels, kernel_size, padding=padding)


def norm(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    """Normalisation layer by name; ``none`` is an identity (the paper's configuration)."""
    check_choice("norm", kind, NORMS)
    if kind == "batch":
        return _BATCH[spatial_dims](channels)
    if kind == "instance":
        return _INSTANCE[spatial_dims](channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class DoubleConv(nn.Sequential):
    """Two 3x3 (x3) convolutions, each followed by normalisation and ReLU.

    With ``padding="valid"`` every conv trims one pixel per side: a level loses 4 px per axis
    (572 -> 570 -> 568 in the paper's first level).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, padding: str, norm_kind: str):
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers += [
                conv(spatial_dims, channels_in, out_channels, 3, pad),
                norm(norm_kind, spatial_dims, out_channels),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


def center_crop(tensor: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Crop the spatial centre of ``tensor`` (B, C, *S) to ``spatial_shape`` (the paper's skip crop)."""
    slices = [slice(None), slice(None)]
    for have, want in zip(tensor.shape[2:], spatial_shape, strict=True):
        start = (have - want) // 2
        slices.append(slice(start, start + want))
    return tensor[tuple(slices)]


class Down(nn.Module):
    """Max-pool (2x2, or per-axis factors for anisotropic volumes), then a DoubleConv."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, pool: Sequence[int],
                 padding: str, norm_kind: str):
        super().__init__()
        self.pool = _POOL[spatial_dims](kernel_size=tuple(pool), stride=tuple(pool))
        self.convs = DoubleConv(spatial_dims, in_channels, out_channels, padding, norm_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(self.pool(x))


class Up(nn.Module):
    """Up-sample, concatenate the (centre-cropped) skip, then a DoubleConv.

    ``transpose``: a 2x2 up-convolution that halves the channels (the paper). ``bilinear``:
    (bi/tri)linear interpolation followed by a 1x1 conv that halves the channels.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int],
                 padding: str, norm_kind: str, upsample: str):
        super().__init__()
        check_choice("upsample", upsample, UPSAMPLES)
        scale = tuple(scale)
        if upsample == "transpose":
            self.up = _CONV_T[spatial_dims](in_channels, out_channels, kernel_size=scale, stride=scale)
        else:
            mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial_dims]
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=tuple(float(s) for s in scale), mode=mode, align_corners=False),
                conv(spatial_dims, in_channels, out_channels, 1, 0),
            )
        self.convs = DoubleConv(spatial_dims, 2 * out_channels, out_channels, padding, norm_kind)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if skip.shape[2:] != x.shape[2:]:
            skip = center_crop(skip, x.shape[2:])
        return self.convs(torch.cat([skip, x], dim=1))


def dropout(spatial_dims: int, rate: float) -> nn.Module:
    """Channel dropout at the end of the contracting path (identity when rate is 0)."""
    return _DROPOUT[spatial_dims](rate) if rate > 0 else nn.Identity()


def he_init(module: nn.Module) -> None:
    """The paper's initialisation: Gaussian with std sqrt(2 / N), N = inputs of one neuron."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                           nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
