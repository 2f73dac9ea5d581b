"""`unetkit info`: sizes, parameters, FLOPs and receptive field of a network configuration."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="show a network's sizes, parameters, GFLOPs, receptive field",
        description="Example: unetkit info --model unet --padding valid --in-channels 1 --classes 2 "
                    "--input-size 572 --json  (the paper's net: 572 -> 388, 31,030,658 parameters)")
    parser.add_argument("--model", default="unet",
                        help="unet | unet3d | ternaus11 (VGG11 encoder: 2D, same padding, sides multiples of 32), or "
                        "a checkpoint, run folder or packaged model (e.g. nuclei): its network, the options below "
                        "aside")
    parser.add_argument("--padding", default="valid", choices=["valid", "same"])
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=2, help="output channels (logits)")
    parser.add_argument("--depth", type=int, default=5, help="resolution levels (paper: 5)")
    parser.add_argument("--base-channels", type=int, default=64, help="first-level channels (paper: 64)")
    parser.add_argument("--norm", default="none", choices=["none", "batch", "instance", "group"])
    parser.add_argument("--upsample", default="transpose", choices=["transpose", "bilinear"])
    parser.add_argument("--pool-sizes", default="", help="per-level pooling, e.g. '1,2,2;2,2,2;2,2,2' (3D)")
    parser.add_argument("--input-size", type=int, nargs="+",
                        help="spatial input size: one value for all axes or one per axis (default 572; for a "
                        "checkpoint, its prediction tile)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.config import ModelConfig
    from unetkit.errors import InputError
    from unetkit.models.registry import MODEL_NAMES
    from unetkit.models.summary import model_info

    if args.model not in MODEL_NAMES:  # a trained or packaged model: the network its checkpoint stores
        from unetkit import checkpoint as ckpt

        try:
            stored = ckpt.config_of(ckpt.load_checkpoint(args.model))
        except FileNotFoundError as error:
            raise InputError(f"--model {args.model}: not a network ({', '.join(MODEL_NAMES)}) and {error}") from error
        config = stored.model
        size = args.input_size or _prediction_tile(stored)
    else:
        try:
            pools = [[int(v) for v in level.split(",")] for level in args.pool_sizes.split(";") if level.strip()]
        except ValueError as error:
            raise InputError(f"--pool-sizes {args.pool_sizes!r}: expected integer factors per level, levels "
                             "separated by ';' and axes by ',' (e.g. '1,2,2;2,2,2' for a 3D net)") from error
        config = ModelConfig(
            name=args.model, in_channels=args.in_channels,  # unet3d: 3D (models.registry.resolve_model_config)
            out_channels=args.classes, depth=args.depth, base_channels=args.base_channels,
            padding="same" if args.model == "ternaus11" else args.padding,
            norm=args.norm, upsample=args.upsample, pool_sizes=pools,
        )
        size = args.input_size or [572]
        from unetkit.config import RunConfig
        from unetkit.config_rules import validate_config

        validate_config(RunConfig(model=config))  # --depth 0 or 30 were tracebacks deep in the model
    info = model_info(config, tuple(size))
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(len(key) for key in info)
    for key, value in info.items():
        shown = f"{value:,}" if key == "parameters" else value
        print(f"{key:<{width}}  {shown}")
    return 0


def _prediction_tile(stored) -> list[int]:
    """The input tile ``predict`` takes with a checkpoint's settings on a large image (a paper run stores 256, which
    its valid net rounds to 252)."""
    from unetkit.inference.tile_plan import NetGeometry, plan_tiles
    from unetkit.models.registry import model_spatial_dims, resolve_model_config

    model = resolve_model_config(stored.model)
    dims = model_spatial_dims(model)
    tile = list(stored.inference.tile_shape) or stored.inference.tile_size
    return list(plan_tiles((10**6,) * dims, NetGeometry.from_config(model), tile)[0])
