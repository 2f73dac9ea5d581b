"""Segment an image larger than you want in memory, read tile by tile from disk, and measure its objects.

    python examples/measure_large_array.py --model runs/example --image slide.npy --out objects.csv

Without ``--image`` the script first writes a mosaic of synthetic nuclei (``--size`` px square) to
``mosaic.npy`` beside ``--out``. The image is opened as a memory map, so only the tiles being predicted
are read; the model normalises it by its percentiles (sampled from blocks for large images). The
outputs (probabilities, labels) are held in memory; for images beyond memory ``unetkit.predict_large``
streams them to disk as well.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import unetkit
from unetkit.errors import InputError
from unetkit.inference.objects import write_object_csv


def write_mosaic(path: Path, size: int, seed: int = 0) -> Path:
    """A (size, size) uint8 mosaic of 256 px synthetic nuclei tiles, saved as .npy (never over an existing file)."""
    from unetkit.data.synthetic import make_nuclei_image
    from unetkit.safety.atomic import atomic_path

    if path.exists():
        raise InputError(f"{path} exists: give it with --image, or choose another --out folder")
    rng = np.random.default_rng(seed)
    tiles = -(-size // 256)
    rows = [np.hstack([make_nuclei_image(rng, (256, 256))[0] for _ in range(tiles)]) for _ in range(tiles)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:  # complete or absent, never half-written
        np.save(partial, np.vstack(rows)[:size, :size])
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint or run folder of an instances (or binary) model")
    parser.add_argument("--image", type=Path, help="a 2D .npy image (default: a synthetic mosaic)")
    parser.add_argument("--size", type=int, default=2048, help="side of the synthetic mosaic in px")
    parser.add_argument("--out", type=Path, default=Path("runs/objects.csv"), help="per-object table (CSV)")
    args = parser.parse_args()

    try:
        if args.out.suffix.lower() != ".csv":  # never the image itself, nor any other file than a table
            raise InputError(f"--out {args.out}: give a .csv file for the table")
        if args.out.exists():
            raise InputError(f"--out {args.out} exists; choose a new file for the table")
        model = unetkit.load(args.model)  # a wrong model is named before anything is written
        path = args.image or write_mosaic(args.out.parent / "mosaic.npy", args.size)
        image = np.load(path, mmap_mode="r")  # stays on disk; tiles are read as they are predicted
        result = model.predict(image, instances=True)
    except (InputError, FileNotFoundError) as error:  # one line naming what is wrong, as the CLI does
        print(f"measure_large_array: error: {error}", file=sys.stderr)
        return 2
    objects = result.measure(image)
    write_object_csv(objects, args.out)  # written under a temporary name, then renamed
    areas = np.array([row["area"] for row in objects])
    print(f"{path}: {image.shape[0]}x{image.shape[1]} px, {len(objects)} objects, "
          f"foreground {result.mask.mean():.1%}, median area {np.median(areas) if len(areas) else 0:.0f} px; "
          f"table in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
