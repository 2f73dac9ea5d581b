"""Train a U-Net on a dataset folder, predict its test images, and score them: the Python API end to end.

    unetkit synth --out data/synth                                  # or your own images/ + masks/ folders
    python examples/train_and_predict.py --data data/synth --out runs/example --epochs 20

``--data`` holds ``train/``, ``val/`` and ``test/``, each with ``images/`` and ``masks/`` (instance labels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import unetkit
from unetkit.errors import InputError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with train/, val/ and test/")
    parser.add_argument("--out", type=Path, default=Path("runs/example"), help="run folder")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--base-channels", type=int, default=16, help="width of the first level")
    parser.add_argument("--patches", type=int, default=256, help="training patches per epoch")
    args = parser.parse_args()
    try:
        return run_example(args)
    except (InputError, FileNotFoundError) as error:  # one line naming what is wrong, as the CLI does
        print(f"train_and_predict: error: {error}", file=sys.stderr)
        return 2


def run_example(args: argparse.Namespace) -> int:
    """Train, predict the test images, score them; prints one line per step."""
    run = unetkit.train(args.data / "train", out=args.out, task="instances", val=args.data / "val",
                        epochs=args.epochs, progress=False,
                        **{"model.base_channels": args.base_channels, "model.depth": 4, "data.patch_size": 128,
                           "data.samples_per_epoch": args.patches})
    print(f"trained: best validation DSB score {run.best_score:.3f} at epoch {run.best_epoch}")

    rows = unetkit.predict_files(run.run_dir, [args.data / "test" / "images"], args.out / "test", progress=False)
    print(f"predicted {len(rows)} test images into {args.out / 'test'} (labels/, masks/, objects/ ...)")

    scores = unetkit.evaluate(truth=args.data / "test" / "masks", pred=args.out / "test", task="instances",
                              out=args.out / "test")
    summary = scores.summary
    print(f"test: DSB score {summary['dsb_score']:.3f}, AP50 {summary['ap50']:.3f} on {summary['images']} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
