"""The end of an instances run: its post-processing tuned on training images and stored in its checkpoints.

Why: the post-processing defaults (threshold 0.5, seeds > 0.7, min size 15) are a guess, and the values
that score best depend on the data and on how far the network trained (the DSB runs of BENCHMARKS.md
chose 0.6 / 0.8 / 30). ``unetkit tune-postprocess --update`` does this by hand; an instances run now does
it at its end, so ``unetkit predict --instances`` uses tuned values without another command.

What it does, on the first process only: ``postprocess.tune_images`` training images (96; drawn with a
fixed seed as ``benchmarks/dsb2018.py`` does; never validation images, which choose best.pt and score the
run) are centre-cropped to at most ``MAX_SIDE`` px per axis, predicted once per checkpoint, and
``tune_postprocess`` searches ``DEFAULT_GRID`` (threshold x seed threshold x min size, 36 points; the
watershed runs 12 times per image) for the best mean DSB score (unless the crops hold fewer than
``postprocess.tune_min_objects`` truth objects: then the configured values stay); for three-class outputs
the object filter (``unetkit.inference.object_filter``) is then fitted on the same crops for the winning
values, and kept only where dropping doubtful objects scores better on them. The winner goes into the config of
``last.pt`` (the weights it was tuned for; the config its epochs ran with is kept beside it, which ``--resume``
continues) and ``summary.json`` (``postprocess_tuned``), and ``best.pt`` gets the values tuned again for its own
weights when it holds an earlier epoch; both are rewritten atomically. ``config.yaml`` stays the config the run
trained with, so that a run repeated from it validates as this one did. ``postprocess.tune_after_training
=false`` keeps the configured values. Cost: at most 96 crops of 512 x 512 px predicted (twice when best.pt
is an earlier epoch) and post-processed 36 times each: ~50 CPU-s on one core for a 16-wide net on DSB 2018
(24 crops took 12 CPU-s, BENCHMARKS.md "Network width on a CPU").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from unetkit import checkpoint as ckpt
from unetkit.checkpoint import store_postprocess as store_postprocess
from unetkit.config import PostprocessConfig, RunConfig, apply_overrides
from unetkit.data.splits import SplitData
from unetkit.inference.object_filter import MIN_WRONG, ObjectFilterFit, filter_for
from unetkit.inference.postprocess import DEFAULT_GRID, grid_keys, prefer_configured, tune_postprocess
from unetkit.inference.predictor import Predictor
from unetkit.metrics.instances import truth_objects

TUNE_SEED = 1  # the seed of the draws of benchmarks/dsb2018.py and benchmarks/pretrain.py (24 of the training split)
MAX_SIDE = {2: 512, 3: 128}  # px per axis of a tuning crop: bounds the prediction and watershed cost


def centre_window(shape: tuple[int, ...], side: int) -> tuple[slice, ...]:
    """The centre ``side`` px of each axis of ``shape`` (all of an axis shorter than that)."""
    return tuple(slice(max(0, (n - side) // 2), max(0, (n - side) // 2) + side) for n in shape)


def tuning_set(train: SplitData, count: int, dims: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(images (C, *S), instance labels (*S)) of ``count`` training images drawn with ``TUNE_SEED``, each
    centre-cropped to at most ``MAX_SIDE[dims]`` px per spatial axis (image and labels alike)."""
    chosen = np.random.default_rng(TUNE_SEED).choice(len(train.images), min(count, len(train.images)),
                                                     replace=False)
    images, truths = [], []
    for index in chosen:
        labels = np.asarray(train.labels[index])
        window = centre_window(labels.shape, MAX_SIDE[dims])
        images.append(np.ascontiguousarray(train.images[index][(slice(None), *window)]))
        truths.append(np.ascontiguousarray(labels[window]))
    return images, truths


def predict_crops(model: torch.nn.Module, config: RunConfig, device: torch.device,
                  images: list[np.ndarray]) -> list[np.ndarray]:
    """``model``'s whole-crop outputs (C, *S) of ``images`` (the inference ``Predictor``); its mode is kept."""
    predictor = Predictor(model, config, device)
    training = model.training
    try:
        return [predictor.output(image) for image in images]
    finally:
        model.train(training)


def tune_for_model(model: torch.nn.Module, config: RunConfig, device: torch.device, images: list[np.ndarray],
                   truths: list[np.ndarray], kind: str, probs: list[np.ndarray] | None = None,
                   ) -> tuple[dict[str, Any], float, float | None]:
    """(best values of the grid's keys, their mean DSB score, the score of the configured values when they
    are a grid point) for ``model``'s whole-crop predictions (``probs`` when already predicted). Configured
    values that tie with the best are kept: the values change only where the images show a gain. With fewer
    than ``postprocess.tune_min_objects`` truth objects in ``truths`` the configured values are kept and scored."""
    probs = predict_crops(model, config, device, images) if probs is None else probs
    if truth_objects(truths) < config.postprocess.tune_min_objects:  # too few to choose on: score the configured
        configured = {key: [getattr(config.postprocess, key)] for key in DEFAULT_GRID}
        _, rows = tune_postprocess(probs, truths, kind, configured, base=config.postprocess)
        values = {key: rows[0][key] for key in DEFAULT_GRID if key in rows[0]}
        return values, rows[0]["score"], rows[0]["score"]
    best, rows = tune_postprocess(probs, truths, kind, DEFAULT_GRID, base=config.postprocess)
    best, rows, start = prefer_configured(best, rows, config.postprocess)
    return {key: getattr(best, key) for key in grid_keys(rows)}, rows[0]["score"], start  # seeds: seeded routes


