"""`unetkit weights`: the paper's weight map (eq. 2) of one label image, as a float32 TIFF and a picture."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="compute the U-Net paper's weight map (class balance + borders between touching cells)",
        description="Example: unetkit weights --labels ../shared/data/isbi2012/train/labels/slice00.png "
        "--out weights/slice00.tif  (writes weights/slice00.tif, float32, and weights/slice00.png, a "
        "colour-mapped picture). Instance label images (0 = background, one id per cell) are used as "
        "they are; foreground masks (only values 0 and one other, e.g. ISBI's 255 = cell) are split "
        "into 4-connected components first.",
    )
    parser.add_argument("--labels", required=True, help="label image (PNG/TIFF): instance ids or foreground")
    parser.add_argument("--out", required=True,
                        help="float32 TIFF to write (.tif); a .png picture goes beside it")
    parser.add_argument("--w0", type=float, default=10.0, help="border strength (paper: 10)")
    parser.add_argument("--sigma", type=float, default=5.0, help="border width in px (paper: 5)")
    parser.add_argument(
        "--from-foreground", action="store_true",
        help="treat every value > 0 as foreground and take its connected components as cells",
    )
    parser.add_argument("--volume", action="store_true", help="the labels are a 3D volume (TIFF ZYX, NIfTI)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.data.weight_files import write_weight_map

    summary = write_weight_map(args.labels, args.out, w0=args.w0, sigma=args.sigma, volume=args.volume,
                               from_foreground=args.from_foreground)
    how = summary.pop("how")
    print(f"cells: {summary['cells']} ({how})")
    print(f"weights: min {summary['min']:.3f}, mean {summary['mean']:.3f}, max {summary['max']:.3f}")
    print(f"wrote {summary['out']} (float32 {'x'.join(map(str, summary['shape']))}) and {summary['picture']}")
    if args.json:
        print(json.dumps(summary))
    return 0
