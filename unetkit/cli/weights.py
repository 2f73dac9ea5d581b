"""`unetkit weights`: the paper's weight map (eq. 2) of one label image, as a float32 TIFF and a picture."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    import numpy as np

    from unetkit.data.formats import format_of
    from unetkit.data.io import read_label_volume, read_labels, tiff_pages, write_tiff
    from unetkit.data.weightmaps import instance_labels_from_foreground, weight_map
    from unetkit.errors import InputError
    from unetkit.safety.paths import check_new_output, check_output_file

    check_output_file(args.out, [args.labels])
    check_output_file(Path(args.out).with_suffix(".png"), [args.labels], "--out (its .png picture)")
    out = Path(args.out)
    if format_of(out) != "tiff":
        raise InputError(f"--out {out}: the weight map is written as a float32 TIFF; name it .tif or .tiff")
    check_new_output(out)
    check_new_output(out.with_suffix(".png"), "--out (its .png picture)")
    if not args.volume and format_of(args.labels) == "tiff" and Path(args.labels).is_file():
        pages = tiff_pages(args.labels)
        if pages > 1:  # read as channels or planes, the 2D reader's messages would point to options weights lacks
            raise InputError(f"{args.labels}: a volume of {pages} pages; give --volume for a 3D weight map")
    labels = read_label_volume(args.labels) if args.volume else read_labels(args.labels)
    values = np.unique(labels)
    if args.from_foreground:
        how = "connected components of the foreground (--from-foreground)"
        labels = instance_labels_from_foreground(labels)
    elif len(values) == 2 and values[0] == 0:
        how = (f"the label image holds only 0 and {values[1]}: treated as a foreground mask and split into "
               f"connected components")
        labels = instance_labels_from_foreground(labels)
    else:
        how = "instance labels as read"
    cells = int(len(np.unique(labels[labels > 0])))
    weights = weight_map(labels, w0=args.w0, sigma=args.sigma)
    write_tiff(out, weights)
    picture = out.with_suffix(".png")
    try:
        _save_picture(weights, picture, f"{Path(args.labels).name}: w0={args.w0:g}, sigma={args.sigma:g} px")
    except BaseException:  # the map and its picture are written as a pair: a rerun would find the map and refuse
        out.unlink(missing_ok=True)
        raise
    summary = {
        "labels": str(args.labels), "out": str(out), "picture": str(picture), "cells": cells,
        "shape": list(weights.shape), "w0": args.w0, "sigma": args.sigma,
        "min": float(weights.min()), "max": float(weights.max()), "mean": float(weights.mean()),
    }
    print(f"cells: {cells} ({how})")
    print(f"weights: min {summary['min']:.3f}, mean {summary['mean']:.3f}, max {summary['max']:.3f}")
    print(f"wrote {out} (float32 {'x'.join(map(str, weights.shape))}) and {picture}")
    if args.json:
        print(json.dumps(summary))
    return 0


def _save_picture(weights, path: Path, title: str) -> None:
    """Colour-mapped PNG with a colour bar (middle slice for 3D); no pyplot, so no global backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if weights.ndim == 3:
        title += f" (slice {weights.shape[0] // 2} of {weights.shape[0]})"
        weights = weights[weights.shape[0] // 2]
    height, width = weights.shape
    scale = 8.0 / max(height, width)  # the longer side 8 inches
    figure = Figure(figsize=(width * scale + 1.5, height * scale + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = axes.imshow(weights, cmap="viridis", interpolation="nearest")
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()
    figure.colorbar(shown, ax=axes, label="weight", fraction=0.046, pad=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    from unetkit.safety.atomic import atomic_path

    with atomic_path(path) as tmp:
        figure.savefig(tmp, bbox_inches="tight", format="png")
