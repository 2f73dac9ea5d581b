"""Time and peak memory of the instance stage of `unetkit predict --instances`, step by step, on one large image.

    .venv/bin/python benchmarks/instance_stage.py                 # 3000 x 3000 px, ~22,000 nuclei
    .venv/bin/python benchmarks/instance_stage.py --side 2000

The image is synthetic and needs no network: a grid of disks (radius 7 and 9 px, every 20 px) drawn as sure
three-class probabilities (interior inside, a 2 px boundary ring, background elsewhere), so each step sees
about as many objects per pixel as a crowded fluorescence field. Steps: the watershed post-processing
(``labels_from_three_class``), the object filter's features (``object_features``, for models that have one),
the object table (``object_table`` with a 3-channel image), and the colours of the instance overlay
(``instance_colours``). Each is run once for its time, then once under tracemalloc for its peak of Python-side
allocations (numpy included), in bytes per pixel.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def synthetic(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(three-class probabilities (3, side, side) float32, true labels (side, side))."""
    from scipy import ndimage as ndi
    from skimage.draw import disk

    labels = np.zeros((side, side), np.int32)
    index = 0
    for y in range(10, side - 10, 20):
        for x in range(10, side - 10, 20):
            index += 1
            rows, cols = disk((y, x), 9 if (x // 20) % 2 else 7, shape=labels.shape)
            labels[rows, cols] = index
    foreground = labels > 0
    inner = ndi.binary_erosion(foreground, iterations=2)
    probs = np.zeros((3, side, side), np.float32)
    probs[1] = np.where(inner, 0.9, np.where(foreground, 0.3, 0.02))
    probs[2] = np.where(foreground & ~inner, 0.6, 0.03)
    probs[0] = 1 - probs[1] - probs[2]
    return probs, labels


def measure(step: Callable[[], object], pixels: int) -> tuple[float, float, object]:
    """(seconds, peak bytes per pixel, result) of ``step``."""
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / pixels, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=3000)
    args = parser.parse_args()
    from unetkit.inference.object_filter import object_features
    from unetkit.inference.objects import object_table
    from unetkit.inference.postprocess import labels_from_three_class
    from unetkit.visualize.instances import instance_colours

    probs, truth = synthetic(args.side)
    pixels = truth.size
    image = np.random.default_rng(0).random((3, args.side, args.side)).astype(np.float32)
    print(f"CPU: {cpu_model()}; {args.side} x {args.side} px, {int(truth.max())} objects")
    print("| step | seconds | peak bytes per pixel |")
    print("| --- | --- | --- |")
    seconds, peak, labels = measure(lambda: labels_from_three_class(probs, 0.6, 0.8, 30), pixels)
    print(f"| watershed post-processing | {seconds:.2f} | {peak:.1f} |", flush=True)
    for name, step in (("object filter features", lambda: object_features(probs, labels)),
                       ("object table (3 channels)", lambda: object_table(labels, image)),
                       ("overlay colours", lambda: instance_colours(labels))):
        seconds, peak, _ = measure(step, pixels)
        print(f"| {name} | {seconds:.2f} | {peak:.1f} |", flush=True)


if __name__ == "__main__":
    main()
