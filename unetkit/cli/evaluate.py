"""`unetkit evaluate`: score a folder of predictions against the truth (per image CSV + summary)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from unetkit.config import TASKS  # the task names, without importing torch


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against the truth: Dice/IoU/Rand error, DSB score, per-class Dice, PSNR/SSIM",
        description=(
            "Pairs truth and prediction files by name (endings _mask, _labels, _prob, _pred ignored; the "
            "masks/, probabilities/ and labels/ folders written by `unetkit predict` are found) and writes "
            "one CSV row per image. Example: unetkit evaluate --task binary --truth data/test/masks "
            "--pred runs/nuclei/test --json"
        ),
    )
    parser.add_argument("--task", choices=TASKS, default="binary",
                        help="what the predictions are (default binary)")
    parser.add_argument(
        "--truth", required=True,
        help="folder of truth masks/label images, or a dataset folder (images/ + masks/, or dsb <id>/masks/; "
             "multiclass also class-folders: slices/ or images/ plus one mask folder per class)",
    )
    parser.add_argument("--pred", required=True,
                        help="folder of predictions (or the output folder of unetkit predict)")
    parser.add_argument("--num-classes", type=int,
                        help="multiclass: number of classes K, background included (optional for a "
                             "class-folders truth)")
    parser.add_argument("--class-names", help="multiclass: comma-separated names, background first (class-folders "
                                              "truth: the names after the first are folder names)")
    parser.add_argument("--class-priority", metavar="NAME[,NAME...]",
                        help="multiclass, class-folders truth: where class masks overlap the class listed first "
                             "wins (unlisted classes follow in class order)")
    parser.add_argument("--class-colors", metavar="R,G,B;R,G,B...",
                        help="multiclass: colour-coded truth masks, one colour per class, background first "
                             "(the training's data.class_colors), e.g. '0,0,0;255,0,0;0,255,0'")
    parser.add_argument("--ignore-label", type=int,
                        help="multiclass: truth value left out (default 255)")
    parser.add_argument("--thresholds", metavar="T[,T...]",
                        help="instances: the IoU thresholds the score averages over (default 0.5,0.55,...,0.95)")
    parser.add_argument("--data-range", type=float,
                        help="regression: the value range of PSNR and SSIM (default: each truth's max - min)")
    parser.add_argument("--threshold", type=float,
                        help="binary: foreground = probability > threshold for float predictions (default 0.5)")
    parser.add_argument("--only-predicted", action="store_true",
                        help="score only the truth images that have a prediction (you predicted part of a dataset); "
                        "without it a truth image without a prediction is an error")
    parser.add_argument("--out", help="folder for the CSV files and plots (default: the --pred folder)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on the last line (NaN and inf -> null)")
    parser.set_defaults(run=run)


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format(value: Any) -> str:
    if isinstance(value, float):  # 4 significant digits below 0.01 (a warping error is ~1e-4)
        return f"{value:.4g}" if 0 < abs(value) < 0.01 else f"{value:.4f}"
    return str(value)


def print_summary(task: str, summary: dict[str, Any]) -> None:
    """A readable table: scalar scores (with their 95 % interval over images where one was computed), then
    per-class scores for multiclass."""
    from unetkit.metrics.intervals import interval_key

    print(f"evaluation ({task}), {summary['images']} image(s)")
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (list, tuple)) and k != "images"}
    width = max((len(k) for k in scalars), default=0)
    for key, value in scalars.items():
        bounds = summary.get(interval_key(key))
        shown = f"  (95% CI {_format(bounds[0])}-{_format(bounds[1])} over images)" if bounds else ""
        print(f"  {key:<{width}}  {_format(value)}{shown}")
    if "per_class_dice" in summary:
        names = summary["class_names"]
        name_width = max(len("class"), *(len(n) for n in names))
        print(f"  {'class':<{name_width}}  {'dice':>7}  {'iou':>7}")
        for name, dice, iou in zip(names, summary["per_class_dice"], summary["per_class_iou"], strict=True):
            print(f"  {name:<{name_width}}  {dice:7.4f}  {iou:7.4f}")


def _numbers(text: str | None, option: str) -> list[float] | None:
    """'0.5,0.75' -> [0.5, 0.75]; anything else is named."""
    from unetkit.errors import InputError

    if not text:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as error:
        raise InputError(f"{option} {text}: expected numbers separated by commas, e.g. 0.5,0.75") from error


def _colours(text: str | None) -> list[list[int]] | None:
    """'0,0,0;255,0,0' -> [[0, 0, 0], [255, 0, 0]]; a malformed colour is named."""
    from unetkit.errors import InputError

    if not text:
        return None
    colours = []
    for part in text.split(";"):
        values = [v.strip() for v in part.split(",")]
        if len(values) != 3 or not all(v.isdigit() and int(v) <= 255 for v in values):
            raise InputError(f"--class-colors: '{part}' is not a colour; give R,G,B with values 0..255 per class, "
                             "separated by ';' (e.g. '0,0,0;255,0,0')")
        colours.append([int(v) for v in values])
    return colours


def run(args: argparse.Namespace) -> int:
    import unetkit

    def names(text: str | None) -> list[str] | None:
        return [n.strip() for n in text.split(",") if n.strip()] if text else None

    # options left at their defaults are not passed, so each task only sees what the user asked for
    options = {"threshold": args.threshold, "num_classes": args.num_classes, "class_names": names(args.class_names),
               "ignore_label": args.ignore_label, "class_priority": names(args.class_priority),
               "class_colors": _colours(args.class_colors), "thresholds": _numbers(args.thresholds, "--thresholds"),
               "data_range": args.data_range}
    options = {key: value for key, value in options.items() if value is not None}
    result = unetkit.evaluate(args.truth, args.pred, args.task, out=Path(args.out) if args.out else Path(args.pred),
                              only_predicted=args.only_predicted, **options)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print_summary(args.task, {k: v for k, v in result.summary.items() if k != "truth_left_out"})
    print("wrote " + ", ".join(str(p) for p in result.written))
    if args.json:
        print(json.dumps(_finite({"task": args.task, **result.summary, "csv": str(result.written[0])})))
    return 0
