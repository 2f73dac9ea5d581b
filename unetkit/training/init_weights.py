"""Fine-tuning: a new run that starts from the weights of a checkpoint (``train.init_weights``).

``unetkit train --init-weights nuclei --task instances --data mine/ --out runs/mine`` starts from the packaged
``nuclei`` model: the run takes that checkpoint's network settings (``model.*``) and normalisation
percentiles, so that its weights fit and see images as they were trained to; the images are matched to its
input channels (gray repeated to RGB, RGB averaged to gray) as prediction does. The task must produce the
same outputs (an instances model fine-tunes as instances, with the same target).
"""

from __future__ import annotations

import dataclasses

import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig
from unetkit.errors import InputError
from unetkit.tasks import get_task

KEPT_FROM_RUN = ("encoder_weights", "freeze_encoder_epochs")  # training-only model keys the run may choose


def adopt_init_network(config: RunConfig) -> RunConfig:
    """``config`` with the network and normalisation of its ``train.init_weights`` checkpoint; a task whose
    outputs differ from the checkpoint's is refused naming the key."""
    from unetkit.models.registry import model_spatial_dims

    source = config.train.init_weights
    theirs = ckpt.config_of(ckpt.load_checkpoint(source))
    ours_dims, their_dims = model_spatial_dims(config.model), model_spatial_dims(theirs.model)
    if ours_dims != their_dims:  # the data was found for this run's network: 2D images or volumes
        raise InputError(f"train.init_weights={source}: a {their_dims}D network ({theirs.model.name}), but this run "
                         f"reads its data for a {ours_dims}D one ({config.model.name}); fine-tune it on "
                         f"{'volumes with --model unet3d' if their_dims == 3 else '2D images with --model unet'}, "
                         f"or start from a {ours_dims}D checkpoint")
    same_task = type(get_task(theirs)) is type(get_task(config))
    if theirs.model.out_channels != config.model.out_channels or not same_task:
        article = "an" if theirs.task[0] in "aeiou" else "a"
        fix = (f"fine-tune it with --task {theirs.task} and its target (data.target={theirs.data.target})"
               if not same_task else
               f"its classes are not this data's: fine-tune it on data of its {theirs.model.out_channels} classes "
               "(data.class_names), or start without --init-weights")
        raise InputError(f"train.init_weights={source}: {article} {theirs.task} model with "
                         f"{theirs.model.out_channels} outputs, but this run trains {config.task} with "
                         f"{config.model.out_channels}; {fix}")
    model = dataclasses.replace(theirs.model, **{key: getattr(config.model, key) for key in KEPT_FROM_RUN})
    data = dataclasses.replace(config.data, normalize_low=theirs.data.normalize_low,
                               normalize_high=theirs.data.normalize_high)
    if model != config.model or data != config.data:
        print(f"fine-tuning from {source}: network and normalisation taken from it ({model.name}, depth "
              f"{model.depth}, {model.base_channels} base channels, in {model.in_channels}, out {model.out_channels})")
    return dataclasses.replace(config, model=model, data=data)


def refuse_chosen_network(config: RunConfig, chosen: set[str]) -> None:
    """Refuse ``model.*`` keys the user chose (``chosen``) that differ from the ``train.init_weights``
    checkpoint's network. Why: fine-tuning keeps the checkpoint's network, so an explicit ``--model`` or
    ``model.base_channels`` would otherwise be replaced without a word and another net trained than asked."""
    names = sorted({key.partition(".")[2] for key in chosen if key.startswith("model.")} - set(KEPT_FROM_RUN))
    if not names:
        return
    source = config.train.init_weights
    theirs = ckpt.config_of(ckpt.load_checkpoint(source)).model
    wrong = [name for name in names if hasattr(theirs, name) and getattr(config.model, name) != getattr(theirs, name)]
    if wrong:
        asked = ", ".join(f"model.{name}={getattr(config.model, name)}" for name in wrong)
        held = ", ".join(f"model.{name}={getattr(theirs, name)}" for name in wrong)
        raise InputError(f"{asked}: train.init_weights={source} holds {held}, and fine-tuning keeps its network; "
                         "leave these out, or train without --init-weights to choose them")


def load_init_weights(model: torch.nn.Module, source: str) -> None:
    """Load the weights of ``source`` (a checkpoint, a run folder or a packaged model's name) into a new
    run's network; a network of other settings is refused naming the key."""
    payload = ckpt.load_checkpoint(source)
    weights = payload.get("model")
    if not isinstance(weights, dict):
        raise InputError(f"train.init_weights={source}: the checkpoint holds no model weights")
    try:
        model.load_state_dict(weights)  # fp16 packaged weights are copied into the fp32 parameters
    except RuntimeError as error:  # missing / unexpected keys, wrong shapes
        theirs = ckpt.config_of(payload).model
        detail = " ".join(str(error).split())[:200]
        raise InputError(f"train.init_weights={source}: its network ({theirs.name}, depth {theirs.depth}, "
                         f"{theirs.base_channels} base channels, in {theirs.in_channels}, out {theirs.out_channels}) "
                         f"does not match this run's ({detail}); "
                         "set the model.* keys to the checkpoint's (unetkit models shows them)") from error
