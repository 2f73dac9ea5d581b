"""Predict image files (or volumes) with a checkpoint and write the files a person and the evaluator use.

One file per input and output kind, named by the input's stem, in sub-folders of ``out_dir``; which
kinds is the task's business (``Task.write_outputs``):

- binary / instances: ``probabilities/`` float32 foreground probability, ``masks/`` 0/255, ``overlays/``,
  and with instances ``labels/`` uint16 ids, ``instances/`` coloured PNG, ``objects/`` per-object CSV;
- multiclass: ``masks/`` class ids, ``overlays/`` with a legend, ``classes.csv``, on request
  ``probabilities/<class>/``;
- regression: ``predictions/`` float32 in the target's units, ``overlays/`` input | prediction.

Microscopy files (OME-TIFF, ImageJ TIFF, OME-Zarr) are read with the channel/time/plane selection the
checkpoint was trained with, or the one ``PredictOptions`` gives; outputs keep the input's pixel size
(OME-TIFF maps and labels, PNG resolution) and object tables give µm² and the raw image's intensities.

3D checkpoints read volumes (TIFF stacks, NIfTI, slice folders) and write volumes with the input's
voxel spacing (``.nii.gz`` inputs give ``.nii.gz`` outputs, all others ``.tif``), pictures of the middle
z-slice; their object tables give volumes in µm³ and the raw volume's intensities per channel, as in 2D.
Under torchrun each process predicts every N-th file.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unetkit.config import RunConfig, plain_value
from unetkit.data.axes import selection_of, use_selection
from unetkit.data.channels import match_channels
from unetkit.data.io import image_shape, normalize_percentile, read_image
from unetkit.data.ome import image_stem, pixel_size, selected_channel_names
from unetkit.devices import is_first_process
from unetkit.errors import InputError
from unetkit.inference.predictor import Predictor
from unetkit.inference.writers import OutputWriter
from unetkit.safety.finite import apply_nan_policy, nan_policy
from unetkit.safety.memory import check_prediction_fits
from unetkit.safety.options import check_flag
from unetkit.safety.paths import check_not_a_run_folder, check_output_folder, check_unique_stems
from unetkit.tasks import OutputOptions


@dataclass
class PredictOptions:
    """Overrides of the checkpoint's inference settings (None keeps the checkpoint's value)."""

    tile_size: int | None = None
    overlap: float | None = None
    batch_size: int | None = None
    tta: bool | None = None  # flip TTA (None: the checkpoint's inference.tta; False turns it off)
    instances: bool = False  # write instance labels (post-processing)
    device: str = "auto"
    engine: str = "torch"  # torch (checkpoint) | onnxruntime (.onnx) | torchscript (.ts), see `unetkit export`
    save_probabilities: bool = True
    class_probabilities: bool = False  # multiclass: also write probabilities/<class>/<stem>.tif
    compile: str | None = None  # torch engine: torch.compile backend (off | inductor | ...)
    precision: str | None = None  # torch engine on CPU: fp32 | bf16 autocast (None: the checkpoint's setting)
    winograd: bool | None = None  # torch engine on CPU: Winograd wide convs (None: the checkpoint's setting)
    nan_policy: str | None = None  # NaN/Inf pixels: error | zero | nearest (None: the checkpoint's data.nan_policy)
    autotune: bool | None = None  # Winograd kept only where timed faster on this CPU (None: the checkpoint's setting)
    # microscopy files (unetkit.data.axes); None keeps what the checkpoint was trained on
    channels: list | None = None  # channel indices or names
    axes: str | None = None  # axis letters of files without axis metadata
    time: int | None = None  # time point
    plane: int | None = None  # Z plane for 2D networks

    def __post_init__(self) -> None:
        """numpy values as Python ones (they go into prediction.json); a flag that is not a bool is refused
        (``instances="no"`` was truthy: labels were written)."""
        for option in dataclasses.fields(self):
            value = getattr(self, option.name)
            flag = str(option.type).startswith("bool")
            setattr(self, option.name, check_flag(option.name, value) if flag else plain_value(value))

    def selection(self) -> dict[str, Any]:
        """The microscopy selection fields (``data.*`` overrides of the checkpoint; None: keep its own)."""
        return {"channels": self.channels, "axes": self.axes, "time": self.time, "plane": self.plane}


def read_for_prediction(path: Path, config: RunConfig) -> np.ndarray:
    """The image's planes the checkpoint reads (its channel/time/plane selection), raw values (C, H, W)."""
    with use_selection(selection_of(config.data)):  # channel/time/plane of microscopy files
        return read_image(path)


