"""The U-Net of Ronneberger, Fischer and Brox (2015), for 2D images and (Cicek 2016) 3D volumes.

One class covers the paper's network (``padding="valid"``, no normalisation, 2x2 up-convolutions;
a 572x572 tile gives a 388x388 map) and the modern padded variant (``padding="same"``: output size =
input size). It returns logits; activations live in the losses and in post-processing.

Example::

    net = UNet(in_channels=1, out_channels=2, padding="valid")   # the paper: 31,030,658 parameters
    net(torch.zeros(1, 1, 572, 572)).shape                        # (1, 2, 388, 388)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unetkit.models import blocks
from unetkit.models.sizes import level_pool_sizes


class UNet(nn.Module):
    """U-Net with ``depth`` resolution levels and ``base_channels * 2**level`` channels per level.

    Args:
        in_channels: image channels (1 gray, 3 RGB).
        out_channels: logits per pixel (2 for binary softmax, K classes, or regression channels).
        spatial_dims: 2 (images) or 3 (volumes).
        depth: resolution levels; 5 in the paper (4 poolings, 64 -> 1024 channels).
        base_channels: channels of the first level (paper: 64).
        padding: ``valid`` (paper: unpadded convs, skip centre-cropped) or ``same``.
        norm: ``none`` (paper) | ``batch`` | ``instance`` | ``group``.
        upsample: ``transpose`` (paper: 2x2 up-conv) | ``bilinear`` (interpolation + 1x1 conv).
        dropout: dropout rate at the end of the contracting path (paper: 0.5; 0 = none).
        pool_sizes: per-level pooling factors, e.g. ``[[1, 2, 2], [2, 2, 2], ...]`` for anisotropic
            stacks; ``depth - 1`` entries; default 2 on every axis.
        init: ``default`` (PyTorch) or ``he`` (the paper: normal with std sqrt(2 / fan_in)).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        spatial_dims: int = 2,
        depth: int = 5,
        base_channels: int = 64,
        padding: str = "valid",
        norm: str = "none",
        upsample: str = "transpose",
        dropout: float = 0.0,
        pool_sizes: Sequence[Sequence[int]] | None = None,
        init: str = "default",
    ):
        super().__init__()
        blocks.check_choice("padding", padding, blocks.PADDINGS)
        blocks.check_choice("norm", norm, blocks.NORMS)
        blocks.check_choice("upsample", upsample, blocks.UPSAMPLES)
        blocks.check_choice("init", init, ("default", "he"))
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3; got {spatial_dims}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        pools = level_pool_sizes(depth, spatial_dims, pool_sizes)
        widths = [base_channels * 2**level for level in range(depth)]  # paper: 64, 128, 256, 512, 1024

        self.spatial_dims = spatial_dims
        self.padding = padding
        self.first = blocks.DoubleConv(spatial_dims, in_channels, widths[0], padding, norm)
        self.downs = nn.ModuleList(
            blocks.Down(spatial_dims, widths[i], widths[i + 1], pools[i], padding, norm) for i in range(depth - 1)
        )
        self.bottleneck_dropout = blocks.dropout(spatial_dims, dropout)
        self.ups = nn.ModuleList(
            blocks.Up(spatial_dims, widths[i + 1], widths[i], pools[i], padding, norm, upsample)
            for i in reversed(range(depth - 1))
        )
        self.head = blocks.conv(spatial_dims, widths[0], out_channels, 1, 0)
        if init == "he":
            self.apply(blocks.he_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, *S) -> logits (B, out_channels, *S_out); S_out = S for same padding."""
        skips = [self.first(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = self.bottleneck_dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
