"""Run the CPU autotune for the layers of one configuration ahead of time (``unetkit tune-cpu``).

Training and prediction tune themselves at first use (``unetkit.cpu.autotune``); this runs one training
step and one prediction batch of the configured 2D net with autotune on, so that every shape class of
that run is measured now (and cached), not inside the first epoch or the first image.
"""

from __future__ import annotations

import torch

from unetkit.config import RunConfig
from unetkit.cpu import autotune
from unetkit.inference.winograd import accelerate_convs
from unetkit.models.layout import to_channels_last
from unetkit.models.registry import build_model, model_spatial_dims
from unetkit.training.cpu_convs import accelerate_training_convs


def tune_for_config(config: RunConfig) -> dict[str, dict]:
    """Measure (or read from the cache) every fast-path decision a CPU training run and a tiled prediction
    with ``config`` will take; returns this machine's whole table {shape key: decision fields}. 3D and 1D
    nets have no fast path to tune: their table is returned as it is."""
    from unetkit.training.loop import patch_sizes

    if model_spatial_dims(config.model) == 2 and autotune.env_allows():
        input_size, _ = patch_sizes(config)
        model = to_channels_last(build_model(config.model).train(), 2)
        if config.train.gemm_convs:
            accelerate_training_convs(model, autotune=True)
            x = torch.randn(1, config.model.in_channels, *input_size).contiguous(memory_format=torch.channels_last)
            model(x).float().sum().backward()  # one step: each layer decides at its first call
        if config.inference.winograd:
            tile = [config.inference.tile_size] * 2 if config.model.padding == "same" else list(input_size)
            net = to_channels_last(build_model(config.model).eval(), 2)
            accelerate_convs(net, autotune=True)
            with torch.inference_mode():
                net(torch.randn(config.inference.batch_size, config.model.in_channels, *tile).contiguous(
                    memory_format=torch.channels_last))
    return autotune.load_table().get(autotune.machine_key(), {})
