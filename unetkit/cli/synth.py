"""`unetkit synth`: a seeded synthetic fluorescence-nuclei dataset (images/ + masks/ layout)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate synthetic nuclei images with instance labels",
        description="Example: unetkit synth --out data/synth --n-train 24 --n-val 6 --n-test 6 --seed 0  "
                    "(or --n 10 for a single folder)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, help="write one dataset of N images instead of train/val/test")
    parser.add_argument("--size", "--shape", dest="size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"),
                        help="image size with --n (default 256 256)")
    parser.add_argument("--n-train", type=int, default=24, help="training images (default 24)")
    parser.add_argument("--n-val", type=int, default=6, help="validation images (default 6)")
    parser.add_argument("--n-test", type=int, default=6, help="test images (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed >= 0: the same seed, the same files")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from unetkit.data.synthetic import write_new_synthetic_data
    from unetkit.safety.options import check_int

    for option, value in (("--n", args.n), ("--n-train", args.n_train), ("--n-val", args.n_val),
                          ("--n-test", args.n_test), ("--size", min(args.size))):
        check_int(option, value, 1)
    check_int("--seed", args.seed, 0)
    counts = write_new_synthetic_data(args.out, n=args.n, size=tuple(args.size), n_train=args.n_train,
                                      n_val=args.n_val, n_test=args.n_test, seed=args.seed)
    if args.n is not None:
        print(f"wrote {counts['dataset']} images to {args.out}/images and instance labels to {args.out}/masks")
        written = {"images": counts["dataset"], "folders": {"dataset": str(args.out)}}
    else:
        for name, count in counts.items():
            folder = Path(args.out) / name
            print(f"{name}: {count} images in {folder}/images, instance labels in {folder}/masks")
        written = {"images": sum(counts.values()), "folders": {name: str(Path(args.out) / name) for name in counts}}
    if args.json:
        print(json.dumps({"seed": args.seed, **written}))
    return 0
