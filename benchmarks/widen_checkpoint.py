"""A checkpoint's U-Net made twice as wide, computing the same function: ``benchmarks/widen_checkpoint.py SRC OUT``.

Net2WiderNet (Chen, Goodfellow and Shlens, 2016) for unetkit's 2D U-Net: every hidden layer gets twice the
channels (``model.base_channels`` x2); new channel ``j`` copies old channel ``j // 2`` (its conv filters, bias
and batch-norm parameters and statistics), and every weight that reads a doubled input is halved, so each sum
over the duplicated inputs equals the old one. Interleaved copies keep the skip concatenations aligned: a
concatenation of doubled parts is the doubled concatenation. Copies receive identical gradients and would stay
equal, so the widened weights get a small relative noise (``--noise``) that lets training pull them apart.

The point: the shipped ``nuclei`` model sits on a plateau at 16 base channels (BENCHMARKS.md); a wider net
started from it keeps what it learnt (validation scores equal at the start) and trains the extra capacity with
``train.init_weights=OUT`` instead of from scratch.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from unetkit import checkpoint as ckpt
from unetkit.config import to_dict
from unetkit.models.registry import build_model


def widen_state(model: torch.nn.Module, wide: torch.nn.Module, noise: float, seed: int) -> dict[str, torch.Tensor]:
    """State dict for ``wide`` (same network, twice the hidden channels) that computes what ``model`` does."""
    old, new = model.state_dict(), wide.state_dict()
    reads_dim = {}  # parameter name -> the dim that indexes input channels (halved when doubled)
    for name, module in wide.named_modules():
        if isinstance(module, torch.nn.ConvTranspose2d):
            reads_dim[f"{name}.weight"] = 0
        elif isinstance(module, torch.nn.Conv2d):
            reads_dim[f"{name}.weight"] = 1
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, target in new.items():
        tensor = old[key]  # never changed in place: each step below makes a new tensor
        for dim, (before, after) in enumerate(zip(old[key].shape, target.shape, strict=True)):
            if after == 2 * before:
                tensor = tensor.repeat_interleave(2, dim=dim)
                if reads_dim.get(key) == dim:
                    tensor = tensor / 2
            elif after != before:
                raise ValueError(f"{key}: shape {tuple(old[key].shape)} -> {tuple(target.shape)} is no doubling")
        if key in reads_dim and noise > 0:
            tensor = tensor + noise * tensor.std() * torch.randn(tensor.shape, generator=generator)
        out[key] = tensor.to(target.dtype)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="checkpoint, run folder or packaged model name (e.g. nuclei)")
    parser.add_argument("out", type=Path, help="the widened checkpoint (.pt)")
    parser.add_argument("--noise", type=float, default=0.01, help="relative noise on the widened conv weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model, config = ckpt.load_model(args.source)
    wide_config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, base_channels=2 * config.model.base_channels))
    wide = build_model(wide_config.model)
    wide.load_state_dict(widen_state(model, wide, args.noise, args.seed))
    wide.eval()
    probe = torch.randn(2, config.model.in_channels, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, after = model(probe).softmax(1), wide(probe).softmax(1)
    print(f"{config.model.base_channels} -> {wide_config.model.base_channels} base channels; "
          f"max probability change on a noise probe: {float((before - after).abs().max()):.4f}")
    ckpt.save_checkpoint(args.out, {"config": to_dict(wide_config), "model": wide.state_dict()})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
