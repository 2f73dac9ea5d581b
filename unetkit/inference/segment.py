"""Segment an image already in memory (a napari layer, a notebook array) with a checkpoint.

The file-based ``predict_files`` reads, predicts and writes; this is the same pipeline without files:
normalise as the checkpoint trained, overlap-tile prediction, then the instance post-processing. It
returns arrays, so a viewer can show them at the image's scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unetkit.errors import InputError

if TYPE_CHECKING:
    from unetkit.inference.predictor import Predictor


@dataclass
class Segmentation:
    """What :func:`segment_array` returns; spatial shapes equal the input's."""

    foreground: np.ndarray  # (*S) float32 foreground probability (1 - background)
    mask: np.ndarray  # (*S) bool, foreground > the checkpoint's threshold
    labels: np.ndarray | None  # (*S) int32 instance ids, when instances were asked for and the model makes them
    probabilities: np.ndarray  # (K, *S) float32 softmax of every class
    classes: np.ndarray | None = None  # (*S) class ids of a multiclass model (its names in ``class_names``)
    class_names: list[str] | None = None


def as_channels_first(data: np.ndarray, rgb: bool = False, channel: int | None = None) -> np.ndarray:
    """A viewer's array as (C, *S): (Y, X) -> (1, Y, X); RGB (Y, X, 3) -> (3, Y, X); (C, Y, X) picks ``channel``.

    A last axis of 2 to 4 values that is not RGB is refused (``check_viewer_array``)."""
    data = np.asarray(data)
    check_viewer_array(data, rgb)
    if rgb:
        data = np.moveaxis(data[..., :3], -1, 0)
    elif data.ndim == 2:
        data = data[None]
    elif data.ndim > 4 or (channel is None and data.ndim >= 3):
        raise InputError(f"image of shape {data.shape}: {data.ndim} axes; choose the channel (first axis) to "
                         "segment a plane (or, for a 3D model, a stack), or open the channels as separate layers "
                         "(napari's channel_axis); a time series is segmented one time point at a time")
    if channel is not None:
        if not -data.shape[0] <= channel < data.shape[0]:
            raise InputError(f"channel {channel} requested but the image has {data.shape[0]} channel(s)")
        data = data[channel:channel + 1] if channel >= 0 else data[channel:][:1]
    return data


def check_viewer_array(data: np.ndarray, rgb: bool = False) -> None:
    """Refuse a last axis of 2 to 4 values that is not RGB: a viewer shows it as the image's X, but it is most
    likely channels (open them with napari's channel_axis, one layer each)."""
    shape = tuple(int(n) for n in data.shape)  # any array-like (a dask or zarr level is not read)
    if not rgb and len(shape) >= 3 and 2 <= shape[-1] <= 4 and shape[-2] > 4:
        raise InputError(f"image of shape {shape}: its last axis ({shape[-1]} values) looks like channels; "
                         "open the file with one layer per channel (napari's channel_axis), or as RGB")


def viewer_images(data: np.ndarray, *, rgb: bool = False, channel: int | None = None, spatial_dims: int = 2,
                  in_channels: int = 1) -> tuple[list[np.ndarray], bool]:
    """The (C, *S) images of a viewer's array for a model of ``spatial_dims`` axes and ``in_channels`` channels, and
    whether they are the planes of a stack.

    RGB keeps its colour; ``channel`` picks one of the first axis; an array with as many first-axis planes as a
    colour model has channels is that model's channels. One axis more than the model's (a z-stack or time series
    for a 2D model, a time series of volumes for a 3D one) is segmented plane by plane, as the StarDist and
    Cellpose plugins do.
    """
    data = np.asarray(data)
    check_viewer_array(data, rgb)
    if rgb:
        data = np.moveaxis(data[..., :3], -1, 0)
    elif channel is None:
        many = in_channels > 1 and data.ndim == spatial_dims + 1 and data.shape[0] == in_channels
        data = data if many else data[None]
    elif data.ndim == spatial_dims:  # one plane: its one channel (channel 0 picks it)
        data = data[None]
    if channel is not None:
        if not -data.shape[0] <= channel < data.shape[0]:
            raise InputError(f"channel {channel} requested but the image has {data.shape[0]} channel(s)")
        data = data[channel:channel + 1] if channel >= 0 else data[channel:][:1]
    axes = data.ndim - 1
    if axes == spatial_dims:
        return [data], False
    if axes == spatial_dims + 1:
        return [data[:, plane] for plane in range(data.shape[1])], True
    shape = tuple(np.shape(data))
    raise InputError(f"image of {axes} axes {shape[1:]}, its channel aside, for a {spatial_dims}D model: give one "
                     f"{spatial_dims}D image or a stack of them (choose the channel, first axis, of a multichannel "
                     "layer, or open the channels as separate layers with napari's channel_axis)")


