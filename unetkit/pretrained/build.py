"""Turn a trained checkpoint into a packaged model folder: fp16 weights, its card, the card's sha256.

Used by ``benchmarks/pretrain.py NAME --stage package``; kept apart from ``unetkit.pretrained`` so
that resolving a model name never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from unetkit.pretrained import CARD, WEIGHTS, sha256_of


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as fp16 (a U-Net of 16 base channels: ~3.9 MB instead of ~7.8 MB); counters
    such as batch norm's ``num_batches_tracked`` stay as they are. ``load_state_dict`` casts back."""
    return {key: value.half() if value.is_floating_point() else value for key, value in state.items()}


def write_card(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``folder/card.yaml``: ``card`` plus the name and the sha256 of ``folder/weights.pt`` as it
    is now (a temporary file, then renamed). Returns the card's path."""
    import yaml

    folder = Path(folder)
    values = {"name": folder.name, **{k: v for k, v in card.items() if k not in ("name", "sha256")},
              "sha256": sha256_of(folder / WEIGHTS)}
    tmp = folder / f".{CARD}.{os.getpid()}.tmp"
    tmp.write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    os.replace(tmp, folder / CARD)
    return folder / CARD


def write_packaged_model(checkpoint: str | Path, folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``folder/weights.pt`` (config + fp16 weights of ``checkpoint``, no optimizer state) and
    its ``folder/card.yaml`` (see ``write_card``). Returns ``folder``."""
    from unetkit import checkpoint as ckpt

    payload = ckpt.load_checkpoint(checkpoint)
    folder = Path(folder)
    ckpt.save_checkpoint(folder / WEIGHTS, {
        "config": payload["config"], "model": half_state(payload["model"]),
        "pretrained": {"name": folder.name, "version": int(card.get("version", 1))},
    })
    write_card(folder, card)
    return folder
