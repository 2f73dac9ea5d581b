"""``predict-large`` with the shipped ``nuclei`` model on a mosaic of a DSB image of small nuclei: the
small-object rule's 2x road box by box against the 1x road (seconds, MP/s, peak memory), and against what
``predict`` computes in memory for the same mosaic (largest probability difference, objects).

    .venv/bin/python benchmarks/large_small_objects.py                       # 16 x 16 tiles of 256 px: 4096^2
    .venv/bin/python benchmarks/large_small_objects.py --repeat 6 --no-compare  # a quick check

Each road runs in a fresh process (peak RSS is per process). The mosaic repeats one validation image of the
fixed DSB split (930f246a, median nucleus under 100 px: the rule takes it at 2x), so over 4 MP the decision
is made on 16 blocks of 512 px, the large-image way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018" / "stage1_train"


def make_mosaic(path: Path, ident: str, repeat: int) -> tuple[int, int]:
    """``repeat`` x ``repeat`` copies of a DSB image (RGB, uint8) saved as .npy; returns its (H, W)."""
    import imageio.v3 as iio

    found = sorted(DSB.glob(f"{ident}*/images/*.png"))
    if not found:
        raise SystemExit(f"{DSB}: no image {ident}*; this benchmark reads ../shared/data/dsb2018")
    tile = iio.imread(found[0])[..., :3]
    mosaic = np.tile(tile, (repeat, repeat, 1))
    np.save(path, mosaic)
    return mosaic.shape[:2]


def predictor_for(rule: bool):
    from unetkit.config import apply_overrides
    from unetkit.inference.predictor import Predictor

    predictor = Predictor.load("nuclei", "cpu")
    if not rule:
        predictor.config = apply_overrides(predictor.config, {"postprocess.upscale_below_area": 0})
    return predictor


def worker(args: argparse.Namespace) -> None:
    from unetkit.inference.streaming import peak_rss_mb, stream_file

    before = peak_rss_mb()
    stats = stream_file(predictor_for(args.rule == "on"), args.image, args.output, strip_width=args.strip,
                        progress=False)
    print(json.dumps({"megapixels": stats.megapixels, "seconds": stats.seconds, "mp_per_s": stats.megapixels_per_s,
                      "scale": stats.scale, "tiles_predicted": stats.tiles_predicted,
                      "peak_rss_mb": stats.peak_rss_mb, "rss_after_imports_mb": before}))


def compare(image: Path, streamed: Path) -> str:
    """What ``predict`` computes in memory for the mosaic, against the streamed probabilities."""
    from unetkit.inference.postprocess import postprocess

    predictor = predictor_for(True)
    started = time.perf_counter()
    result = predictor.predict(np.load(image))
    seconds = time.perf_counter() - started
    probs = np.load(streamed)
    labels = postprocess(probs, predictor.config.postprocess, predictor.task.instance_kind(predictor.config))
    same = float(((labels > 0) == (result.labels > 0)).mean())
    return (f"in memory (`predict`): scale {result.extra['scale']}, {seconds:.1f} s; streamed - in memory: max |dp| "
            f"{float(np.abs(probs - result.probabilities).max()):.1e}, objects {int(labels.max())} / "
            f"{int(result.labels.max())}, foreground agreement {same:.6f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", dest="ident", default="930f246a", help="DSB image id (a prefix)")
    parser.add_argument("--repeat", type=int, default=16, help="copies per side")
    parser.add_argument("--strip", type=int, default=4096)
    parser.add_argument("--no-compare", dest="compare", action="store_false", help="skip the in-memory prediction")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rule", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.image = args.path
        worker(args)
        return 0
    import torch

    from unetkit.cpu.info import describe, torch_threads

    print(f"CPU: {describe()}; torch threads: {torch_threads()} (of {torch.get_num_threads()})", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="unetkit-large-small-"))
    image = folder / "mosaic.npy"
    height, width = make_mosaic(image, args.ident, args.repeat)
    print(f"mosaic of {args.repeat} x {args.repeat} copies of {args.ident}: {height} x {width}", flush=True)
    for rule in ("on", "off"):
        output = folder / f"probs_{rule}.npy"
        result = subprocess.run([sys.executable, __file__, "--worker", "--rule", rule, "--path", str(image),
                                 "--output", str(output), "--strip", str(args.strip)],
                                capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"rule {rule:>3s}: scale {row['scale']}, {row['megapixels']:.1f} MP in {row['seconds']:.1f} s = "
              f"{row['mp_per_s']:.3f} MP/s, {row['tiles_predicted']} tiles, peak RSS {row['peak_rss_mb']:.0f} MiB "
              f"(after imports {row['rss_after_imports_mb']:.0f} MiB)", flush=True)
    if args.compare:
        print(compare(image, folder / "probs_on.npy"), flush=True)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
