"""napari widgets: segment the selected Image layer with a checkpoint; train from an Image + Labels pair.

Each widget is a magicgui function that starts a napari thread worker and returns it (tests wait on it);
the work itself is one library call. Result layers take the image layer's scale and translation, so
they overlay the image in physical units (µm for OME-TIFF / OME-Zarr opened with their pixel size).
"""

import shutil
import tempfile
from pathlib import Path

import napari
import numpy as np
from magicgui import magic_factory
from napari.qt.threading import FunctionWorker, GeneratorWorker, thread_worker
from napari.utils import progress

from unetkit.errors import InputError
from unetkit.inference.segment import (
    Segmentation,
    as_channels_first,
    check_viewer_array,
    load_segmenter,
    segment_with,
    stack_segmentations,
    viewer_images,
)


def _placement(layer: napari.layers.Layer, ndim: int) -> dict:
    """Where a result of ``ndim`` spatial axes overlays ``layer``: the scale, translation and units of the layer's
    last ``ndim`` axes, and its rotation, shear and affine too when it has no other axes (a channel picked)."""
    layer_ndim = layer.data[0].ndim if layer.multiscale else layer.data.ndim
    layer_ndim -= 1 if getattr(layer, "rgb", False) else 0
    spatial = slice(layer_ndim - ndim, layer_ndim)
    placement = {"scale": tuple(layer.scale[spatial]), "translate": tuple(layer.translate[spatial])}
    if getattr(layer, "units", None) is not None:
        placement["units"] = tuple(layer.units[spatial])
    if layer_ndim == ndim:  # the same axes: the layer's whole transform
        placement.update(rotate=layer.rotate, shear=layer.shear, affine=layer.affine)
    return placement


RESULT = "unetkit result"  # layer metadata key: a layer this plugin made, replaced by the next run on its image


def _show(viewer: napari.Viewer, data: np.ndarray, name: str, kind: str, placement: dict, **style) -> object:
    """Add a result layer, or replace the data of the one an earlier run on the same image added."""
    if name in viewer.layers and viewer.layers[name].metadata.get(RESULT) == kind:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    return add(data, name=name, metadata={RESULT: kind}, **placement, **style)


def add_segmentation(viewer: napari.Viewer, image: napari.layers.Image, result: Segmentation) -> list:
    """Foreground probability (image layer) and instance labels, class ids or the mask (labels layer) over
    ``image``; a second run on the same image replaces its layers instead of piling up new ones."""
    placement = _placement(image, result.foreground.ndim)
    layers = [_show(viewer, result.foreground, f"{image.name} foreground", "image", placement, colormap="magma",
                    blending="additive", opacity=0.5, contrast_limits=(0.0, 1.0))]
    if result.classes is not None:
        labels, kind = result.classes, "classes"
    elif result.labels is not None:
        labels, kind = result.labels, "instances"
    else:
        labels, kind = result.mask.astype(np.int32), "mask"
    layers.append(_show(viewer, labels, f"{image.name} {kind}", "labels", placement))
    if result.class_names:
        viewer.status = "unetkit classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(result.class_names))
    return layers


def _layer_data(image: napari.layers.Image):
    """The full-resolution array of an image layer (a multiscale layer's first level, not its smallest), as the
    layer holds it: a dask or zarr level is read later, in the worker, not in the GUI thread."""
    if image is None:
        raise InputError("no image layer: open or select an image to segment")
    return image.data[0] if image.multiscale else image.data


def _add_stop_button(widget) -> None:
    """A Stop button under Segment: the running segmentations end after their current plane, and add no layers."""
    from magicgui.widgets import PushButton

    running: list = []

    def keep(worker: GeneratorWorker) -> None:
        running.append(worker)
        worker.finished.connect(lambda: running.remove(worker) if worker in running else None)

    def stop_all(*_) -> None:
        for worker in list(running):
            worker.quit()

    stop = PushButton(name="stop", text="Stop", gui_only=True)  # a control, not an argument of the call
    stop.changed.connect(stop_all)
    widget.called.connect(keep)
    widget.append(stop)


@magic_factory(call_button="Segment", widget_init=_add_stop_button,
               checkpoint={"label": "model (packaged name, .pt or run folder)"},
               channel={"label": "channel (-1: the layer as it is)", "min": -1},
               tile={"label": "tile size (0: the checkpoint's)", "min": 0, "max": 16384, "step": 16},
               tta={"label": "flip test-time augmentation"},
               nan_policy={"label": "NaN/Inf pixels (--nan-policy)", "choices": ["error", "zero", "nearest"]})
