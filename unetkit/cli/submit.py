"""`unetkit submit`: a Kaggle 2018 Data Science Bowl submission CSV from a folder of label images."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "submit", help="write a DSB 2018 run-length-encoded submission CSV from predicted label images",
        description="Example: unetkit submit --pred runs/dsb/pred --out submission.csv  (one row per "
                    "nucleus, header ImageId,EncodedPixels; ImageId is the file name without extension "
                    "and suffixes such as _labels)")
    parser.add_argument("--pred", required=True, help="folder of instance label images (.tif/.tiff/.png), or "
                        "the output folder of `unetkit predict` (its labels/ are read)")
    parser.add_argument("--out", default="submission.csv", help="CSV file to write (default submission.csv)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.data.rle import write_submission  # checks --out: a .csv, never over another file

    counts = write_submission(args.pred, args.out)
    summary = {"out": str(args.out), **counts}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {counts['rows']} rows ({counts['objects']} objects in {counts['images']} images) "
              f"to {args.out}")
    return 0
