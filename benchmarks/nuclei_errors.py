"""What the nuclei model gets wrong on the DSB validation split: errors by kind, image type and size.

Predicts the 15 % validation split of ``benchmarks/dsb2018.py`` (the images the shipped ``nuclei`` model
never saw) with a packaged model or a checkpoint and its own post-processing, then sorts every truth nucleus
and every predicted object at IoU 0.5 (the AP50 matching of ``unetkit.metrics.instances``):

- truth: *matched* (IoU > 0.5 with one prediction); *missed* (under half of it is predicted foreground);
  *merged* (the prediction holding most of it also holds most of another nucleus); *split* (two or more
  predictions each hold a fifth of it or more); *poor fit* (the rest: found, but outlined too loosely);
- prediction, unmatched: *false positive* (under a fifth of it lies on truth foreground), else it is the
  other side of a merge, split or poor fit.

Per truth size it also gives the area of each matched prediction over its nucleus's (a median above 1: outlines
drawn too large). It prints how far the DSB score (mean over IoU 0.50..0.95) stands below AP50 because of the outline
quality of matched nuclei (their IoU), and two conservative bounds: the AP50 with every merged and split
nucleus counted as matched (perfect seeds), and with every missed one matched (perfect recall of
foreground), unmatched predictions kept in both.
Where the DSB score is lost: the mean score at each IoU threshold, and the *outline bound*, the DSB score if
every predicted object were redrawn at the foreground threshold (``OUTLINE_THRESHOLDS``) that fits its own
truth nucleus best (``best_outlines``): an upper bound for any per-object outline correction, since it is
chosen with the truth in hand (and chooses the best of seven, so noise alone lifts it a little).
Probabilities are cached in ``--out`` (a folder per weights file, named by its sha256) so a rerun re-sorts
without predicting.

    .venv/bin/python benchmarks/nuclei_errors.py [--model nuclei | --model run/last.pt] [--tta]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from dsb2018 import image_type  # noqa: E402
from pretrain import probabilities, split  # noqa: E402  (the same split and prediction as the model card)

OUTLINE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OUTLINE_REACH = 3  # px an object may grow into the background around it when redrawn at a lower threshold
SIZES = ((0, 100, "< 100 px"), (100, 400, "100-400 px"), (400, 10**9, ">= 400 px"))
TRUTH_KINDS = ("matched", "missed", "merged", "split", "poor fit")


def sort_errors(truth: np.ndarray, pred: np.ndarray) -> tuple[list[tuple[str, int, float]], Counter]:
    """([(kind, size, best IoU) per truth nucleus], Counter of unmatched predictions by kind)."""
    from unetkit.metrics.instances import pair_overlaps

    pairs = pair_overlaps(truth, pred)
    ti, pj, inter, iou = pairs.truth_index, pairs.pred_index, pairs.intersection, pairs.iou
    covers = inter / pairs.truth_size[ti]  # share of the pair's truth inside its prediction
    matched_t = np.zeros(pairs.n_true, dtype=bool)
    matched_t[ti[iou > 0.5]] = True
    matched_p = np.zeros(pairs.n_pred, dtype=bool)
    matched_p[pj[iou > 0.5]] = True
    starts = np.searchsorted(ti, np.arange(1, pairs.n_true))  # pairs come sorted by truth index
    by_truth = np.split(np.arange(ti.size), starts)[:pairs.n_true]
    truths = []
    for i, own in enumerate(by_truth):
        best = float(iou[own].max()) if own.size else 0.0
        if matched_t[i]:
            kind = "matched"
        elif covers[own].sum() < 0.5:
            kind = "missed"
        else:
            j = pj[own[np.argmax(inter[own])]]  # the prediction holding most of this nucleus
            if np.any((pj == j) & (ti != i) & (covers > 0.5)):
                kind = "merged"  # ... also holds most of another one
            elif np.count_nonzero(covers[own] >= 0.2) >= 2:
                kind = "split"
            else:
                kind = "poor fit"
        truths.append((kind, int(pairs.truth_size[i]), best))
    on_truth = np.bincount(pj, weights=inter, minlength=pairs.n_pred) / np.maximum(pairs.pred_size, 1)
    preds: Counter = Counter()  # unmatched predictions, by the share of them on truth foreground
    for j in np.flatnonzero(~matched_p):
        preds["false positive" if on_truth[j] < 0.2 else "other side of a merge/split/poor fit"] += 1
    return truths, preds


def matched_areas(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(n, 2) pixel areas (truth, prediction) of the pairs matched at IoU > 0.5: are outlines too large or small?"""
    from unetkit.metrics.instances import pair_overlaps

    pairs = pair_overlaps(truth, pred)
    matched = pairs.iou > 0.5
    return np.stack([pairs.truth_size[pairs.truth_index[matched]], pairs.pred_size[pairs.pred_index[matched]]],
                    axis=1).astype(np.int64).reshape(-1, 2)


