"""Recipes: named sets of config values, applied on top of the defaults and under user overrides.

Order of precedence (later wins): dataclass defaults < recipe < YAML config file < ``--set`` overrides.
The resolved values are saved as ``config.yaml`` in the run folder, so a run shows what it used.
"""

from __future__ import annotations

from typing import Any

from unetkit.config import ModelConfig, RunConfig, apply_overrides, from_dict, read_config_file, to_dict
from unetkit.errors import InputError

# base channels of a U-Net trained on a CPU when nobody chose a width (``machine_network``; the paper's 64
# otherwise): measured against 32 at equal CPU time on DSB 2018 (BENCHMARKS.md, "Network width on a CPU")
CPU_BASE_CHANNELS = 16

RECIPES: dict[str, dict[str, Any]] = {
    # modern defaults: padded convs with batch norm, AdamW + cosine, CE + Dice (the dataclass defaults)
    "default": {},
    # Ronneberger et al. 2015, sections 3 and 3.1
    "paper": {
        "model.padding": "valid",  # unpadded 3x3 convs, centre-cropped skips (572 -> 388)
        "model.norm": "none",  # the paper predates batch norm
        "model.upsample": "transpose",  # 2x2 up-convolution halving the channels
        "model.dropout": 0.5,  # "drop-out layers at the end of the contracting path"
        "model.init": "he",  # Gaussian with std sqrt(2/N)
        "model.depth": 5,
        "model.base_channels": 64,
        "data.patch_size": 572,  # "large input tiles", batch of a single image
        "data.weight_map": True,  # eq. 2: class balance + separation borders
        "data.w0": 10.0,
        "data.sigma": 5.0,
        "data.foreground_fraction": 0.0,  # tiles anywhere; the weight map balances the classes
        "augment.elastic": True,  # coarse 3x3 grid, 10 px std, bicubic interpolation
        "augment.elastic_grid": 3,
        "augment.elastic_sigma": 10.0,
        "augment.rotation_degrees": 10.0,  # "shift and rotation invariance"
        "augment.shift": 0.05,
        "augment.intensity": True,  # "gray value variations"
        "loss.ce_weight": 1.0,  # pixel-wise softmax cross-entropy, eq. 1
        "loss.dice_weight": 0.0,
        "train.optimizer": "sgd",
        "train.momentum": 0.99,  # "a high momentum (0.99)"
        "train.lr": 0.01,
        "train.weight_decay": 0.0,
        "train.scheduler": "constant",
        "train.warmup_epochs": 0,
        "train.batch_size": 1,  # "favor large input tiles over a large batch size"
    },
}


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resolve_config(recipe: str = "default", config_file: str | None = None,
                   overrides: list[str] | None = None, base: RunConfig | None = None) -> RunConfig:
    """Defaults, then the recipe, then a YAML file's values, then ``section.key=value`` overrides.

    A time budget without a schedule chosen anywhere (recipe, file, override) anneals over the budget:
    the epoch-based ``cosine`` default becomes ``cosine-time`` (see ``budget_schedule``). Training on a CPU
    without a width chosen anywhere uses ``CPU_BASE_CHANNELS`` instead of the paper's 64 (see
    ``machine_network``; it prints one line saying so).
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe '{recipe}'; choose one of {', '.join(RECIPES)}")
    config = apply_overrides(base or RunConfig(), {"recipe": recipe, **RECIPES[recipe]})
    chosen = set(RECIPES[recipe])
    by_user: set[str] = set()  # keys the config file or the overrides set
    if config_file:
        written = read_config_file(config_file)  # read once: the keys it sets, and their checked values
        file_values = _flatten(to_dict(from_dict(written)))
        explicit = _flatten(written)
        config = apply_overrides(config, {k: file_values[k] for k in explicit})
        by_user |= set(explicit)
    overrides = overrides or []
    config = apply_overrides(config, overrides)
    by_user |= set(overrides) if isinstance(overrides, dict) else {o.partition("=")[0].strip() for o in overrides}
    chosen |= by_user
    if config.model.name == "ternaus11":  # its VGG11 encoder fixes the geometry (models.registry)
        from unetkit.models.registry import resolve_model_config

        fixed = resolve_model_config(config.model)
        wrong = [f"model.{key}={getattr(config.model, key)}" for key in ("base_channels", "depth")
                 if f"model.{key}" in by_user and getattr(config.model, key) != getattr(fixed, key)]
        if wrong:
            raise InputError(f"{', '.join(wrong)}: ternaus11's VGG11 encoder fixes depth {fixed.depth} and "
                             f"{fixed.base_channels} base channels; leave these out, or train --model unet to choose "
                             "them")
    if config.train.init_weights:  # fine-tuning keeps the checkpoint's network: a different choice is refused
        from unetkit.training.init_weights import refuse_chosen_network

        refuse_chosen_network(config, by_user)
    config = budget_schedule(config, chosen)
    from unetkit.devices import device_type, is_first_process  # imports torch: only when a config is resolved

    config, note = machine_network(config, chosen, device_type(config.train.device))
    if note and is_first_process():  # under torchrun the first process says it
        print(note, flush=True)
    return config


def budget_schedule(config: RunConfig, chosen: set[str]) -> RunConfig:
    """``cosine-time`` instead of the default ``cosine`` when a time budget is set and nobody chose the
    schedule (``chosen``: the keys set by recipe, file or overrides). Why: a run stopped by its budget
    after 30 of 1000 planned epochs would otherwise end at ~99.8 % of the peak learning rate, unannealed.
    """
    if config.train.time_budget_s > 0 and config.train.scheduler == "cosine" and "train.scheduler" not in chosen:
        return apply_overrides(config, {"train.scheduler": "cosine-time"})
    return config


def machine_network(config: RunConfig, chosen: set[str], device_type: str) -> tuple[RunConfig, str]:
    """(config, a line for the user): ``CPU_BASE_CHANNELS`` base channels instead of the paper's 64 when
    the run trains on a CPU (``device_type``) and nobody chose ``model.base_channels`` (``chosen``: the keys
    set by recipe, file or overrides; a value other than the default also counts as chosen). Why: each
    doubling of the width costs ~4x the FLOPs per patch (a CPU training step took 3.4x as long at 32 as
    at 16), so within a CPU budget the narrow net sees far more patches and ends better (BENCHMARKS.md,
    "Network width on a CPU"). The value is written into the config, so config.yaml and the checkpoints
    rebuild the same net. ternaus11 keeps its VGG11 encoder's fixed 64;
    3D U-Nets get the same width (their convolutions cost more again per level). The ``paper`` recipe
    sets 64 itself, so it keeps it.
    """
    default = ModelConfig().base_channels
    if (device_type != "cpu" or "model.base_channels" in chosen or config.model.base_channels != default
            or config.model.name == "ternaus11" or config.train.init_weights):  # fine-tuning keeps its network
        return config, ""
    config = apply_overrides(config, {"model.base_channels": CPU_BASE_CHANNELS})
    return config, (f"CPU training: model.base_channels={CPU_BASE_CHANNELS} instead of {default} "
                    "(set model.base_channels to choose)")
