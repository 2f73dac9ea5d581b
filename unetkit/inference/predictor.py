"""The predictor: a network with its run config, the one road from an image to a task's ``Result``.

``predict`` (files), ``predict-large`` (streamed), validation during training, post-processing
tuning, export checks and the Python API (``unetkit.load(...).predict(image)``) all go through a
``Predictor``, so they normalise, tile, activate and de-normalise the same way:

1. ``prepare``: the image to channels-first float32, normalised by its own percentiles like training
   (``data.normalize_low/high``), channels matched to the network; arrays that are not numpy (zarr,
   dask, disk arrays) stay lazy and are read tile by tile.
2. ``output``: overlap-tile prediction (``predict_tiled``) with the task's activation and output
   transform applied to every tile (regression: the target normalisation undone, so every path gives
   values in the target's units).
3. ``result`` (a prepared image) and ``predict`` (any image): the task's ``Result`` (probabilities, mask,
   labels, values).

Nothing in ``unetkit/inference`` imports the training package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.channels import match_channels
from unetkit.data.io import check_real, normalize_percentile
from unetkit.devices import is_first_process, select_device
from unetkit.errors import InputError
from unetkit.inference.arrays import channel_layout
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.small_objects import ScaledOutput, rule_applies
from unetkit.inference.tile_plan import NetGeometry, plan_tiles, tiling_notes
from unetkit.models.registry import model_spatial_dims, resolve_model_config
from unetkit.notes import note_once
from unetkit.safety.finite import apply_nan_policy
from unetkit.safety.options import check_flag
from unetkit.tasks import Result, Task, get_task

# what to read from microscopy files: ``data.*`` settings a prediction may override (unetkit.data.axes)
SELECTION_KEYS = ("channels", "axes", "time", "plane")


def prediction_tile(config: RunConfig, spatial_shape: Sequence[int], device) -> tuple[int | tuple[int, ...], int]:
    """(tile size, tiles per batch) for an image: ``inference.tile_shape`` or ``tile_size``; 3D nets
    shrink the batch, then the tile, to what fits the memory budget (``unetkit.models.memory``)."""
    from unetkit.models.memory import fit_prediction_tile

    inference = config.inference
    model = resolve_model_config(config.model)
    tile = list(inference.tile_shape) or inference.tile_size
    if inference.tile_shape and len(inference.tile_shape) != len(spatial_shape):
        raise InputError(f"inference.tile_shape needs {len(spatial_shape)} sizes, got {inference.tile_shape}")
    if model.spatial_dims != 3:
        return (tuple(tile) if isinstance(tile, list) else tile), inference.batch_size
    planned = plan_tiles(tuple(spatial_shape), NetGeometry.from_config(model), tile, inference.overlap)[0]
    return fit_prediction_tile(model, planned, inference.batch_size, device, inference.memory_limit_gb)


class Predictor:
    """A network and its run config: prepare images, predict tile by tile, make the task's ``Result``.

    Example::

        predictor = Predictor.load("runs/nuclei/best.pt")
        result = predictor.predict(image)          # image (H, W), (C, H, W) or (H, W, C), any dtype
        result.mask, result.probabilities          # (H, W) bool, (K, H, W) float32

    ``network`` maps (B, C, *S) to logits (B, K, *S_out): a PyTorch module, or an exported model
    (``unetkit.export``, read by ``unetkit.inference.exported``) behind the same interface.
    """

    def __init__(self, network: torch.nn.Module, config: RunConfig, device: str | torch.device = "cpu"):
        self.network = network
        self.config = config
        self.device = select_device(device)
        self.task: Task = get_task(config)
        self.spatial_dims = model_spatial_dims(config.model)
        self.geometry = NetGeometry.from_config(resolve_model_config(config.model))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto", engine: str = "torch",
             winograd: bool | None = None, compile: str | None = None, nan_policy: str | None = None,
             autotune: bool | None = None, selection: dict[str, Any] | None = None, **inference: Any) -> Predictor:
        """A predictor for a checkpoint or run folder (``engine="torch"``) or an exported ``.onnx`` / ``.ts``.

        ``inference`` overrides the checkpoint's ``inference`` settings, e.g. ``tile_size=512, tta=True``;
        an explicit ``tile_size`` replaces a per-axis ``tile_shape``. ``winograd`` (None: the checkpoint's
        setting) runs wide 3x3 convs as Winograd on a CPU, ``autotune`` (None: the checkpoint's
        ``inference.autotune``) keeps it only where it was timed faster on this CPU (``unetkit.cpu``);
        ``compile`` names a ``torch.compile`` backend.
        ``nan_policy`` (None: the checkpoint's ``data.nan_policy``): NaN/Inf pixels refused (``error``) or
        replaced (``zero``, ``nearest``), see ``unetkit.safety.finite``.
        ``selection`` (``channels``, ``axes``, ``time``, ``plane``; None values keep the checkpoint's) picks
        the planes read from microscopy files (``unetkit.data.axes``); these keys may also come in
        ``inference``, e.g. ``unetkit.load(model, channels=["DAPI"])``.
        """
        from unetkit.inference.engines import load_engine_model
        from unetkit.models.compiling import compiled

        torch_device = select_device(device)
        network, config = load_engine_model(path, engine, torch_device, winograd, autotune)
        picks = dict(selection or {})
        picks.update({key: inference.pop(key) for key in SELECTION_KEYS if key in inference})
        for key, value in inference.items():  # tta="no" was read as YAML's False; a flag is a bool
            if isinstance(getattr(config.inference, key, None), bool):
                check_flag(key, value)
        values = {f"inference.{key}": value for key, value in inference.items() if value is not None}
        values.update({f"data.{key}": value for key, value in picks.items() if value is not None})
        if inference.get("tile_size") is not None:
            values["inference.tile_shape"] = []  # an explicit tile wins over the checkpoint's per-axis tile
        if compile is not None:
            values["inference.compile"] = compile
        if nan_policy is not None:
            values["data.nan_policy"] = nan_policy
        config = apply_overrides(config, values)
        if engine == "torch":
            network = compiled(network, config.inference.compile, "inference.compile")
        predictor = cls(network, config, torch_device)
        notes = tiling_notes(predictor.geometry, inference.get("tile_size"), inference.get("overlap"))
        for note in notes if is_first_process() else ():  # under torchrun the first process says it
            print(f"note: {note}", file=sys.stderr)  # options the net takes otherwise than given are named
        return predictor

    # ---------------------------------------------------------------------------------------------

    def tile_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """(B, C, *tile) float32 -> (B, K, *tile_out): network, activation, flip TTA, output transform."""
        tiles = TorchPredictor(self.network, self.device, activation=self.task.activation,
                               tta=self.config.inference.tta, amp=self.config.train.amp,
                               cpu_bf16=self.config.inference.precision == "bf16")
        transform = self.task.output_transform(self.config)
        if transform is None:
            return tiles
        return lambda batch: transform(tiles(batch))

    def prepare(self, image: Any, name: str = "image") -> Any:
        """The network input of an image: channels-first float32 normalised by its percentiles.

        numpy arrays are normalised in memory exactly as ``unetkit predict`` does with files; other
        array-likes (zarr, dask, ``np.load(..., mmap_mode="r")``, disk arrays) are wrapped lazily and read
        tile by tile later, with percentiles from a sample of blocks when larger than 16 MP
        (``streaming.estimate_percentiles``).
        """
        from unetkit.inference.arrays import ChannelsFirst, pick_array_channels
        from unetkit.inference.streaming import Normalized, estimate_percentiles

        data = self.config.data
        image = check_array(image, name)
        channels = self.config.model.in_channels
        layout = channel_layout(image.shape, self.spatial_dims, channels)
        if layout == "last" and isinstance(image, np.ndarray) and not data.channels:  # memory maps too
            image = without_opaque_alpha(image, channels, name)
        colour = layout == "last"  # (H, W, 3): the RGB of image readers; (3, H, W): planes or a channel axis
        if isinstance(image, np.ndarray) and not isinstance(image, np.memmap):  # memory maps stay on disk
            array = image if layout == "first" else (image[None] if layout == "none" else np.moveaxis(image, -1, 0))
            array = pick_array_channels(array, data.channels, channels, name)  # load(..., channels=[1])
            array = apply_nan_policy(array, name, data.nan_policy)  # NaN/Inf pixels refused or replaced
            normalized = normalize_percentile(array, data.normalize_low, data.normalize_high, name=name)
            return match_channels(normalized, channels, name, colour)
        source = image if layout == "first" else ChannelsFirst(image, layout)
        source = pick_array_channels(source, data.channels, channels, name)
        lo, hi = estimate_percentiles(source, data.normalize_low, data.normalize_high, nan_policy=data.nan_policy)
        return Normalized(source, lo, hi, self.config.model.in_channels, name, data.nan_policy, colour)

    @property
    def rescales_small_objects(self) -> bool:
        """True for a 2D instances model with ``postprocess.upscale_below_area`` > 0: ``output`` predicts an
        in-memory image of small objects again at 2x (``predict-large`` takes the same road box by box)."""
        return rule_applies(self.config)

    def output(self, image: Any, progress: bool = False) -> np.ndarray:
        """Overlap-tile output (K, *S) float32 of a prepared (normalised, channels-first) image.

        Instances models with ``postprocess.upscale_below_area`` > 0 predict a 2D image (in memory, or a lazy
        memmap / zarr array, whose output is in memory either way) whose objects are small again at twice its
        size (``unetkit.inference.small_objects``); ``scaled_output`` also tells which."""
        return self.scaled_output(image, progress).probabilities

    def scaled_output(self, image: Any, progress: bool = False) -> ScaledOutput:
        """``output`` with the scale it was predicted at (1 or 2) and, where the small-object rule made them
        to size the objects, the instance labels of the first answer (so ``result`` does not make them again)."""
        output = self.single_pass(image, progress)
        if not self.rescales_small_objects:
            return ScaledOutput(output)
        from unetkit.inference.small_objects import upscale_if_small

        return upscale_if_small(output, image, self.config, self.task.instance_kind(self.config),
                                lambda enlarged: self.single_pass(enlarged, progress))

    def result(self, image: Any, instances: bool = False, progress: bool = False) -> Result:
        """The task's ``Result`` of a prepared image; for a model with the small-object rule,
        ``result.extra["scale"]`` is the scale it was predicted at (2: again at twice its size)."""
        scaled = self.scaled_output(image, progress)
        result = self.task.result(scaled.probabilities, self.config, instances=instances, labels=scaled.labels)
        if self.rescales_small_objects:
            result.extra["scale"] = scaled.scale
        return result

    def single_pass(self, image: Any, progress: bool = False) -> np.ndarray:
        """Overlap-tile output (K, *S) of a prepared image at its own size, without the small-object rule."""
        spatial = tuple(image.shape[1:])
        tile, batch = prediction_tile(self.config, spatial, self.device)
        inference = self.config.inference
        return predict_tiled(image, self.tile_function(), self.geometry, self.config.model.out_channels, tile,
                             inference.overlap, batch, inference.blend, progress=progress)

    def predict(self, image: Any, instances: bool | None = None, progress: bool = False) -> Result:
        """The task's ``Result`` of one image of any size.

        ``image``: (*S), (C, *S) or (*S, C) array of any dtype (a zarr/dask-like array is read tile by
        tile). ``instances``: also post-process instance labels (always on for instances models).
        """
        instances = check_flag("instances", instances)  # "no" was truthy: instances on
        return self.result(self.prepare(image), bool(instances), progress)

    def __repr__(self) -> str:
        model = self.config.model
        return (f"Predictor(task={self.task.name}, model={model.name} {self.spatial_dims}D, "
                f"in_channels={model.in_channels}, out_channels={model.out_channels}, device={self.device})")


def without_opaque_alpha(image: np.ndarray, channels: int, name: str = "image") -> np.ndarray:
    """An (H, W, 4) RGBA or (H, W, 2) gray + alpha array for a 3- or 1-channel model without its last channel
    when that channel is opaque alpha: the dtype's full value throughout (255, 65535, 1.0, True), as
    ``np.asarray(Image.open(png))`` gives DSB images. Files drop alpha by their tags; arrays carry none, and
    another constant (an empty stain of 0) is a channel, left to be refused. A memory map is checked in blocks
    of rows (the whole alpha plane of a slide would not fit)."""
    if channels not in (1, 3) or image.shape[-1] not in (2, 4):
        return image
    if image.dtype == bool:
        full = True
    else:
        full = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
    rows = max(1, 2**22 // max(1, int(np.prod(image.shape[1:-1]))))  # about 4 M alpha values per block
    if not all(np.all(np.asarray(image[start:start + rows, ..., -1]) == full)
               for start in range(0, image.shape[0], rows)):
        return image
    note_once(f"alpha {name}", f"{name}: its last channel of {image.shape[-1]} is opaque alpha ({full} "
              "throughout); left out")
    return image[..., :-1]


def check_array(image: Any, name: str = "image") -> Any:
    """``image`` as an array with a shape (nested lists become numpy arrays, torch tensors numpy ones), refused with
    a line naming it when it is a file name, has no pixels or complex values (a cast to float32 would drop their
    imaginary part unsaid)."""
    if isinstance(image, (str, Path)):  # np.asarray made it a 0-d string array: "no pixels (shape ())"
        raise InputError(f"{name}: predict takes an image array, not a file name ({image}); read the file first "
                         "(e.g. tifffile.imread) or predict files with unetkit.predict_files")
    if isinstance(image, torch.Tensor):  # bfloat16 has no numpy dtype: float32 holds its values exactly
        image = image.detach().cpu()
        image = (image.float() if image.dtype == torch.bfloat16 else image).numpy()
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    shape = tuple(int(n) for n in image.shape)
    if not shape or 0 in shape:
        raise InputError(f"{name}: the image has no pixels (shape {shape})")
    check_real(image.dtype, name, "give real ones, e.g. np.abs(image) for the magnitude")
    return image


def predict_probabilities(model: torch.nn.Module, image: np.ndarray, config: RunConfig, device: str | torch.device,
                          progress: bool = False) -> np.ndarray:
    """Overlap-tile output (K, *S) of one normalised image with a config's settings (softmax
    probabilities; regression: values in the target's units). Shorthand for ``Predictor(...).output``."""
    return Predictor(model, config, device).output(image, progress)