def outline_variants(foreground: np.ndarray, pred: np.ndarray,
                     thresholds: tuple[float, ...] = OUTLINE_THRESHOLDS) -> list[np.ndarray]:
    """``pred`` (ids 1..N) redrawn at each threshold of the foreground probability: each object keeps the
    pixels above it in its own area, grown by ``OUTLINE_REACH`` px into the background (never into another
    object), so a lower threshold can widen an outline and a higher one narrows it; ids are unchanged."""
    from skimage.segmentation import expand_labels

    reach = expand_labels(pred, OUTLINE_REACH)
    return [np.where(foreground > t, reach, 0).astype(pred.dtype) for t in thresholds]


def best_outlines(truth: np.ndarray, variants: list[np.ndarray]) -> np.ndarray:
    """Labels with each object (id 1..N, the ids of every variant) taken from the variant where its IoU with
    its best-overlapping truth nucleus is highest (ties: the first variant); objects found in no variant
    vanish."""
    from unetkit.inference.object_filter import best_iou

    count = max(int(v.max(initial=0)) for v in variants)
    ious = np.full((len(variants), count + 1), -1.0)
    for k, variant in enumerate(variants):
        ious[k, np.unique(variant[variant > 0])] = best_iou(truth, variant)  # objects in id order
    choice = ious.argmax(0)
    best = np.zeros_like(variants[0])
    for k, variant in enumerate(variants):
        best = np.where((choice[variant] == k) & (variant > 0), variant, best)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nuclei", help="packaged model name or checkpoint")
    parser.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "nuclei_errors")
    args = parser.parse_args()
    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.cpu.info import describe
    from unetkit.data.targets import instance_labels
    from unetkit.inference.postprocess import postprocess
    from unetkit.metrics.instances import instance_scores
    from unetkit.pretrained import sha256_of
    from unetkit.tasks import get_task

    torch.set_num_threads(args.threads)
    print(f"CPU: {describe()}; model {args.model}{' + flip TTA' if args.tta else ''}", flush=True)
    model, config = ckpt.load_model(args.model)
    config = apply_overrides(config, {"inference.tta": args.tta})
    kind = get_task(config).instance_kind(config)
    _, val_samples = split("nuclei", ROOT / "benchmarks" / "out" / "pretrain" / "nuclei")
    weights = sha256_of(ckpt.resolve_path(args.model))[:12]  # a new version or checkpoint: a new cache
    cache = args.out / f"{Path(args.model).stem}-{weights}{'-tta' if args.tta else ''}"
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in val_samples:
        stored = cache / f"{sample.name}.npz"
        if stored.exists():
            with np.load(stored) as saved:
                probs, truth = saved["probs"], saved["truth"]
        else:
            probs, labels = probabilities(model, config, sample)
            probs, truth = probs.astype(np.float16), instance_labels(labels)  # as a rerun reads them back
            np.savez_compressed(stored.with_suffix(".tmp.npz"), probs=probs, truth=truth)
            stored.with_suffix(".tmp.npz").rename(stored)
        pred = postprocess(probs.astype(np.float32), config.postprocess, kind)
        truths, preds = sort_errors(truth, pred)
        scores = instance_scores(truth, pred)
        redrawn = best_outlines(truth, outline_variants(1.0 - probs[0].astype(np.float32), pred))
        rows.append({"type": image_type(sample.image_path), "truths": truths, "preds": preds,
                     "areas": matched_areas(truth, pred), "dsb": scores.dsb_score, "ap50": scores.ap50,
                     "by_threshold": scores.score, "outline_dsb": instance_scores(truth, redrawn).dsb_score})
    report(rows)
    return 0


