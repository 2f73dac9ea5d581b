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
from unetkit.config import PostprocessConfig, apply_overrides
from unetkit.data.axes import selection_of, use_selection
from unetkit.data.targets import instance_labels
from unetkit.errors import InputError
from unetkit.inference.object_filter import filter_for
from unetkit.inference.postprocess import check_grid, prefer_configured, tune_postprocess
from unetkit.inference.predictor import Predictor
from unetkit.metrics.instances import truth_objects
from unetkit.pretrained import is_packaged


def tune_checkpoint(checkpoint: str | Path, data: str | Path, layout: str = "auto", limit: int = 0,
                    grid: dict[str, list[Any]] | None = None, update: bool = False, device: str = "auto",
                    progress: bool = True, min_objects: int | None = None
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(best post-processing values, grid rows best first); ``update`` rewrites the checkpoint with them.

    As at the end of training, values that tie with the checkpoint's own keep them, and ``update`` is refused
    when the images hold fewer than ``min_objects`` truth objects (None: the checkpoint's
    ``postprocess.tune_min_objects``, 100 by default)."""
    if update and is_packaged(checkpoint):
        raise InputError(f"'{checkpoint}' is a packaged model and stays as shipped; tune it without --update")
    if grid is not None:
        check_grid(grid, PostprocessConfig())  # a bad value is named before any image is predicted
    if update:  # the checkpoint's folder is locked: a run still training there would write over the update
        from unetkit.safety.locks import folder_lock

        real = ckpt.resolve_path(checkpoint).resolve()  # through a link: the run's own file is updated, its run locked
        with folder_lock(real.parent, "tune-postprocess --update"):
            return _tune(real, data, layout, limit, grid, update, device, progress, min_objects)
    return _tune(checkpoint, data, layout, limit, grid, update, device, progress, min_objects)


def _tune(checkpoint: str | Path, data: str | Path, layout: str, limit: int, grid: dict[str, list[Any]] | None,
          update: bool, device: str, progress: bool, min_objects: int | None = None
          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    predictor = Predictor.load(checkpoint, device)
    config = predictor.config
    kind = predictor.task.instance_kind(config)
    if limit < 0:
        raise InputError(f"--limit {limit}: expected the number of images to tune on, >= 0 (0 = all)")
    read_as = apply_overrides(config, {"data.layout": layout})  # this folder's layout, not the training data's
    task = predictor.task
    with use_selection(selection_of(config.data)):  # read as the model was trained: its axes, channels, 2D or 3D
        samples = task.find_samples(data, read_as)[:limit or None]
        split = task.build_split(samples, read_as, "tuning", with_weights=False)
    truths = [instance_labels(labels) for labels in split.labels]
    objects = truth_objects(truths)  # counted before any image is predicted
    needed = config.postprocess.tune_min_objects if min_objects is None else min_objects
    if update and objects < needed:  # as training does: a choice among the grid on a few objects is noise
        raise InputError(f"{data}: {objects} truth objects, fewer than {needed} (--min-objects, by default the "
                         "model's postprocess.tune_min_objects): values chosen on them would be noise and --update "
                         "would store them; tune on more labelled images, or leave out --update to look")
    probs = [predictor.output(image) for image in tqdm(split.images, desc="predict", unit="img",
                                                       disable=not progress)]
    best, rows = tune_postprocess(probs, truths, kind, grid, base=config.postprocess)
    best, rows, _ = prefer_configured(best, rows, config.postprocess)  # a tie keeps what the model had
    filtered, _ = filter_for(probs, truths, best, kind)  # refitted for the new values (three-class)
    values = dataclasses.asdict(best) | filtered
    if update:
        ckpt.store_postprocess(ckpt.resolve_path(checkpoint), values)
    return values, rows
