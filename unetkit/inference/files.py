"""Predict image files with a checkpoint and write the outputs a person and the evaluator use.

Outputs go to sub-folders of ``out_dir`` (one file per input image, named by its stem):
``probabilities/`` float32 TIFF of the foreground probability (H, W), ``masks/`` 0/255 PNG,
``overlays/`` PNG of the mask over the image, and with instances ``labels/`` uint16 TIFF,
``instances/`` coloured PNG and ``objects/`` per-object CSV. Multiclass and regression checkpoints
write their own outputs (``unetkit.inference.task_outputs``): class-id masks, overlays with a class
legend, ``classes.csv``; or float32 ``predictions/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.axes import selection_of, use_selection
from unetkit.data.channels import match_channels
from unetkit.data.io import normalize_percentile, read_image
from unetkit.data.layouts import find_images
from unetkit.data.ome import image_stem, pixel_size, selected_channel_names
from unetkit.inference.ome_writers import write_mask_png, write_probabilities
from unetkit.models.compiling import compiled
from unetkit.training.data import is_volumetric, target_kind
from unetkit.training.loop import select_device
from unetkit.training.validation import predict_probabilities
from unetkit.visualize.images import mask_overlay, save_rgb


@dataclass
class PredictOptions:
    """Overrides of the checkpoint's inference settings (None keeps the checkpoint's value)."""

    tile_size: int | None = None
    overlap: float | None = None
    batch_size: int | None = None
    tta: bool = False
    instances: bool = False  # write instance labels (post-processing)
    device: str = "auto"
    engine: str = "torch"  # torch (checkpoint) | onnxruntime (.onnx) | torchscript (.ts), see `unetkit export`
    save_probabilities: bool = True
    class_probabilities: bool = False  # multiclass: also write probabilities/<class>/<stem>.tif
    compile: str | None = None  # torch engine: torch.compile backend (off | inductor | ...)
    winograd: bool | None = None  # torch engine on CPU: Winograd wide convs (None: the checkpoint's setting)
    # microscopy files (unetkit.data.axes); None keeps what the checkpoint was trained on
    channels: list | None = None  # channel indices or names
    axes: str | None = None  # axis letters of files without axis metadata
    time: int | None = None  # time point
    plane: int | None = None  # Z plane for 2D networks


def _apply(config: RunConfig, options: PredictOptions) -> RunConfig:
    values = {"inference.tta": options.tta or config.inference.tta}
    for key in ("tile_size", "overlap", "batch_size", "compile"):
        if getattr(options, key) is not None:
            values[f"inference.{key}"] = getattr(options, key)
    for key in ("channels", "axes", "time", "plane"):  # what to read from microscopy files
        if getattr(options, key) is not None:
            values[f"data.{key}"] = getattr(options, key)
    if options.tile_size is not None:
        values["inference.tile_shape"] = []  # an explicit --tile wins over the checkpoint's per-axis tile
    return apply_overrides(config, values)


def read_for_prediction(path: Path, config: RunConfig) -> np.ndarray:
    """The image's planes the checkpoint reads (its channel/time/plane selection), raw values (C, H, W)."""
    with use_selection(selection_of(config.data)):  # channel/time/plane of microscopy files
        return read_image(path)


def prepare_for_prediction(raw: np.ndarray, path: Path, config: RunConfig) -> np.ndarray:
    """Normalise a raw (C, H, W) image as the checkpoint's training did; float32, channels matched."""
    image = normalize_percentile(raw, config.data.normalize_low, config.data.normalize_high)
    return match_channels(image, config.model.in_channels, path)


def load_for_prediction(path: Path, config: RunConfig) -> np.ndarray:
    """Read and normalise an image as the checkpoint's training did; (C, H, W) float32."""
    return prepare_for_prediction(read_for_prediction(path, config), path, config)


