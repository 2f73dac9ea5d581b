"""`unetkit tune-postprocess`: choose instance post-processing parameters on labelled images."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune-postprocess", help="grid-search instance post-processing for the best DSB score",
        description="Example: unetkit tune-postprocess --model runs/dsb/best.pt --data val_folder --update")
    parser.add_argument("--model", required=True, help="checkpoint (.pt), run folder or packaged model name")
    parser.add_argument("--data", required=True, help="labelled images (any training layout); not the test set")
    parser.add_argument("--layout", default="auto", help="layout of --data: auto, folders, dsb, isbi-stack")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0 = all)")
    parser.add_argument("--min-objects", type=int,
                        help="--update needs at least this many truth objects (default: the model's "
                             "postprocess.tune_min_objects, 100)")
    parser.add_argument("--grid", help='JSON grid, e.g. \'{"threshold": [0.4, 0.5], "min_size": [10, 20]}\'')
    parser.add_argument("--update", action="store_true", help="store the best values in the checkpoint")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print the best values as JSON on the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.errors import InputError
    from unetkit.inference.tuning import tune_checkpoint

    try:
        grid = json.loads(args.grid) if args.grid else None
    except json.JSONDecodeError as error:
        raise InputError(f"--grid is not valid JSON: {error}") from error
    best, rows = tune_checkpoint(args.model, args.data, args.layout, args.limit, grid, args.update, args.device,
                                 min_objects=args.min_objects)
    tuned = [key for key in rows[0] if key not in ("score", "scores")]  # the grid's keys, not all of postprocess
    print("rank  score   " + "  ".join(tuned))
    for rank, row in enumerate(rows[:5], start=1):
        print(f"{rank:>4}  {row['score']:.4f}  " + "  ".join(str(row[key]) for key in tuned))
    print(("stored in the checkpoint: " if args.update else "best: ") + ", ".join(f"{k}={best[k]}" for k in tuned))
    if best.get("min_object_score", 0) > 0:
        verb = "are" if args.update else "would be"
        print(f"object filter fitted on these images: objects scored below min_object_score="
              f"{best['min_object_score']:g} {verb} dropped (postprocess.object_weights)")
    if args.json:
        print(json.dumps({"best": best, "score": rows[0]["score"]}))
    return 0
