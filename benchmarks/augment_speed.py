"""Cost of the augmentations and weight maps per training sample, against a training step.

Prints ms per sample at the paper's tile size (572x572: image, int labels, float weights) and for a
64^3 volume, the weight map of 512x512 images with ~100 and ~400 cells, and one CPU training step of
the paper's recipe network for comparison (loading must stay cheaper than the step).

    .venv/bin/python benchmarks/augment_speed.py --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy import ndimage

from unetkit.cpu.info import describe, torch_threads
from unetkit.data.weightmaps import weight_map
from unetkit.losses import weighted_cross_entropy
from unetkit.models.unet import UNet
from unetkit.transforms.elastic import RandomElastic
from unetkit.transforms.intensity import RandomIntensity
from unetkit.transforms.spatial import RandomAffine, RandomFlip, RandomRot90


def sample(shape, rng):
    labels = rng.integers(0, 50, shape).astype(np.int64)
    return {"image": rng.random((1, *shape), dtype=np.float32), "target": labels,
            "weights": rng.random(shape, dtype=np.float32)}


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def cells(count: int, rng) -> np.ndarray:
    seeds = np.zeros((512, 512), np.int32)
    points = rng.integers(0, 512, (count, 2))
    seeds[points[:, 0], points[:, 1]] = np.arange(1, count + 1)
    return ndimage.grey_dilation(seeds, size=(11, 11))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--base-channels", type=int, default=64, help="network width for the step timing")
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for dims, shape in ((2, (572, 572)), (3, (64, 64, 64))):
        s = sample(shape, rng)
        for name, transform in (("flip", RandomFlip(dims)), ("rot90", RandomRot90(dims)),
                                ("intensity", RandomIntensity(p=1.0)), ("affine", RandomAffine(dims, 15, 0.05)),
                                ("elastic, cubic image", RandomElastic(dims, image_order=3)),
                                ("elastic, linear image", RandomElastic(dims, image_order=1))):
            draws = np.random.default_rng(1)  # one generator per row: every call draws new parameters
            rows.append((f"{name} {'x'.join(map(str, shape))}",
                         median_ms(lambda t=transform, s=s, g=draws: t(s, g), args.repeats)))
    for count in (100, 400):
        labels = cells(count, rng)
        rows.append((f"weight map 512x512, {labels.max()} cells", median_ms(lambda x=labels: weight_map(x), 3)))
    net = UNet(1, 2, padding="valid", base_channels=args.base_channels, dropout=0.5, init="he")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99)
    x, y = torch.rand(1, 1, 572, 572), torch.randint(0, 2, (1, 388, 388))

    def step():
        loss = weighted_cross_entropy(net(x), y, torch.ones(1, 388, 388))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    rows.append((f"training step, paper net (base {args.base_channels}) 572x572",
                 median_ms(step, max(1, args.repeats // 2))))
    print(f"{'operation':<46} {'ms':>10}   ({torch.get_num_threads()} torch thread(s))")
    for name, ms in rows:
        print(f"{name:<46} {ms:>10.1f}")


if __name__ == "__main__":
    main()