def stack_segmentations(planes: list[Segmentation]) -> Segmentation:
    """Planes segmented one by one as one stack (plane axis first, after the class axis of the probabilities);
    each plane's instance ids are moved past the previous planes' so that every object keeps an id of its own."""
    labels = None
    if planes[0].labels is not None:
        offset, shifted = 0, []
        for plane in planes:
            ids = plane.labels.astype(np.int32, copy=True)
            ids[ids > 0] += offset
            offset = max(offset, int(ids.max()))
            shifted.append(ids)
        labels = np.stack(shifted)
    classes = None if planes[0].classes is None else np.stack([plane.classes for plane in planes])
    return Segmentation(np.stack([p.foreground for p in planes]), np.stack([p.mask for p in planes]), labels,
                        np.stack([p.probabilities for p in planes], axis=1), classes, planes[0].class_names)


def load_segmenter(checkpoint: str | Path, *, tile_size: int | None = None, tta: bool | None = None,
                   device: str = "auto", nan_policy: str | None = None) -> Predictor:
    """The ``Predictor`` of a segmentation checkpoint (a .pt file, run folder or packaged model's name); a regression
    model is refused. ``nan_policy`` (None: the checkpoint's): NaN/Inf pixels refused or replaced."""
    from unetkit.inference.predictor import Predictor

    predictor = Predictor.load(checkpoint, device, "torch", nan_policy=nan_policy, tile_size=tile_size or None, tta=tta)
    if predictor.task.activation != "softmax":  # a regression model's outputs are values, not class probabilities
        raise InputError(f"{checkpoint}: a {predictor.task.name} checkpoint gives images, not segmentations; "
                         "use unetkit predict")
    return predictor


def segment_with(predictor: Predictor, image: np.ndarray, *, instances: bool = True,
                 name: str = "image") -> Segmentation:
    """Segment a raw channels-first image ``image`` (C, *S) with a ``load_segmenter`` predictor (see
    ``segment_array``)."""
    from unetkit.inference.files import prepare_for_prediction

    task, config = predictor.task, predictor.config
    if instances:
        try:
            task.instance_kind(config)
        except InputError:  # a class map has no instances: its classes are the answer
            instances = False
    prepared = prepare_for_prediction(np.asarray(image), Path(name), config)
    result = predictor.result(prepared, instances=instances)  # labels: the task's post-processing
    class_names = result.extra.get("class_names")
    probs = result.probabilities.astype(np.float32, copy=False)
    foreground = result.foreground
    labels = None if result.labels is None or not instances else result.labels.astype(np.int32)
    classes = None if class_names is None else result.mask.astype(np.int32)
    return Segmentation(foreground, foreground > config.inference.threshold, labels, probs, classes, class_names)


def segment_array(checkpoint: str | Path, image: np.ndarray, *, tile_size: int | None = None, tta: bool | None = None,
                  instances: bool = True, device: str = "auto", name: str = "image",
                  nan_policy: str | None = None) -> Segmentation:
    """Segment a raw channels-first image ``image`` (C, *S) with ``checkpoint`` (a .pt file, run folder or packaged
    model's name). ``instances``: instance labels where the model makes them (binary and instances models);
    a multiclass model gives its class map in ``classes``. ``name`` is what messages call the image.
    ``nan_policy`` (None: the checkpoint's): NaN/Inf pixels refused (``error``) or replaced (``zero``, ``nearest``)."""
    predictor = load_segmenter(checkpoint, tile_size=tile_size, tta=tta, device=device, nan_policy=nan_policy)
    return segment_with(predictor, image, instances=instances, name=name)
