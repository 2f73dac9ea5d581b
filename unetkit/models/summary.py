"""Model facts for `unetkit info`: sizes, parameters, FLOPs and receptive field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models import sizes
from unetkit.models.registry import build_model, resolve_model_config


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the paper's net: 31,030,658)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Floating-point operations of one forward pass (2 per multiply-add of conv layers).

    Runs the model on PyTorch's ``meta`` device, so shapes are traced without computing anything:
    the paper's net at 572x572 costs no time and no memory here.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel = math.prod(module.kernel_size)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            # every input pixel scatters in_ch x out_ch x kernel multiply-adds
            total += 2 * inputs[0][0].numel() * module.out_channels * kernel // module.groups
        else:
            total += 2 * output[0].numel() * (module.in_channels // module.groups) * kernel

    meta_model = model.to("meta") if next(model.parameters()).device.type != "meta" else model
    handles = [m.register_forward_hook(hook) for m in meta_model.modules()
               if isinstance(m, nn.modules.conv._ConvNd)]
    try:
        with torch.no_grad():
            meta_model.eval()(torch.empty(*input_shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def model_info(config: ModelConfig, input_size: Sequence[int]) -> dict[str, Any]:
    """Everything `unetkit info` reports for a model config and an input size (spatial).

    Includes the estimated peak memory of a training step and of a prediction pass for one input of
    that size (``unetkit.models.memory``; float32, batch 1).
    """
    from unetkit.models.memory import estimate_bytes

    config = resolve_model_config(config)
    with torch.device("meta"):
        model = build_model(config)
    spatial_dims = config.spatial_dims
    if len(input_size) == 1:
        input_size = tuple(input_size) * spatial_dims
    if len(input_size) != spatial_dims:
        raise InputError(f"input size needs {spatial_dims} values (one, or one per axis of a {spatial_dims}D "
                         f"network), got {list(input_size)}")
    out = sizes.output_size(input_size, config.depth, config.padding, config.pool_sizes or None)
    info: dict[str, Any] = {
        "model": config.name,
        "spatial_dims": spatial_dims,
        "padding": config.padding,
        "depth": config.depth,
        "base_channels": config.base_channels,
        "channels": ([64, 128, 256, 512, 512, 512] if config.name == "ternaus11"  # VGG11 levels, then the centre
                     else [config.base_channels * 2**level for level in range(config.depth)]),
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "input_size": list(input_size),
        "output_size": list(out),
        "parameters": count_parameters(model),
        "gflops": round(forward_flops(model, (1, config.in_channels, *input_size)) / 1e9, 3),
        "receptive_field": list(sizes.receptive_field(
            config.depth, config.padding, spatial_dims, config.pool_sizes or None, config.upsample)),
        "memory_train_mb": round(estimate_bytes(config, (1, config.in_channels, *input_size), True) / 2**20, 1),
        "memory_predict_mb": round(estimate_bytes(config, (1, config.in_channels, *input_size), False) / 2**20, 1),
    }
    if config.name == "ternaus11":
        from unetkit.models.ternaus import receptive_field

        info["receptive_field"] = [receptive_field()] * spatial_dims
    if config.padding == "valid":
        info["margin_per_side"] = list(sizes.valid_margin(config.depth, spatial_dims, config.pool_sizes or None))
    else:
        info["divisible_by"] = list(sizes.same_divisor(config.depth, spatial_dims, config.pool_sizes or None))
    return info