def tuned(config: RunConfig, values: dict[str, Any]) -> PostprocessConfig:
    """``config.postprocess`` with the grid's ``values``."""
    return apply_overrides(config, {f"postprocess.{k}": v for k, v in values.items()}).postprocess



def finish_postprocess(run: Any) -> dict[str, Any] | None:
    """Tune an instances run's post-processing (see the module docstring); the first process only.

    ``run`` is the ``unetkit.training.loop.Run`` whose epochs have ended (``run.model`` holds the weights of
    ``last.pt``). Returns the values stored in last.pt, or None when nothing was tuned.
    """
    config = run.config
    if not run.ctx.is_main or not run.task.tunes_postprocess or not config.postprocess.tune_after_training:
        return None
    if config.data.sparse_labels or not run.train.images or not run.history:
        if config.data.sparse_labels:
            print("post-processing not tuned: sparse labels (unannotated objects cannot be scored)", flush=True)
        return None
    started = time.monotonic()
    dims = len(run.input_size)
    images, truths = tuning_set(run.train, config.postprocess.tune_images, dims)
    kind = run.task.instance_kind(config)
    values, text = tune_and_fit(run.model, config, run.device, images, truths, kind)
    last_config = store_postprocess(run.run_dir / "last.pt", values)
    stored = [text + " -> last.pt"]
    best_path = run.run_dir / "best.pt"
    if best_path.exists() and run.best_epoch == run.history[-1]["epoch"]:  # the same weights
        store_postprocess(best_path, values)
        stored = [stored[0] + ", best.pt"]
    elif best_path.exists():  # an earlier epoch: tuned for its own weights
        model, _ = ckpt.load_model(best_path, run.device)
        best_values, best_text = tune_and_fit(model, config, run.device, images, truths, kind)
        store_postprocess(best_path, best_values)
        stored.append(best_text + f" -> best.pt (epoch {run.best_epoch})")
    run.config = last_config  # config.yaml keeps the values the epochs ran with (a retrain from it repeats them)
    run.postprocess_tuned = values
    objects, needed = truth_objects(truths), config.postprocess.tune_min_objects
    few = (f"; the grid kept as configured: {objects} truth objects on them, fewer than "
           f"postprocess.tune_min_objects={needed}") if objects < needed else ""
    print(f"post-processing tuned on {len(images)} training images (crops <= {MAX_SIDE[dims]} px, "
          f"{time.monotonic() - started:.0f} s{few}): {'; '.join(stored)} (postprocess.tune_after_training=false "
          "keeps the configured values)", flush=True)
    report_tuned_validation(run)
    return values


def tune_and_fit(model: torch.nn.Module, config: RunConfig, device: torch.device, images: list[np.ndarray],
                 truths: list[np.ndarray], kind: str) -> tuple[dict[str, Any], str]:
    """(the grid's winner and the object filter fitted for it, as ``postprocess`` values; their description)
    for ``model``'s predictions of the tuning crops (what a run's end stores; ``benchmarks/pretrain.py``'s soups
    too)."""
    probs = predict_crops(model, config, device, images)
    values, score, start = tune_for_model(model, config, device, images, truths, kind, probs)
    filtered, fit = filter_for(probs, truths, tuned(config, values), kind)
    return values | filtered, _describe(values, score, start, fit)


def report_tuned_validation(run: Any) -> None:
    """Score last.pt's weights on the validation images once more, with the post-processing just tuned, into
    ``run.tuned_scores`` (summary.json) and one printed line. Why: the validation of every epoch uses the
    configured values, which the tuning replaces, so its DSB score is not what ``predict`` gives (on DSB 2018
    0.01-0.02 lower: BENCHMARKS.md); this is. Costs one more validation pass; none without validation images."""
    from unetkit.training.validation import validate

    if not run.val.images or run.task.score_key not in run.history[-1]:
        return
    scores = validate(run.model, run.val, run.config, run.device)
    keys = [key for key in (run.task.score_key, "val_ap50") if key in scores]
    run.tuned_scores = {f"{key}_tuned": round(scores[key], 4) for key in keys}
    shown = ", ".join(f"{key} {scores[key]:.3f} (epoch {run.history[-1]['epoch']}'s validation: "
                      f"{run.history[-1][key]:.3f})" for key in keys if key in run.history[-1])
    print(f"last.pt on the {len(run.val.images)} validation images with the tuned post-processing: {shown}",
          flush=True)


def _describe(values: dict[str, Any], score: float, start: float | None, fit: ObjectFilterFit | None = None) -> str:
    """e.g. ``threshold=0.6 seed_threshold=0.8 min_size=30, mean DSB score 0.512 on them (0.478 with the
    configured values); objects scored below 0.6 dropped: 0.523``."""
    shown = " ".join(f"{key}={value:g}" for key, value in values.items())
    before = f" ({start:.3f} with the configured values)" if start is not None else ""
    text = f"{shown}, mean DSB score {score:.3f} on them{before}"
    if fit is not None and fit.min_score > 0:
        text += f"; objects scored below {fit.min_score:g} dropped: {fit.scores[fit.min_score]:.3f}"
    elif fit is not None and fit.wrong < MIN_WRONG:
        text += (f"; no object filter ({fit.wrong} of {fit.objects} objects without a truth on them, fewer than "
                 f"the {MIN_WRONG} its fit needs)")
    elif fit is not None:
        text += "; no object filter (dropping doubtful objects did not score better on them)"
    return text