def segment_widget(viewer: napari.Viewer, image: napari.layers.Image, checkpoint: str = "nuclei",
                   channel: int = -1, tile: int = 0, tta: bool = False, instances: bool = True,
                   nan_policy: str = "error") -> GeneratorWorker:
    """Segment ``image`` with a packaged model or a checkpoint in a background thread; adds the result layers.

    A z-stack or time series one axis deeper than the model's images is segmented plane by plane, with a progress
    bar over the planes; the Stop button (``worker.quit()``) ends it after the current plane."""
    data = _layer_data(image)
    check_viewer_array(data, image.rgb)  # model-independent mistakes are named at once, in the GUI thread
    picked = None if channel < 0 else channel

    @thread_worker
    def work():
        predictor = load_segmenter(str(checkpoint), tile_size=tile or None, tta=tta, nan_policy=nan_policy)
        images, is_stack = viewer_images(data, rgb=image.rgb, channel=picked, spatial_dims=predictor.spatial_dims,
                                         in_channels=predictor.config.model.in_channels)
        planes = []
        for index, plane in enumerate(progress(images, desc="unetkit: segmenting")):
            name = f"layer '{image.name}'" + (f" plane {index}" if is_stack else "")
            planes.append(segment_with(predictor, plane, instances=instances, name=name))
            yield index  # a point where quit() may stop the work
        return stack_segmentations(planes) if is_stack else planes[0]

    worker = work()
    worker.returned.connect(lambda result: add_segmentation(viewer, image, result))
    worker.aborted.connect(lambda: setattr(viewer, "status", f"unetkit: segmentation of '{image.name}' stopped"))
    worker.start()
    return worker


def _write_pair(folder: Path, image: napari.layers.Image, labels: napari.layers.Labels) -> Path:
    """The layers as a one-image `folders` dataset (images/ + labels/ TIFFs) for training: a 2D image (gray or RGB)
    and its labels; other layers are refused (training would take their first channel or frame unsaid)."""
    from unetkit.data.io import write_labels, write_tiff

    if labels is None:
        raise InputError("no labels layer: paint or open the labels of the image to train on")
    pixels = np.asarray(_layer_data(image))
    if pixels.ndim - (1 if image.rgb else 0) != 2:
        raise InputError(f"layer '{image.name}' has shape {pixels.shape}: training here takes one 2D image (gray or "
                         "RGB) and its labels; save stacks or channels as files and train with unetkit train")
    data = as_channels_first(pixels, rgb=image.rgb)
    write_tiff(folder / "images" / "layer.tif", data)
    write_labels(folder / "labels" / "layer.tif", np.asarray(labels.data))
    return folder


@magic_factory(call_button="Train", out_dir={"label": "run folder", "mode": "d"},
               epochs={"min": 1, "max": 1000}, patch={"min": 32, "step": 16},
               task={"choices": ["instances", "binary"]},
               samples_per_epoch={"min": 8, "max": 100_000})  # at least one batch of 8 patches
def train_widget(viewer: napari.Viewer, image: napari.layers.Image, labels: napari.layers.Labels,
                 out_dir: Path = Path("runs/napari"), epochs: int = 10, patch: int = 128,
                 task: str = "instances", depth: int = 4, base_channels: int = 16,
                 samples_per_epoch: int = 128) -> FunctionWorker:
    """Train a U-Net on ``image`` and its ``labels`` (validation on the same pair); shows the run's curves."""
    settings = {"data.patch_size": patch, "model.depth": depth, "model.base_channels": base_channels,
                "data.samples_per_epoch": samples_per_epoch, "inference.tile_size": max(patch, 128)}
    staging = tempfile.mkdtemp(prefix="unetkit-napari-")
    try:
        data = _write_pair(Path(staging), image, labels)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    @thread_worker(progress=True)
    def work():
        import unetkit

        try:
            return unetkit.train(data, out_dir, task, val=data, epochs=epochs, progress=False, **settings)
        finally:  # the pair was copied for this run alone
            shutil.rmtree(staging, ignore_errors=True)

    def show(result) -> None:
        curves = Path(result.run_dir) / "curves.png"
        if curves.is_file():
            from PIL import Image

            viewer.add_image(np.asarray(Image.open(curves).convert("RGB")), name="unetkit training curves",
                             rgb=True, visible=False)
        viewer.status = f"unetkit: best epoch {result.best_epoch}, score {result.best_score:.4f}; {result.run_dir}"

    worker = work()
    worker.returned.connect(show)
    worker.start()
    return worker
