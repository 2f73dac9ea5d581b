"""fp32 vs bf16 autocast prediction on a CPU: speed and accuracy of the shipped ``nuclei`` model.

Scores the packaged model on the fixed DSB 2018 validation split (the 80 images it never saw, the split
and scoring of ``benchmarks/dsb2018.py``) once per precision, interleaved image by image so that a
busy machine slows both alike, and prints DSB score, AP50, Dice, the largest probability difference and
the prediction time per precision:

    .venv/bin/python benchmarks/precision.py --threads 2 [--limit 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dsb2018 import image_type  # noqa: E402
from pretrain import split  # noqa: E402

from unetkit.cpu.info import describe  # noqa: E402
from unetkit.data.channels import match_channels  # noqa: E402
from unetkit.data.layouts import load_sample  # noqa: E402
from unetkit.data.targets import instance_labels  # noqa: E402
from unetkit.inference.postprocess import postprocess  # noqa: E402
from unetkit.inference.predictor import Predictor  # noqa: E402
from unetkit.metrics.binary import binary_counts, dice  # noqa: E402
from unetkit.metrics.instances import instance_scores  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N validation images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(describe())
    _, val_samples, _ = split("nuclei")
    val_samples = val_samples[: args.limit or None]
    predictors = {p: Predictor.load("nuclei", "cpu", precision=p) for p in PRECISIONS}
    config = predictors["fp32"].config
    kind = predictors["fp32"].task.instance_kind(config)
    rows = {p: [] for p in PRECISIONS}
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    largest_difference = 0.0
    for sample in val_samples:
        image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
        image = match_channels(image, config.model.in_channels, sample.image_path)  # as training read it
        truth = instance_labels(labels)
        probabilities = {}
        for precision, predictor in predictors.items():
            started = time.perf_counter()
            probabilities[precision] = probs = predictor.output(image)
            seconds[precision] += time.perf_counter() - started
            scores = instance_scores(truth, postprocess(probs, config.postprocess, kind))
            rows[precision].append({"type": image_type(sample.image_path), "dsb_score": scores.dsb_score,
                                    "ap50": scores.ap50, "dice": dice(binary_counts(truth > 0, probs[0] < 0.5))})
        largest_difference = max(largest_difference, float(np.abs(probabilities["bf16"] - probabilities["fp32"]).max()))
    print(f"{len(val_samples)} DSB validation images, packaged model 'nuclei', {args.threads} threads")
    print("| precision | DSB score | AP50 | Dice | fluorescence DSB | histology DSB | predict s | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for precision in PRECISIONS:
        group = rows[precision]

        def mean(key, kind_of=None, group=group):
            chosen = [r[key] for r in group if kind_of is None or r["type"] == kind_of]
            return f"{np.mean(chosen):.4f}" if chosen else "-"

        print(f"| {precision} | {mean('dsb_score')} | {mean('ap50')} | {mean('dice')} | "
              f"{mean('dsb_score', 'fluorescence')} | {mean('dsb_score', 'histology')} | {seconds[precision]:.1f} | "
              f"{seconds['fp32'] / seconds[precision]:.2f}x |")
    print(f"largest probability difference bf16 vs fp32: {largest_difference:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