def report(rows: list[dict]) -> None:
    """Tables: truth nuclei by kind per image type and per size; unmatched predictions; bounds."""
    print(f"\n{len(rows)} validation images; DSB score {np.mean([r['dsb'] for r in rows]):.4f}, "
          f"AP50 {np.mean([r['ap50'] for r in rows]):.4f}\n")
    print("| image type | images | nuclei | " + " | ".join(TRUTH_KINDS) + " | unmatched predictions: false "
          "positive / other side |")
    print("| --- " * (len(TRUTH_KINDS) + 4) + "|")
    for name in ["all", *sorted({r["type"] for r in rows})]:
        group = [r for r in rows if name in ("all", r["type"])]
        kinds = Counter(k for r in group for k, _, _ in r["truths"])
        total = sum(kinds.values())
        preds = sum((r["preds"] for r in group), Counter())
        print(f"| {name} | {len(group)} | {total} | "
              + " | ".join(f"{kinds[k] / max(total, 1):.1%}" for k in TRUTH_KINDS)
              + f" | {preds['false positive']} / {preds['other side of a merge/split/poor fit']} |")
    print("\n| truth size | nuclei | " + " | ".join(TRUTH_KINDS) + " | median IoU of matched | predicted / "
          "truth area of matched: median (quartiles) |")
    print("| --- " * (len(TRUTH_KINDS) + 4) + "|")
    areas = np.concatenate([r["areas"] for r in rows])
    for low, high, label in SIZES:
        items = [(k, iou) for r in rows for k, s, iou in r["truths"] if low <= s < high]
        kinds = Counter(k for k, _ in items)
        matched = [iou for k, iou in items if k == "matched"]
        sized = areas[(areas[:, 0] >= low) & (areas[:, 0] < high)]
        ratio = np.percentile(sized[:, 1] / sized[:, 0], (50, 25, 75)) if len(sized) else np.full(3, np.nan)
        print(f"| {label} | {len(items)} | " + " | ".join(f"{kinds[k] / max(len(items), 1):.1%}" for k in TRUTH_KINDS)
              + f" | {np.median(matched) if matched else float('nan'):.3f} | {ratio[0]:.3f} ({ratio[1]:.3f}-"
              f"{ratio[2]:.3f}) |")
    for name, kinds in {"seeds": ("merged", "split"), "recall": ("missed",)}.items():
        values = []
        for r in rows:  # unmatched predictions kept as they are: a conservative bound
            tp = sum(k == "matched" for k, _, _ in r["truths"])
            gained = sum(k in kinds for k, _, _ in r["truths"])
            denominator = len(r["truths"]) + sum(r["preds"].values())
            values.append((tp + gained) / denominator if denominator else 1.0)
        print(f"\nAP50 with perfect {name} ({' and '.join(kinds)} nuclei counted as matched, unmatched "
              f"predictions kept): {np.mean(values):.4f}")
    matched = np.array([iou for r in rows for k, _, iou in r["truths"] if k == "matched"])
    hits = [(matched > t).mean() for t in np.arange(0.5, 1.0, 0.05)]
    print("share of AP50-matched nuclei still matched at IoU 0.50, 0.55, ..., 0.95: "
          + " ".join(f"{h:.2f}" for h in hits))
    print("\n| image type | score at IoU 0.50, 0.55, ..., 0.95 | DSB score | outline bound |\n"
          "| --- | --- | --- | --- |")
    for name in ["all", *sorted({r["type"] for r in rows})]:
        group = [r for r in rows if name in ("all", r["type"])]
        curve = np.mean([r["by_threshold"] for r in group], axis=0)
        print(f"| {name} | {' '.join(f'{v:.3f}' for v in curve)} | {np.mean([r['dsb'] for r in group]):.4f} | "
              f"{np.mean([r['outline_dsb'] for r in group]):.4f} |")


if __name__ == "__main__":
    sys.exit(main())