def prepare_for_prediction(raw: np.ndarray, path: Path, config: RunConfig) -> np.ndarray:
    """Normalise a raw (C, H, W) image as the checkpoint's training did; float32, channels matched."""
    image = apply_nan_policy(raw, path, config.data.nan_policy)  # refuse or replace NaN/Inf
    image = normalize_percentile(image, config.data.normalize_low, config.data.normalize_high, name=str(path))
    return match_channels(image, config.model.in_channels, path)


def load_for_prediction(path: Path, config: RunConfig) -> np.ndarray:
    """Read and normalise an image as the checkpoint's training did; (C, H, W) float32."""
    return prepare_for_prediction(read_for_prediction(path, config), path, config)


def load_predictor(checkpoint: str | Path, options: PredictOptions) -> Predictor:
    """The predictor ``options`` describe; under torchrun on GPUs, one GPU per process."""
    import torch

    from unetkit.devices import env_world, select_device

    torch_only = [option for option, given in (("--precision", options.precision), ("--compile", options.compile),
                                               ("--no-winograd", options.winograd is False)) if given]
    if options.engine != "torch" and torch_only:  # the exported graph runs as it was exported
        raise InputError(f"{', '.join(torch_only)} {'applies' if len(torch_only) == 1 else 'apply'} to the torch "
                         f"engine; --engine {options.engine} runs the exported model as it is: leave "
                         f"{'it' if len(torch_only) == 1 else 'them'} out")
    device = select_device(options.device)
    _, world, local_rank = env_world()
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    return Predictor.load(checkpoint, device, options.engine, options.winograd, options.compile,
                          selection=options.selection(), tile_size=options.tile_size, overlap=options.overlap,
                          batch_size=options.batch_size, tta=options.tta, nan_policy=options.nan_policy,
                          autotune=options.autotune, precision=options.precision)


