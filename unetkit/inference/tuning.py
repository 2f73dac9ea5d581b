"""Tune instance post-processing on labelled images with a trained checkpoint.

Predicts the images once, grid-searches the post-processing parameters for the best mean DSB score
(``postprocess.tune_postprocess``), fits the object filter for the winner (three-class outputs;
``object_filter.filter_for``), and can store both in the checkpoint so that ``unetkit predict --instances``
uses them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from unetkit import checkpoint as ckpt
from unetkit.config import PostprocessConfig, apply_overrides, to_dict
from unetkit.data.channels import match_channels
from unetkit.data.layouts import find_samples, load_sample
from unetkit.data.targets import instance_labels
from unetkit.errors import InputError
from unetkit.inference.object_filter import filter_for
from unetkit.inference.postprocess import check_grid, tune_postprocess
from unetkit.inference.predictor import Predictor
from unetkit.pretrained import is_packaged


def tune_checkpoint(checkpoint: str | Path, data: str | Path, layout: str = "auto", limit: int = 0,
                    grid: dict[str, list[Any]] | None = None, update: bool = False, device: str = "auto",
                    progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(best post-processing values, grid rows best first); ``update`` rewrites the checkpoint with them."""
    if update and is_packaged(checkpoint):
        raise InputError(f"'{checkpoint}' is a packaged model and stays as shipped; tune it without --update")
    if grid is not None:
        check_grid(grid, PostprocessConfig())  # a bad value is named before any image is predicted
    if update:  # the checkpoint's folder is locked: a run still training there would write over the update
        from unetkit.safety.locks import folder_lock

        with folder_lock(ckpt.resolve_path(checkpoint).parent, "tune-postprocess --update"):
            return _tune(checkpoint, data, layout, limit, grid, update, device, progress)
    return _tune(checkpoint, data, layout, limit, grid, update, device, progress)


def _tune(checkpoint: str | Path, data: str | Path, layout: str, limit: int, grid: dict[str, list[Any]] | None,
          update: bool, device: str, progress: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    predictor = Predictor.load(checkpoint, device)
    config = predictor.config
    kind = predictor.task.instance_kind(config)
    samples = find_samples(data, layout)
    if limit < 0:
        raise InputError(f"--limit {limit}: expected the number of images to tune on, >= 0 (0 = all)")
    if limit:
        samples = samples[:limit]
    probs, truths = [], []
    for sample in tqdm(samples, desc="predict", unit="img", disable=not progress):
        image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
        image = match_channels(image, config.model.in_channels, sample.image_path)
        probs.append(predictor.output(image))
        truths.append(instance_labels(labels))
    best, rows = tune_postprocess(probs, truths, kind, grid, base=config.postprocess)
    filtered, _ = filter_for(probs, truths, best, kind)  # refitted for the new values (three-class)
    values = dataclasses.asdict(best) | filtered
    if update:
        path = ckpt.resolve_path(checkpoint)
        payload = ckpt.load_checkpoint(path)
        payload["config"] = to_dict(apply_overrides(ckpt.config_of(payload), {
            f"postprocess.{key}": value for key, value in values.items()}))
        payload.pop("format", None)
        payload.pop("version", None)
        ckpt.save_checkpoint(path, payload)
    return values, rows
