"""Allowed values of every configuration key, checked when a ``RunConfig`` is built.

A bad value (a CLI option, a ``--set`` override, a YAML file, a checkpoint) is refused before any image is
read, with one line naming the key, the value and what is allowed, e.g.
``config key inference.batch_size=0: expected an integer >= 1``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from unetkit.config import TASKS
from unetkit.errors import InputError

# key: (kind, minimum, maximum, bounds) with kind "int" | "float"; bounds "[]" closed, "[)" max excluded,
# "()" both excluded. Missing maximum: none. Keys not listed are free (paths, names, seeds).
NUMBERS: dict[str, tuple[str, float, float | None, str]] = {
    "data.val_fraction": ("float", 0, 1, "[)"),
    "data.normalize_low": ("float", 0, 100, "[]"),
    "data.normalize_high": ("float", 0, 100, "[]"),
    "data.patch_size": ("int", 1, None, "[]"),
    "data.foreground_fraction": ("float", 0, 1, "[]"),
    "data.samples_per_epoch": ("int", 1, None, "[]"),
    "data.num_workers": ("int", 0, 256, "[]"),
    "data.boundary_width": ("int", 0, None, "[]"),
    "data.w0": ("float", 0, None, "[]"),
    "data.sigma": ("float", 0, None, "()"),
    "data.small_object_area": ("float", 0, None, "[]"),
    "data.ignore_label": ("int", 0, None, "[]"),
    "augment.elastic_grid": ("int", 2, None, "[]"),
    "augment.elastic_sigma": ("float", 0, None, "[]"),
    "augment.rotation_degrees": ("float", 0, 180, "[]"),
    "augment.shift": ("float", 0, 1, "[]"),
    "augment.zoom": ("float", 0, 1, "[]"),
    "augment.invert": ("float", 0, 1, "[]"),
    "augment.color": ("float", 0, 1, "[]"),
    "model.spatial_dims": ("int", 2, 3, "[]"),
    "model.in_channels": ("int", 1, 4096, "[]"),
    "model.out_channels": ("int", 1, 4096, "[]"),
    "model.depth": ("int", 1, 10, "[]"),
    # 1024 base channels is 16x the paper's 64; 100000 would ask for hundreds of GB of weights
    "model.base_channels": ("int", 1, 1024, "[]"),
    "model.dropout": ("float", 0, 1, "[)"),
    "model.freeze_encoder_epochs": ("int", 0, None, "[]"),
    "loss.ce_weight": ("float", 0, None, "[]"),
    "loss.dice_weight": ("float", 0, None, "[]"),
    "loss.lovasz_weight": ("float", 0, None, "[]"),
    "train.epochs": ("int", 1, None, "[]"),
    "train.batch_size": ("int", 1, None, "[]"),
    "train.lr": ("float", 0, None, "()"),
    "train.weight_decay": ("float", 0, None, "[]"),
    "train.momentum": ("float", 0, 1, "[)"),
    "train.warmup_epochs": ("int", 0, None, "[]"),
    "train.time_budget_s": ("float", 0, None, "[]"),
    "train.val_every": ("int", 1, None, "[]"),
    "train.overlays": ("int", 0, None, "[]"),
    "train.grad_clip": ("float", 0, None, "[]"),
    "train.memory_limit_gb": ("float", 0, None, "[]"),
    "inference.tile_size": ("int", 1, None, "[]"),
    "inference.overlap": ("float", 0, 1, "[)"),
    "inference.batch_size": ("int", 1, None, "[]"),
    "inference.threshold": ("float", 0, 1, "[]"),
    "inference.memory_limit_gb": ("float", 0, None, "[]"),
    "postprocess.threshold": ("float", 0, 1, "[]"),
    "postprocess.seed_threshold": ("float", 0, 1, "[]"),
    "postprocess.min_size": ("int", 0, None, "[]"),
    "postprocess.min_seed_size": ("int", 0, None, "[]"),
    "postprocess.min_distance": ("int", 1, None, "[]"),
    "postprocess.min_object_score": ("float", 0, 1, "[)"),
    "postprocess.upscale_below_area": ("float", 0, None, "[]"),
    # each image is predicted and post-processed ~36 times (the grid): a few dozen keep the end of a run short
    "postprocess.tune_images": ("int", 1, 1000, "[]"),
    "postprocess.tune_min_objects": ("int", 0, None, "[]"),
    "train.seed": ("int", 0, 2**32 - 1, "[]"),  # numpy's and torch's seed range
    "data.split_seed": ("int", 0, 2**32 - 1, "[]"),
}

# key: allowed words
WORDS: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "data.layout": ("auto", "folders", "dsb", "isbi-stack", "class-folders"),
    "data.target": ("auto", "binary", "three-class", "distance"),
    "data.target_norm": ("percentile", "none"),
    "data.nan_policy": ("error", "zero", "nearest"),
    "model.name": ("unet", "unet3d", "ternaus11"),
    "model.padding": ("valid", "same"),
    "model.norm": ("none", "batch", "instance", "group"),
    "model.upsample": ("transpose", "bilinear"),
    "model.init": ("default", "he"),
    "loss.regression": ("l1", "mse", "smooth_l1"),
    "train.optimizer": ("adamw", "sgd"),
    "train.scheduler": ("cosine", "cosine-time", "constant"),
    "train.budget_clock": ("wall", "cpu"),
    "train.channels_last": ("auto", "true", "false"),
    "inference.blend": ("gaussian", "constant"),
    "inference.precision": ("fp32", "bf16"),
    "train.precision": ("auto", "fp32", "bf16"),
    "postprocess.method": ("auto", "components", "watershed"),
}

# list keys whose items must be positive integers / non-negative numbers
POSITIVE_INT_LISTS = ("data.patch_shape", "inference.tile_shape")
NON_NEGATIVE_LISTS = ("loss.class_weights",)
FINITE_LISTS = ("postprocess.object_weights",)


def _describe(kind: str, low: float, high: float | None, bounds: str) -> str:
    noun = "an integer" if kind == "int" else "a number"
    lower = f"> {low:g}" if bounds[0] == "(" else f">= {low:g}"
    if high is None:
        return f"{noun} {lower}"
    left = "(" if bounds[0] == "(" else "["
    right = ")" if bounds[1] == ")" else "]"
    return f"{noun} in {left}{low:g}, {high:g}{right}"


def _check_number(key: str, value: Any, rule: tuple[str, float, float | None, str]) -> None:
    kind, low, high, bounds = rule
    expected = _describe(kind, low, high, bounds)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
        raise InputError(f"config key {key}={value!r}: expected {expected}")
    if not math.isfinite(value):
        raise InputError(f"config key {key}={value!r}: expected {expected}")
    too_low = value <= low if bounds[0] == "(" else value < low
    too_high = high is not None and (value >= high if bounds[1] == ")" else value > high)
    if too_low or too_high:
        raise InputError(f"config key {key}={value!r}: expected {expected}")


def _values(config: Any, prefix: str = "") -> dict[str, Any]:
    """Flat {dotted key: value} of a nested config dataclass."""
    flat = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            flat.update(_values(value, f"{prefix}{item.name}."))
        else:
            flat[f"{prefix}{item.name}"] = value
    return flat


def _check_types(config: Any, prefix: str = "") -> None:
    """Each value has its default's type (ints where floats are expected are accepted and converted)."""
    default = type(config)()
    for item in dataclasses.fields(config):
        value, expected = getattr(config, item.name), getattr(default, item.name)
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(expected):
            _check_types(value, f"{key}.")
            continue
        if isinstance(expected, bool):
            ok = isinstance(value, bool)
        elif isinstance(expected, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                setattr(config, item.name, float(value))
        elif isinstance(expected, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(expected, list):
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise InputError(f"config key {key}={value!r}: expected {type(expected).__name__} like {expected!r}")


def validate_config(config: Any) -> Any:
    """Raise an ``InputError`` naming the first bad key of a ``RunConfig``; return the config unchanged."""
    _check_types(config)
    values = _values(config)
    for key, rule in NUMBERS.items():
        _check_number(key, values[key], rule)
    for key, words in WORDS.items():
        if values[key] not in words:
            raise InputError(f"config key {key}={values[key]!r}: expected one of {', '.join(words)}")
    for key in POSITIVE_INT_LISTS:
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values[key]):
            raise InputError(f"config key {key}={values[key]!r}: expected a list of integers >= 1, e.g. [32, 96, 96]")
    for key in NON_NEGATIVE_LISTS:
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
               for v in values[key]):
            raise InputError(f"config key {key}={values[key]!r}: expected a list of numbers >= 0")
    for key in FINITE_LISTS:
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values[key]):
            raise InputError(f"config key {key}={values[key]!r}: expected a list of finite numbers")
    pools = values["model.pool_sizes"]
    if any(not isinstance(level, list) or not level or any(isinstance(f, bool) or not isinstance(f, int) or f < 1
                                                           for f in level) for level in pools):
        raise InputError(f"config key model.pool_sizes={pools!r}: expected one list of pooling factors per level, "
                         "e.g. [[1, 2, 2], [2, 2, 2]] (one factor per axis), or [] for 2 on every axis")
    device = values["train.device"]
    if device != "auto" and device.split(":")[0] not in ("cpu", "cuda"):
        raise InputError(f"config key train.device={device!r}: expected auto, cpu, cuda or cuda:N")
    if values["data.normalize_low"] >= values["data.normalize_high"]:
        raise InputError(f"config keys data.normalize_low={values['data.normalize_low']!r} and data.normalize_high="
                         f"{values['data.normalize_high']!r}: expected low < high (percentiles)")
    divisor = 2 ** (values["model.depth"] - 1)  # a same-padded net pools depth-1 times by 2
    if values["inference.tile_size"] < divisor:
        raise InputError(f"config key inference.tile_size={values['inference.tile_size']!r}: expected an integer "
                         f">= {divisor} (2**(model.depth-1) for a depth-{values['model.depth']} network)")
    return config


def validate_training_config(config: Any) -> Any:
    """``validate_config`` plus the rules across keys that only hold for a complete training config (a
    YAML file and later overrides may set them in either order, so they are checked when training starts)."""
    validate_config(config)
    train = config.train
    if train.scheduler == "cosine-time" and train.time_budget_s <= 0:
        raise InputError(f"config key train.scheduler='cosine-time' needs train.time_budget_s > 0 (got "
                         f"{train.time_budget_s:g}); set a time budget (--time-budget) or use the cosine schedule")
    if config.data.samples_per_epoch < train.batch_size:  # the loader drops a short last batch: no step at all
        raise InputError(f"config key data.samples_per_epoch={config.data.samples_per_epoch} is smaller than "
                         f"train.batch_size={train.batch_size}: an epoch would take no training step; raise "
                         "data.samples_per_epoch or lower train.batch_size")
    if config.data.small_object_area > 0 and not config.data.weight_map:
        raise InputError(f"config key data.small_object_area={config.data.small_object_area:g} weights small objects "
                         "in the weight map, which is off; set data.weight_map=true or data.small_object_area=0")
    return config
