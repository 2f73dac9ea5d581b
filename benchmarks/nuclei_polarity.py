"""Does inverting light-background images at prediction time help a nuclei model? (issue 17)

Scores a model (default: the shipped ``nuclei``) on the validation images of one light-background type
group of the fixed DSB split (``benchmarks/dsb2018.py``: 85/15, seed 0) three ways: as they are, inverted
(``1 - x`` on the normalised RGB image) and converted to gray then inverted; DSB score and AP50 per image
and per type, with the model's own post-processing.

Example (the numbers in BENCHMARKS.md, "Light-background nuclei"):
    .venv/bin/python benchmarks/nuclei_polarity.py --model nuclei --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dsb2018 import DSB, image_type  # noqa: E402

VARIANTS = {
    "as they are": lambda x: x,
    "inverted": lambda x: 1.0 - x,
    "gray, inverted": lambda x: np.repeat(1.0 - x.mean(0, keepdims=True), x.shape[0], 0),
}


def main() -> int:
    from unetkit import checkpoint as ckpt
    from unetkit.cpu.info import describe
    from unetkit.data.channels import match_channels
    from unetkit.data.layouts import find_samples, load_sample, split_samples
    from unetkit.data.targets import instance_labels
    from unetkit.inference.postprocess import postprocess
    from unetkit.inference.predictor import predict_probabilities
    from unetkit.metrics.instances import instance_scores
    from unetkit.tasks import get_task

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nuclei", help="a packaged name, checkpoint or run folder")
    parser.add_argument("--types", nargs="+", default=["brightfield", "histology"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not DSB.is_dir():
        print(f"{DSB}: data not found; see ../shared/data/README.md", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    print(describe())
    _, val = split_samples(find_samples(DSB), 0.15, 0)
    model, config = ckpt.load_model(args.model)
    kind = get_task(config).instance_kind(config)
    rows = []
    for sample in val:
        kind_of_image = image_type(sample.image_path)
        if kind_of_image not in args.types:
            continue
        image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
        image = match_channels(image, config.model.in_channels, sample.image_path)
        truth = instance_labels(labels)
        row = {"type": kind_of_image}
        for name, change in VARIANTS.items():
            probs = predict_probabilities(model, change(image).astype(np.float32), config, "cpu")
            scores = instance_scores(truth, postprocess(probs, config.postprocess, kind))
            row[name] = (scores.dsb_score, scores.ap50)
        rows.append(row)
        print(sample.name[:12], kind_of_image, {k: f"{v[0]:.3f}/{v[1]:.3f}" for k, v in row.items() if k != "type"},
              flush=True)
    print("\n| images | " + " | ".join(VARIANTS) + " |\n| --- |" + " --- |" * len(VARIANTS))
    for name in args.types:
        group = [r for r in rows if r["type"] == name]
        if group:
            cells = [f"{np.mean([r[v][0] for r in group]):.3f} / {np.mean([r[v][1] for r in group]):.3f}"
                     for v in VARIANTS]
            print(f"| {name} ({len(group)}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
