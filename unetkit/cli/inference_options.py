"""The options that `predict` and `predict-large` share: tiling, flips, device, bad pixels, precision."""

from __future__ import annotations

import argparse


def add_inference_arguments(parser: argparse.ArgumentParser, nan_note: str = "") -> None:
    """--tile, --overlap, --batch, --tta, --device, --nan-policy, --precision (None: the checkpoint's)."""
    parser.add_argument("--tile", type=int, help="input tile size (default: the checkpoint's)")
    parser.add_argument("--overlap", type=float, help="same-padded nets: tile overlap fraction")
    parser.add_argument("--batch", type=int, help="tiles per forward pass")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                        help="average over flips (test-time augmentation; default: the checkpoint's inference.tta)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--nan-policy", choices=["error", "zero", "nearest"],
                        help=f"NaN/Inf pixels: error (refuse, default), zero, or nearest finite pixel{nan_note} "
                             "(default: the checkpoint's data.nan_policy)")
    parser.add_argument("--precision", choices=["fp32", "bf16"],
                        help="torch engine on CPU: bf16 autocast (about 2x faster on CPUs with AVX512_BF16 or AMX, "
                             "slower without; default: the checkpoint's inference.precision, fp32)")
