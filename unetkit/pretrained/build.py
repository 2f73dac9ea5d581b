"""Turn a trained checkpoint into a packaged model folder: 8-bit weights, its card, the card's sha256.

Used by ``benchmarks/pretrain.py NAME --stage package``; kept apart from ``unetkit.pretrained`` so
that resolving a model name never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unetkit.pretrained import CARD, WEIGHTS, sha256_of
from unetkit.safety.atomic import write_text


def quantize_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                           dict[str, torch.Tensor]]:
    """(rest, int8, scales): every conv / linear weight (a floating tensor of 2 or more dimensions) as int8
    with one float32 scale per output channel (symmetric, ``round(w / scale)``, ``scale = max|w| / 127``),
    the other floating tensors (biases, batch norm) as fp16, counters as they are. A U-Net of 16 base
    channels: ~1.8 MB gzipped instead of 3.9 (fp16) or 7.8 (fp32); ``unetkit.checkpoint`` restores float32.
    """
    rest, int8, scales = {}, {}, {}
    for key, value in state.items():
        if value.is_floating_point() and value.ndim >= 2:
            weight = value.float()
            scale = weight.abs().flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
            int8[key] = torch.round(weight / scale.view(-1, *[1] * (weight.ndim - 1))).to(torch.int8)
            scales[key] = scale
        else:
            rest[key] = value.half() if value.is_floating_point() else value
    return rest, int8, scales


def write_card(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``folder/card.yaml``: ``card`` plus the name and the sha256 of ``folder/weights.pt`` as it
    is now (a temporary file, then renamed). Returns the card's path."""
    import yaml

    folder = Path(folder)
    values = {"name": folder.name, **{k: v for k, v in card.items() if k not in ("name", "sha256")},
              "sha256": sha256_of(folder / WEIGHTS)}
    return write_text(folder / CARD, yaml.safe_dump(values, sort_keys=False, allow_unicode=True))


def write_packaged_model(checkpoint: str | Path, folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``folder/weights.pt`` (config + 8-bit weights of ``checkpoint``, see ``quantize_state``; no
    optimizer state) and its ``folder/card.yaml`` (see ``write_card``). Returns ``folder``."""
    from unetkit import checkpoint as ckpt

    payload = ckpt.load_checkpoint(checkpoint)
    folder = Path(folder)
    rest, int8, scales = quantize_state(payload["model"])
    ckpt.save_checkpoint(folder / WEIGHTS, {
        "config": payload["config"], "model": rest, "model_int8": int8, "model_int8_scale": scales,
        "pretrained": {"name": folder.name, "version": int(card.get("version", 1))},
    }, compress=True)
    write_card(folder, card)
    return folder
