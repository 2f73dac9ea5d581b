"""Are two nuclei models really different on the validation images? Paired bootstrap intervals.

Reads the per-image rows of ``benchmarks/pretrain.py --stage score`` (``score.json`` / ``score-tta.json``:
``image``, ``type``, ``dsb_score``, ``ap50``) of two or more models scored on the same images and prints a
Markdown table: each model's mean with its 95 % interval over images, and its paired difference from the
first model with the interval of that difference (``unetkit.metrics.intervals``), for all images and for
each image type with at least 10 images. A difference whose interval holds 0 is one the validation images
cannot tell from chance; the targets of issue 17 can be read against the intervals the same way.

    .venv/bin/python benchmarks/compare_scores.py RUN_A/nuclei/score-tta.json RUN_B/nuclei/score-tta.json \
        --names "v9 + TTA" "B + TTA"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from unetkit.metrics.intervals import MIN_IMAGES, difference_interval, mean_interval

KEYS = ("dsb_score", "ap50")


def load_rows(path: Path) -> dict[str, dict]:
    """image name -> its row, from a score JSON of benchmarks/pretrain.py."""
    try:
        rows = json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: not a score JSON of benchmarks/pretrain.py --stage score ({error})") from None
    return {row["image"]: row for row in rows}


def interval_text(bounds: tuple[float, float] | None, signed: bool = False) -> str:
    if bounds is None:
        return "(too few images)"
    form = "{:+.4f}" if signed else "{:.4f}"
    return f"[{form.format(bounds[0])}, {form.format(bounds[1])}]"


def compare(models: list[dict[str, dict]], names: list[str]) -> list[str]:
    """Markdown table lines: per model and group, the means with intervals and the paired differences."""
    images = sorted(models[0])
    for name, rows in zip(names[1:], models[1:], strict=True):
        if sorted(rows) != images:
            raise SystemExit(f"{name}: scored on other images than {names[0]}; compare scores of one split")
    types = sorted({models[0][i]["type"] for i in images})
    groups = [("all", images)] + [(t, [i for i in images if models[0][i]["type"] == t]) for t in types]
    lines = ["| model | images | DSB score [95 % CI] | AP50 [95 % CI] | DSB − first [95 % CI] | "
             "AP50 − first [95 % CI] |", "| --- | --- | --- | --- | --- | --- |"]
    for group, members in groups:
        if group != "all" and len(members) < MIN_IMAGES:
            continue
        first = {key: np.array([models[0][i][key] for i in members]) for key in KEYS}
        for index, (name, rows) in enumerate(zip(names, models, strict=True)):
            values = {key: np.array([rows[i][key] for i in members]) for key in KEYS}
            cells = [f"{name}{'' if group == 'all' else f' ({group})'}", str(len(members))]
            cells += [f"{values[key].mean():.4f} {interval_text(mean_interval(values[key]))}" for key in KEYS]
            for key in KEYS:
                if index == 0:
                    cells.append("—")
                else:
                    gap = values[key] - first[key]
                    cells.append(f"{gap.mean():+.4f} "
                                 f"{interval_text(difference_interval(values[key], first[key]), signed=True)}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=Path, help="score JSONs; the first is the reference")
    parser.add_argument("--names", nargs="+", help="a name per score JSON (default: the run folder names)")
    args = parser.parse_args(argv)
    if len(args.scores) < 2:
        print("give at least two score JSONs", file=sys.stderr)
        return 2
    names = args.names or [p.parent.parent.name if p.parent.name == "nuclei" else p.parent.name
                           for p in args.scores]
    if len(names) != len(args.scores):
        print(f"--names: {len(names)} names for {len(args.scores)} score JSONs", file=sys.stderr)
        return 2
    print("\n".join(compare([load_rows(p) for p in args.scores], names)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
