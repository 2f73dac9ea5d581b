"""Checkpoints of one network averaged weight by weight (a "uniform model soup"): ``soup_checkpoints.py OUT A B ...``.

Wortsman et al. (2022, "Model soups"): networks fine-tuned from the same weights usually lie in one basin of
the loss, and the mean of their weights often scores above each of them, at no cost when predicting (one
network, not an ensemble). Used here on fine-tunes of the shipped ``nuclei`` model (BENCHMARKS.md); what the
soup is worth is measured, never assumed: score it like any checkpoint (``benchmarks/pretrain.py --stage score
--weights OUT``).

The soup keeps the first checkpoint's config (post-processing included: tune it again for the soup, e.g.
``benchmarks/pretrain.py nuclei --stage soup``), epoch and history, records what it was made of (``soup_of``:
each file's path and sha256) and drops optimizer, scheduler and random states, which belong to one run.
Float tensors (weights, biases, batch-norm statistics) are averaged in float64; integer ones (batch-norm's
``num_batches_tracked``) are taken from the first checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import torch

from unetkit import checkpoint as ckpt
from unetkit.errors import InputError

RUN_STATE = ("optimizer", "scheduler", "scaler", "rng")  # one run's training state: meaningless for a soup


def soup_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The weight-by-weight mean of state dicts with the same keys and shapes (a ValueError names the first
    key that differs)."""
    if not states:
        raise ValueError("no state dicts to average")
    first = states[0]
    for index, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            key = sorted(state.keys() ^ first.keys())[0]
            raise ValueError(f"checkpoint {index} differs from the first in its parameters (e.g. {key})")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise ValueError(f"checkpoint {index}: {key} has shape {tuple(tensor.shape)}, the first "
                                 f"{tuple(first[key].shape)}")
    soup = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            mean = sum(state[key].double() for state in states) / len(states)
            soup[key] = mean.to(tensor.dtype)
        else:
            soup[key] = tensor.clone()
    return soup


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def soup_payload(paths: list[Path]) -> dict[str, Any]:
    """The soup of checkpoint ``paths`` (files, run folders or packaged model names) as a checkpoint payload."""
    payloads = [ckpt.load_checkpoint(path) for path in paths]
    models = {str(ckpt.config_of(payload).model) for payload in payloads}
    if len(models) > 1:
        raise InputError(f"{', '.join(map(str, paths))}: the checkpoints hold different networks (model.* "
                         "settings differ); a soup averages one network's weights")
    try:
        model = soup_state([payload["model"] for payload in payloads])
    except ValueError as error:
        raise InputError(f"{', '.join(map(str, paths))}: {error}") from error
    rest = {key: value for key, value in payloads[0].items()
            if key not in (*RUN_STATE, "model", "format", "version")}
    origin = [{"path": str(path), "sha256": sha256(ckpt.resolve_path(path))} for path in paths]
    return {**rest, "model": model, "soup_of": origin}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the soup checkpoint (.pt), a new file")
    parser.add_argument("checkpoints", nargs="+", help="checkpoints, run folders or packaged model names")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        print("give at least two checkpoints to average", file=sys.stderr)
        return 2
    if args.out.exists():  # never over an input or another run's file
        print(f"{args.out}: exists; give a new file name for the soup", file=sys.stderr)
        return 2
    try:
        ckpt.save_checkpoint(args.out, soup_payload(args.checkpoints))
    except (InputError, FileNotFoundError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the mean of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
