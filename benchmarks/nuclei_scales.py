"""Images of small nuclei at 2x (the shipped rule), 3x or 4x: which factor serves the ``nuclei`` model best?

Version 10 enlarges an image 2x when the median nucleus of its first answer is under 100 px. This script caches
the shipped model's probabilities of the 80 validation images of the fixed DSB split at 1x and, for those whose
first-answer median is under 150 px, at 2x (``enlarge``), 3x and 4x (skimage ``rescale``, cubic, unclipped),
each brought back by the mean of its k x k blocks, then scores rules on the cache (DSB score; the model's own
post-processing and object filter at the image's own size):

- every image whose median is under A px (75, 100, 150) at factor k (2, 3, 4);
- a size-adaptive factor round(sqrt(T / median)) in 2..4 for the images under 100 px;
- the mean of several factors' probabilities for those images.

    nice -n 10 .venv/bin/python benchmarks/nuclei_scales.py --threads 1          # under an hour, flip TTA
    .venv/bin/python benchmarks/nuclei_scales.py --no-tta                        # its own cache

Probabilities are cached in ``benchmarks/out/nuclei_scales/<tta|plain>/`` (``--cache``); a second run only scores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pretrain import load_normalised, split  # noqa: E402  (the fixed split and the scoring's normalisation)

CACHED_BELOW = 150  # px: images whose first-answer median is under this are predicted at 2x, 3x and 4x too
FACTORS = (2, 3, 4)


def cached_outputs(predictor, image: np.ndarray, path: Path, config, kind: str) -> dict[str, np.ndarray]:
    """{"p1": 1x output, "med": first-answer median, and "p2".."p4" for small objects}, from ``path`` or made."""
    from skimage.transform import rescale

    from unetkit.inference.postprocess import postprocess
    from unetkit.inference.small_objects import block_mean, enlarge, median_object_area

    if path.is_file():
        return dict(np.load(path))
    found = {"p1": predictor.single_pass(image)}
    median = median_object_area(postprocess(found["p1"], config.postprocess, kind))
    found["med"] = np.array(median)
    if 0 < median < CACHED_BELOW:
        for k in FACTORS:
            big = enlarge(image) if k == 2 else rescale(image, k, order=3, channel_axis=0, anti_aliasing=False,
                                                         clip=False).astype(np.float32)
            found[f"p{k}"] = block_mean(predictor.single_pass(big), k)
    temporary = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(temporary, **found)
    temporary.replace(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="without flip test-time augmentation")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "nuclei_scales")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.data.targets import instance_labels
    from unetkit.inference.postprocess import postprocess
    from unetkit.inference.predictor import Predictor
    from unetkit.metrics.instances import instance_scores
    from unetkit.tasks import get_task

    model, config = ckpt.load_model(ROOT / "unetkit" / "pretrained" / "nuclei" / "weights.pt")
    config = apply_overrides(config, {"inference.tta": args.tta})
    predictor = Predictor(model, config, "cpu")
    kind = get_task(config).instance_kind(config)
    cache = args.cache / ("tta" if args.tta else "plain")
    cache.mkdir(parents=True, exist_ok=True)
    _, validation = split("nuclei", ROOT / "benchmarks" / "out" / "pretrain" / "nuclei")
    rows = []  # per image: its median and the DSB score of each cached output and mean of outputs
    mixes = {"2x+3x": ("p2", "p3"), "2x+3x+4x": ("p2", "p3", "p4"), "1x+2x": ("p1", "p2"),
             "1x+2x+3x": ("p1", "p2", "p3")}
    for number, sample in enumerate(validation, start=1):
        image, labels = load_normalised(config, sample)
        truth = instance_labels(labels)
        outputs = cached_outputs(predictor, image, cache / f"{sample.name}.npz", config, kind)
        outputs.update({name: np.mean([outputs[key] for key in keys], axis=0) for name, keys in mixes.items()
                        if all(key in outputs for key in keys)})
        row = {"med": float(outputs.pop("med"))}
        row.update({key: instance_scores(truth, postprocess(value, config.postprocess, kind)).dsb_score
                    for key, value in outputs.items()})
        rows.append(row)
        print(f"{number}/{len(validation)} {sample.name[:8]} median {row['med']:.0f} px", file=sys.stderr, flush=True)

    def score(choose) -> float:
        return round(float(np.mean([row[choose(row)] for row in rows])), 4)

    def small(row, below) -> bool:
        return 0 < row["med"] < below

    print(f"{len(rows)} validation images, DSB score, {'flip TTA' if args.tta else 'no TTA'}")
    heads = [f"median under {a} px ({sum(small(r, a) for r in rows)} images)" for a in (75, 100, 150)]
    print(f"| rule | {' | '.join(heads)} |")
    print("| --- | --- | --- | --- |")
    for k in (1, *FACTORS):
        cells = [score(lambda r, a=a, k=k: f"p{k}" if small(r, a) else "p1") for a in (75, 100, 150)]
        print(f"| those images at {k}x | {' | '.join(f'{c:.4f}' for c in cells)} |")
    for t in (200, 300, 400, 600):
        def adaptive(row, t=t):
            return f"p{int(np.clip(round(np.sqrt(t / row['med'])), 2, 4))}" if small(row, 100) else "p1"
        print(f"| factor round(sqrt({t} / median)) in 2..4 | | {score(adaptive):.4f} | |")
    for name in mixes:
        print(f"| mean of {name} | | {score(lambda r, n=name: n if small(r, 100) else 'p1'):.4f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
