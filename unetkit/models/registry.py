"""Build a network from a ``ModelConfig``: the one place that maps model names to classes."""

from __future__ import annotations

import dataclasses

from torch import nn

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models.unet import UNet

MODEL_NAMES = ("unet", "unet3d", "ternaus11")


def resolve_model_config(config: ModelConfig) -> ModelConfig:
    """``config`` with the values its named model fixes, so sizes, tiling and checkpoints see the truth.

    unet3d: ``spatial_dims=3``. ternaus11 (VGG11 encoder): 2D, same padding, depth 6 (five poolings, so
    inputs are multiples of 32), first-level width 64, no normalisation or dropout layers. Settings that
    cannot hold for ternaus11 (valid padding, 3D, pool_sizes) raise an InputError.
    """
    if config.name not in MODEL_NAMES:
        raise InputError(f"unknown model '{config.name}'; choose one of {', '.join(MODEL_NAMES)}")
    if config.name != "ternaus11" and (config.encoder_weights or config.freeze_encoder_epochs):
        raise InputError(
            f"model.encoder_weights / model.freeze_encoder_epochs need a pretrained encoder; model "
            f"'{config.name}' has none: use model.name=ternaus11 or remove them"
        )
    if config.name == "unet3d":
        return dataclasses.replace(config, spatial_dims=3)
    if config.name == "ternaus11":
        if config.padding != "same" or config.spatial_dims != 2 or config.pool_sizes:
            raise InputError(
                "ternaus11 is a 2D network with padded convolutions (VGG11 encoder): remove model.padding=valid, "
                "model.spatial_dims=3 and model.pool_sizes (the paper recipe sets valid padding: use the default "
                "recipe)"
            )
        return dataclasses.replace(config, depth=6, base_channels=64, norm="none", dropout=0.0, upsample="transpose")
    return config


def model_spatial_dims(config: ModelConfig) -> int:
    """Spatial dimensions of the named model: 3 for unet3d, 2 for ternaus11, else ``config.spatial_dims``."""
    return resolve_model_config(config).spatial_dims


def build_model(config: ModelConfig) -> nn.Module:
    """Instantiate the network described by ``config`` (names: unet, unet3d, ternaus11), in float32 whatever
    ``torch.set_default_dtype`` a caller chose (images reach it as float32; float64 weights refused them)."""
    return _network(resolve_model_config(config)).float()


def _network(config: ModelConfig) -> nn.Module:
    if config.name == "ternaus11":
        from unetkit.models.ternaus import TernausNet11

        return TernausNet11(in_channels=config.in_channels, out_channels=config.out_channels, init=config.init)
    spatial_dims = config.spatial_dims
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
