"""Dropping doubtful objects: the object filter fitted on training crops, scored on the validation images.

The object filter (``unetkit.inference.object_filter``) is fitted as an instances run fits it at its end: on
the ``postprocess.tune_images`` training crops of ``unetkit.training.finalize`` (never validation images), for
the model's threshold / seeds / min size. This script then scores the 80 validation images of the DSB split
(``benchmarks/pretrain.py``) at every cut the fit tried, the chosen one marked, with and without flip TTA,
per image type, and two bounds that no filter reaches: every object without a truth at IoU > 0.5 (or 0.6)
dropped, known from the truth.

    .venv/bin/python benchmarks/object_filter.py [--model nuclei | --model run/last.pt] [--no-tta]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pretrain import image_type, probabilities, split, tuning_crops  # noqa: E402  (the model card's split)


def scored(rows: list[dict], keeps: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """Image type (and "all") -> (mean DSB score, mean AP50) with the objects of ``keeps`` only."""
    from unetkit.inference.object_filter import keep_objects
    from unetkit.metrics.instances import instance_scores

    by_type: dict[str, list[tuple[float, float]]] = {}
    for row, keep in zip(rows, keeps, strict=True):
        result = instance_scores(row["truth"], keep_objects(row["labels"], keep))
        for name in ("all", row["type"]):
            by_type.setdefault(name, []).append((result.dsb_score, result.ap50))
    return {name: tuple(np.mean(values, axis=0)) for name, values in by_type.items()}


def main() -> int:
    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.cpu.info import describe
    from unetkit.data.targets import instance_labels
    from unetkit.inference.object_filter import best_iou, filter_for, object_features, object_scores
    from unetkit.inference.postprocess import postprocess
    from unetkit.training.finalize import predict_crops

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="nuclei", help="packaged model name or checkpoint (three-class)")
    parser.add_argument("--no-tta", action="store_true", help="skip the flip TTA rows (4x faster)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {describe()}; torch threads: {torch.get_num_threads()}", flush=True)
    model, config = ckpt.load_model(args.model)
    plain = dataclasses.replace(config.postprocess, object_weights=[], min_object_score=0.0)
    train_samples, val_samples = split("nuclei", ROOT / "benchmarks" / "out" / "object_filter")
    started = time.process_time()
    images, truths = tuning_crops(train_samples, config)
    crops = predict_crops(model, config, torch.device("cpu"), images)
    values, fit = filter_for(crops, truths, plain, "three-class")
    print(f"fitted on {len(images)} training crops ({fit.objects} objects, {fit.wrong} without a truth at IoU > 0.5) "
          f"in {time.process_time() - started:.0f} CPU-s; chosen cut {values['min_object_score']:g}; their mean DSB "
          "score by cut: " + " ".join(f"{cut:g}:{score:.4f}" for cut, score in fit.scores.items()), flush=True)
    header = "| validation images | cut | all: DSB / AP50 | fluorescence | histology | brightfield |"
    print(header + "\n" + "| --- " * 6 + "|")
    for tta in (False,) if args.no_tta else (False, True):
        tta_config = apply_overrides(config, {"inference.tta": tta})
        rows = []
        for sample in val_samples:
            probs, labels = probabilities(model, tta_config, sample)
            truth = instance_labels(np.asarray(labels))
            predicted = postprocess(probs, plain, "three-class")
            rows.append({"truth": truth, "labels": predicted, "type": image_type(sample.image_path),
                         "scores": object_scores(object_features(probs, predicted), fit.weights) if fit.weights
                         else np.ones(int(predicted.max())), "iou": best_iou(truth, predicted)})
        name = "flip TTA" if tta else "plain"
        lines = [(f"{cut:g}" + (" (chosen)" if cut == values["min_object_score"] else ""),
                  [row["scores"] >= cut for row in rows]) for cut in fit.scores]
        lines += [(f"truth-known: IoU > {bound}", [row["iou"] > bound for row in rows]) for bound in (0.5, 0.6)]
        for label, keeps in lines:
            result = scored(rows, keeps)
            cells = " | ".join(f"{result[t][0]:.4f} / {result[t][1]:.4f}" if t in result else "-"
                               for t in ("all", "fluorescence", "histology", "brightfield"))
            print(f"| {len(rows)}, {name} | {label} | {cells} |", flush=True)
    print(f"total {time.process_time() - started:.0f} CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