def predict_files(checkpoint: str | Path, inputs: list[str | Path], out_dir: str | Path,
                  options: PredictOptions | None = None, progress: bool = True) -> list[dict]:
    """Predict every image in ``inputs`` (files or folders); returns one summary row per image."""
    options = options or PredictOptions()
    import torch

    from unetkit.inference.engines import load_engine_model
    from unetkit.training.distributed import env_world, shard

    device = select_device(options.device)
    rank, world, local_rank = env_world()  # under torchrun: one GPU and 1/N of the files per process
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    model, config = load_engine_model(checkpoint, options.engine, device, options.winograd)
    config = _apply(config, options)
    if options.engine == "torch":
        model = compiled(model, config.inference.compile, "inference.compile")
    if is_volumetric(config):  # 3D checkpoints predict volumes (unetkit.inference.volumes)
        from unetkit.inference.volumes import predict_volumes

        with use_selection(selection_of(config.data)):
            return predict_volumes(model, config, inputs, out_dir, device, options.instances,
                                   options.save_probabilities, progress)
    paths = shard(find_images(inputs), rank, world)
    out_dir = Path(out_dir)
    kind = target_kind(config)
    rows = []
    for path in tqdm(paths, desc="predict", unit="img", disable=not progress):
        started = time.perf_counter()
        raw = read_for_prediction(path, config)
        image = prepare_for_prediction(raw, path, config)
        spacing = pixel_size(path)  # µm per (y, x) when the file says: outputs keep it (ome_writers)
        probs = predict_probabilities(model, image, config, device, config.model.out_channels)
        seconds = time.perf_counter() - started
        if config.task in ("multiclass", "regression"):
            from unetkit.inference.task_outputs import write_task_outputs

            rows.append(write_task_outputs(probs, image, config, out_dir, path, seconds,
                                           options.class_probabilities))
            continue
        foreground = (1.0 - probs[0]).astype(np.float32)
        mask = foreground > config.inference.threshold
        stem = image_stem(path)  # cells.ome.tif -> cells
        if options.save_probabilities:
            write_probabilities(out_dir / "probabilities" / f"{stem}.tif", foreground, spacing)
        write_mask_png(out_dir / "masks" / f"{stem}.png", mask.astype(np.uint8) * 255, spacing)
        save_rgb(out_dir / "overlays" / f"{stem}.png", mask_overlay(image, mask))
        row = {"image": str(path), "height": image.shape[1], "width": image.shape[2],
               "seconds": round(seconds, 3), "megapixels_per_s": round(mask.size / 1e6 / max(seconds, 1e-9), 3),
               "foreground_fraction": round(float(mask.mean()), 4)}
        if options.instances or config.task == "instances":
            row["objects"] = _write_instances(probs, image, config, kind, out_dir, stem, raw, spacing,
                                              selected_channel_names(path, selection_of(config.data)))
        rows.append(row)
    if config.task == "multiclass" and rows:
        from unetkit.inference.task_outputs import write_rows

        write_rows(rows, out_dir / "classes.csv")
    return rows


def _write_instances(probs: np.ndarray, image: np.ndarray, config: RunConfig, kind: str, out_dir: Path,
                     stem: str, raw: np.ndarray | None = None, spacing: tuple[float, ...] | None = None,
                     channel_names: list[str] | None = None) -> int:
    """Labels (OME-TIFF with the pixel size), coloured instances and the object table: areas in µm²
    when the pixel size is known, intensities of the raw image (its units, per channel)."""
    from unetkit.inference.objects import object_table, write_object_csv
    from unetkit.inference.ome_writers import write_label_image
    from unetkit.inference.postprocess import postprocess
    from unetkit.visualize.instances import instance_overlay

    labels = postprocess(probs, config.postprocess, kind)
    write_label_image(out_dir / "labels" / f"{stem}.tif", labels, spacing)
    save_rgb(out_dir / "instances" / f"{stem}.png", instance_overlay(image, labels))
    table = object_table(labels, image if raw is None else raw, spacing, channel_names or ())
    write_object_csv(table, out_dir / "objects" / f"{stem}.csv")
    return int(labels.max())