def predict_files(checkpoint: str | Path, inputs: list[str | Path], out_dir: str | Path,
                  options: PredictOptions | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Predict every image (or volume) in ``inputs`` (files or folders); returns one summary row each."""
    options = options or PredictOptions()
    return predict_with(load_predictor(checkpoint, options), inputs, out_dir, options, progress)


def predict_with(predictor: Predictor, inputs: list[str | Path], out_dir: str | Path,
                 options: PredictOptions | None = None, progress: bool = True,
                 gather: Callable[[list], list] | None = None) -> list[dict[str, Any]]:
    """``predict_files`` with a loaded ``Predictor``. Under torchrun each process predicts its share of the files;
    ``gather`` (``ObjectGroup.gather``) joins their rows, so that every process returns the rows of all images
    and the first writes the task's files over all of them (a multiclass ``classes.csv``)."""
    from unetkit.data.layouts import find_images
    from unetkit.devices import shard

    options = options or PredictOptions()
    check_output_folder(out_dir, inputs)  # never write over an input or into a dataset folder
    check_not_a_run_folder(out_dir)  # nor over a training run's overlays/
    out_dir = Path(out_dir)
    task, config = predictor.task, predictor.config
    if options.class_probabilities and "class_probabilities" not in task.map_options:
        raise InputError(f"--class-probabilities writes one map per class of a multiclass model; this is a "
                         f"{task.name} model: leave the option out (its probabilities are in probabilities/)")
    outputs = OutputOptions(instances=options.instances or task.instances_always,
                            save_probabilities=options.save_probabilities,
                            class_probabilities=options.class_probabilities)
    volumetric = predictor.spatial_dims == 3
    if volumetric:
        from unetkit.data.volumes import find_volumes, volume_stem

        paths = find_volumes(inputs)
        check_unique_stems(paths, volume_stem)  # x.tif and x.nii.gz would both be written as x
    else:
        paths = find_images(inputs)
        check_unique_stems(paths, image_stem)  # outputs are named by stem: two inputs must not share one
    paths = shard(paths)
    rows = []
    with use_selection(selection_of(config.data)):  # channel/time/plane of microscopy files
        for path in tqdm(paths, desc="predict", unit="vol" if volumetric else "img", disable=not progress):
            started = time.perf_counter()
            with nan_policy(config.data.nan_policy):  # volume loaders apply the process-wide policy
                image, writer, row = _read(path, config, out_dir, volumetric, outputs.instances)
            result = predictor.result(image, instances=outputs.instances)
            seconds = time.perf_counter() - started
            if "scale" in result.extra:
                row["scale"] = result.extra["scale"]  # 2: predicted again at 2x (images of small objects)
            voxels = int(np.prod(image.shape[1:]))
            speed = "megavoxels_per_s" if volumetric else "megapixels_per_s"
            row.update({"seconds": round(seconds, 3), speed: round(voxels / 1e6 / max(seconds, 1e-9), 3)})
            row.update(task.write_outputs(result, image, writer, config, outputs))
            rows.append(row)
    if gather is not None:
        rows = sorted(gather(rows), key=lambda row: row["image"])
    if is_first_process():
        task.finish_outputs(rows, out_dir)
    return rows


def _check_fits(path: Path, config: RunConfig, instances: bool) -> None:
    """Refuse, from the header, a 2D image too large to predict whole here (``predict-large`` is for those)."""
    try:
        shape = image_shape(path)
    except Exception:  # noqa: BLE001 - a file it cannot size (a store, a bomb): its reader names what is wrong
        return
    check_prediction_fits(path, shape, config.model.in_channels, config.model.out_channels, instances)


def _read(path: Path, config: RunConfig, out_dir: Path, volumetric: bool, instances: bool = False
          ) -> tuple[np.ndarray, OutputWriter, dict[str, Any]]:
    """(normalised image (C, *S), its output writer, the start of its summary row)."""
    if not volumetric:
        _check_fits(path, config, instances)
        raw = read_for_prediction(path, config)
        image = prepare_for_prediction(raw, path, config)
        # outputs keep the pixel size (µm per y, x) when the file states it; object tables measure the
        # raw image's intensities per (named) channel
        writer = OutputWriter(out_dir, image_stem(path), spacing=pixel_size(path), raw=raw,  # cells.ome.tif -> cells
                              channel_names=selected_channel_names(path, selection_of(config.data)))
        return image, writer, {"image": str(path), "height": image.shape[1], "width": image.shape[2]}
    from unetkit.data.volumes import NIFTI_EXTENSIONS, read_volume_file, volume_stem, volume_voxels

    voxels = volume_voxels(path)
    if voxels is not None:  # from the header, before reading: predict-large streams what is too large
        check_prediction_fits(path, (voxels,), config.model.in_channels, config.model.out_channels, instances,
                              noun="megavoxel volume")
    raw, meta = read_volume_file(path)  # as load_volume, keeping the raw values for the object table
    image = normalize_percentile(apply_nan_policy(raw, path), config.data.normalize_low, config.data.normalize_high,
                                 name=str(path))
    image = match_channels(image, config.model.in_channels, path)  # (C, D, H, W)
    # NIfTI inputs give NIfTI outputs (same viewers, same affine); all others TIFF
    ext = ".nii.gz" if any(path.name.lower().endswith(e) for e in NIFTI_EXTENSIONS) else ".tif"
    depth, height, width = image.shape[1:]
    row = {"image": str(path), "depth": depth, "height": height, "width": width,
           "spacing_zyx": list(meta.spacing) if meta.spacing else None}
    # object tables: volumes in µm³ from the spacing, intensities of the raw volume per (named) channel
    writer = OutputWriter(out_dir, volume_stem(path), meta, ext, raw=raw,
                          channel_names=selected_channel_names(path, selection_of(config.data)))
    return image, writer, row
