"""Build a network from a ``ModelConfig``: the one place that maps model names to classes."""

from __future__ import annotations

from torch import nn

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models.unet import UNet

MODEL_NAMES = ("unet", "unet3d")


def build_model(config: ModelConfig) -> nn.Module:
    """Instantiate the network described by ``config`` (names: unet, unet3d)."""
    if config.name not in MODEL_NAMES:
        raise InputError(f"unknown model '{config.name}'; choose one of {', '.join(MODEL_NAMES)}")
    spatial_dims = 3 if config.name == "unet3d" else config.spatial_dims
    return UNet(
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        spatial_dims=spatial_dims,
        depth=config.depth,
        base_channels=config.base_channels,
        padding=config.padding,
        norm=config.norm,
        upsample=config.upsample,
        dropout=config.dropout,
        pool_sizes=config.pool_sizes or None,
        init=config.init,
    )
