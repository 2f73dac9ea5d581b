"""Recipes: named sets of config values, applied on top of the defaults and under user overrides.

Order of precedence (later wins): dataclass defaults < recipe < YAML config file < ``--set`` overrides.
The resolved values are saved as ``config.yaml`` in the run folder, so a run shows what it used.
"""

from __future__ import annotations

from typing import Any

from unetkit.config import RunConfig, apply_overrides, load_config, to_dict
from unetkit.errors import InputError

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
    the epoch-based ``cosine`` default becomes ``cosine-time`` (see ``budget_schedule``).
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe '{recipe}'; choose one of {', '.join(RECIPES)}")
    config = apply_overrides(base or RunConfig(), {"recipe": recipe, **RECIPES[recipe]})
    chosen = set(RECIPES[recipe])
    if config_file:
        file_values = _flatten(to_dict(load_config(config_file)))
        explicit = _flatten(_read_yaml_keys(config_file))
        config = apply_overrides(config, {k: file_values[k] for k in explicit})
        chosen |= set(explicit)
    overrides = overrides or []
    config = apply_overrides(config, overrides)
    chosen |= set(overrides) if isinstance(overrides, dict) else {o.partition("=")[0].strip() for o in overrides}
    return budget_schedule(config, chosen)


def budget_schedule(config: RunConfig, chosen: set[str]) -> RunConfig:
    """``cosine-time`` instead of the default ``cosine`` when a time budget is set and nobody chose the
    schedule (``chosen``: the keys set by recipe, file or overrides). Why: a run stopped by its budget
    after 30 of 1000 planned epochs would otherwise end at ~99.8 % of the peak learning rate, unannealed.
    """
    if config.train.time_budget_s > 0 and config.train.scheduler == "cosine" and "train.scheduler" not in chosen:
        return apply_overrides(config, {"train.scheduler": "cosine-time"})
    return config


def _read_yaml_keys(path: str) -> dict[str, Any]:
    """The keys a YAML file actually sets (so unset keys keep the recipe's values)."""
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle) or {}
