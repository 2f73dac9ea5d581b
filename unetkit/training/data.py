"""Turn a dataset folder and a RunConfig into in-memory training and validation arrays.

Images are decoded and normalised once (percentiles from the config, stored in checkpoints so that
prediction normalises the same way); the run's task (``unetkit.tasks``) finds the samples and derives
targets and weight maps once per image.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from unetkit.config import RunConfig
from unetkit.data.layouts import split_samples
from unetkit.data.overlap import overlap_note, shared_images
from unetkit.data.splits import SplitData
from unetkit.devices import is_first_process
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
        if note:
            _say(note)
    else:
        train_samples, val_samples = split_samples(samples, config.data.val_fraction, config.data.split_seed)
    if not train_samples:
        raise InputError(f"{train_dir}: no training images left after the validation split")
    train = task.build_split(train_samples, config, "loading train")
    if task.activation == "softmax" and not _any_foreground(train, config):
        raise InputError(f"{train_dir}: no mask of the {len(train.targets)} training images holds any object (every "
                         "label pixel is 0, background): the network would learn to find nothing; check the masks "
                         "(saved blank, or their values lost in a conversion)")
    if task.activation == "softmax" and not _any_background(train, config):
        raise InputError(f"{train_dir}: every pixel of the {len(train.targets)} training masks is an object (no "
                         "label pixel is 0, background): the network would learn to find everything; check the "
                         "masks (background saved as 1 or 255, or masks inverted)")
    if train.one_valued == len(train.labels) and task.target_kind(config) == "three-class":
        _say(f"note: the {len(train.labels)} training masks hold one value for every object (binary), so objects are "
             "their connected components: touching nuclei are one object and no boundary is learnt between them; "
             "give instance labels (one id per object) where objects touch")
    val = task.build_split(val_samples, config, "loading val", with_weights=False)
    note = colour_note(train, val, samples[0].name)
    if note:
        _say(note)
    if task.activation == "softmax" and val.targets and not _any_foreground(val, config):
        _say("note: no validation mask holds any object: validation scores cannot tell a good network from one "
             "that finds nothing, and best.pt is chosen on them; give --val images with objects")
    return train, val, config.model.in_channels


def colour_note(train: SplitData, val: SplitData, first: str) -> str | None:
    """The line that says colour images were averaged into a gray model, and how to keep their colour."""
    if not train.colour_averaged and not val.colour_averaged:
        return None
    val_part = f" and {len(val.colour_averaged)} of {len(val.names)} validation images" if val.colour_averaged else ""
    example = (train.colour_averaged or val.colour_averaged)[0]
    return (f"note: {len(train.colour_averaged)} of {len(train.names)} training images{val_part} are colour (e.g. "
            f"{example}) and are averaged to gray, since the model takes the 1 channel of the first image ({first}); "
            "--set model.in_channels=3 trains on colour (gray images are then repeated)")


def _any_foreground(split: SplitData, config: RunConfig) -> bool:
    """Whether any target pixel is a class other than background (the ignore label left out)."""
    ignore = config.data.ignore_label
    return any(np.any((target > 0) & (target != ignore)) for target in split.targets)


def _any_background(split: SplitData, config: RunConfig) -> bool:
    """Whether any target pixel is background (the ignore label left out)."""
    ignore = config.data.ignore_label
    return any(np.any((target == 0) & (target != ignore)) for target in split.targets)


def _say(line: str) -> None:
    if is_first_process():  # under torchrun the first process says it
        print(line, file=sys.stderr, flush=True)
