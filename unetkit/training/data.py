"""Turn a dataset folder and a RunConfig into in-memory training and validation arrays.

Images are decoded and normalised once (percentiles from the config, stored in checkpoints so that
prediction normalises the same way); the run's task (``unetkit.tasks``) finds the samples and derives
targets and weight maps once per image.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from unetkit.config import RunConfig
from unetkit.data.layouts import split_samples
from unetkit.data.overlap import overlap_note, shared_images
from unetkit.data.splits import SplitData
from unetkit.errors import InputError
from unetkit.tasks import get_task


def prepare_data(config: RunConfig, train_dir: str | Path, val_dir: str | Path | None) -> tuple[
        SplitData, SplitData, int]:
    """(train, validation, image channels) for a run; validation is a fixed-seed split when no folder."""
    task = get_task(config)
    samples = task.find_samples(train_dir, config)
    if val_dir:
        train_samples, val_samples = samples, task.find_samples(val_dir, config)
        note = overlap_note(shared_images(train_samples, val_samples), len(val_samples))
        if note and os.environ.get("RANK", "0") == "0":  # under torchrun the first process says it
            print(note, file=sys.stderr, flush=True)
    else:
        train_samples, val_samples = split_samples(samples, config.data.val_fraction, config.data.split_seed)
    if not train_samples:
        raise InputError(f"{train_dir}: no training images left after the validation split")
    train = task.build_split(train_samples, config, "loading train")
    val = task.build_split(val_samples, config, "loading val", with_weights=False)
    return train, val, config.model.in_channels
