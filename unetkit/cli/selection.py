"""The options that pick planes of a microscopy file, shared by train, predict and predict-large."""

from __future__ import annotations

import argparse
import json


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """--channel, --axes, --time, --plane (see unetkit.data.axes)."""
    group = parser.add_argument_group("microscopy files (OME-TIFF, ImageJ TIFF, OME-Zarr)")
    group.add_argument("--channel", metavar="N|NAME[,...]",
                       help="channel(s) to read, by index (from 0; -1 the last) or OME channel name, e.g. 1, DAPI "
                            "or 0,2")
    group.add_argument("--axes", metavar="LETTERS",
                       help="axis letters of the file when its metadata lacks them, e.g. TYX or CZYX")
    group.add_argument("--time", type=int, metavar="N", help="time point to read from a time series")
    group.add_argument("--plane", type=int, metavar="N", help="Z plane a 2D network reads from a z-stack")


def selection_overrides(args: argparse.Namespace) -> list[str]:
    """The options as ``data.*`` config overrides (stored with the run, so prediction reads the same planes)."""
    from unetkit.data.axes import parse_channels

    overrides = []
    if args.channel:
        overrides.append(f"data.channels={json.dumps(list(parse_channels(args.channel)))}")
    if args.axes:
        overrides.append(f"data.axes={args.axes.upper()}")
    if args.time is not None:
        overrides.append(f"data.time={args.time}")
    if args.plane is not None:
        overrides.append(f"data.plane={args.plane}")
    return overrides


def selection_options(args: argparse.Namespace) -> dict:
    """The options as keyword arguments of PredictOptions / predict_large (None: the checkpoint's)."""
    from unetkit.data.axes import parse_channels

    return {"channels": list(parse_channels(args.channel)) if args.channel else None,
            "axes": args.axes.upper() if args.axes else None, "time": args.time, "plane": args.plane}
