"""Streaming prediction of a synthetic whole-slide image: seconds, megapixels/s and peak resident memory,
and the same for an image half as large, to show that memory stays flat when the image doubles.

    .venv/bin/python benchmarks/large_image.py                 # 20000 x 10000 and 20000 x 20000
    .venv/bin/python benchmarks/large_image.py --size 4000     # a quick check

Each size runs in a fresh process (peak RSS is per process). The network is deliberately tiny (depth 1,
2 channels, tile 512, random weights) so that the run takes minutes on 2 CPU cores: what is measured is the
streaming machinery (reads, tiling, blending, writes), which a bigger net only slows down per tile.
Input: uint8 .npy read by file offset; output: uint8 probabilities .npy written band by band.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_image(path: Path, height: int, width: int, seed: int = 0) -> None:
    """A synthetic uint8 image written band by band (never whole in memory): noise plus bright blobs."""
    from unetkit.inference.arrays import create_npy

    image = create_npy(path, (height, width), np.uint8)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:width]
    for top in range(0, height, 256):
        rows = min(256, height - top)
        blobs = (np.sin((yy[:rows] + top) / 9.0) * np.sin(xx[:rows] / 11.0) > 0.6) * 120
        image[top:top + rows, :] = (rng.integers(0, 60, (rows, width)) + blobs).astype(np.uint8)
    image.close()


def make_checkpoint(path: Path) -> None:
    import torch

    from unetkit import checkpoint as ckpt
    from unetkit.config import RunConfig, apply_overrides, to_dict
    from unetkit.models.registry import build_model

    config = apply_overrides(RunConfig(), {"model.depth": 1, "model.base_channels": 2, "model.norm": "none",
                                           "inference.tile_size": 512, "inference.batch_size": 4})
    torch.manual_seed(0)
    ckpt.save_checkpoint(path, {"config": to_dict(config), "model": build_model(config.model).state_dict()})


def worker(args: argparse.Namespace) -> None:
    from unetkit.inference.streaming import peak_rss_mb, predict_large

    before = peak_rss_mb()
    stats = predict_large(args.model, args.image, args.output, engine="torch", device="cpu",
                          strip_width=args.strip, out_dtype="uint8", progress=False)
    print(json.dumps({"megapixels": stats.megapixels, "seconds": stats.seconds,
                      "mp_per_s": stats.megapixels_per_s, "tiles": stats.tiles,
                      "tiles_predicted": stats.tiles_predicted, "peak_rss_mb": stats.peak_rss_mb,
                      "rss_after_imports_mb": before}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20000, help="side of the large image")
    parser.add_argument("--strip", type=int, default=4096)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    from unetkit.cpu.info import describe, torch_threads

    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    folder = Path(tempfile.mkdtemp(prefix="unetkit-large-"))
    make_checkpoint(folder / "tiny.pt")
    rows = []
    for height in (args.size // 2, args.size):
        image, output = folder / f"image_{height}.npy", folder / f"probs_{height}.npy"
        make_image(image, height, args.size)
        result = subprocess.run([sys.executable, __file__, "--worker", "--model", str(folder / "tiny.pt"),
                                 "--image", str(image), "--output", str(output), "--strip", str(args.strip)],
                                capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["shape"] = f"{height} x {args.size}"
        rows.append(row)
        print(f"{row['shape']:>15s}: {row['megapixels']:7.1f} MP in {row['seconds']:7.1f} s = "
              f"{row['mp_per_s']:5.2f} MP/s, tiles {row['tiles']} (+{row['tiles_predicted'] - row['tiles']} at "
              f"strip seams), peak RSS {row['peak_rss_mb']:.0f} MiB (after imports "
              f"{row['rss_after_imports_mb']:.0f} MiB)", flush=True)
        image.unlink()
        output.unlink()
    print(f"peak RSS ratio when the image doubles: {rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f}")
    in_memory = args.size * args.size * 4 * (1 + 2 + 1) / 2**20  # float32 input, 2 outputs, weight sum
    print(f"(in-memory predict_tiled would hold ~{in_memory:.0f} MiB of arrays for {args.size} x {args.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
