"""napari widgets: segment the selected Image layer with a checkpoint; train from an Image + Labels pair.

Each widget is a magicgui function that starts a napari thread worker and returns it (tests wait on it);
the work itself is one library call. Result layers take the image layer's scale and translation, so
they overlay the image in physical units (µm for OME-TIFF / OME-Zarr opened with their pixel size).
"""

import tempfile
from pathlib import Path

import napari
import numpy as np
from magicgui import magic_factory
from napari.qt.threading import FunctionWorker, GeneratorWorker, thread_worker

from unetkit.inference.segment import Segmentation, as_channels_first, segment_array


def _placement(layer: napari.layers.Layer) -> dict:
    """Scale and translation of the layer's spatial axes, for layers that must overlay it."""
    ndim = layer.data.ndim - (1 if getattr(layer, "rgb", False) else 0)
    spatial = slice(ndim - 2, ndim) if ndim >= 2 else slice(None)
    return {"scale": tuple(layer.scale[spatial]), "translate": tuple(layer.translate[spatial])}


def add_segmentation(viewer: napari.Viewer, image: napari.layers.Image, result: Segmentation) -> list:
    """Foreground probability (image layer) and instance labels or the mask (labels layer) over ``image``."""
    placement = _placement(image)
    layers = [viewer.add_image(result.foreground, name=f"{image.name} foreground", colormap="magma",
                               blending="additive", opacity=0.5, contrast_limits=(0.0, 1.0), **placement)]
    labels = result.labels if result.labels is not None else result.mask.astype(np.int32)
    kind = "instances" if result.labels is not None else "mask"
    layers.append(viewer.add_labels(labels, name=f"{image.name} {kind}", **placement))
    return layers


@magic_factory(call_button="Segment", checkpoint={"label": "checkpoint (.pt or run folder)"},
               channel={"label": "channel (-1: the layer as it is)", "min": -1},
               tile={"label": "tile size (0: the checkpoint's)", "min": 0, "step": 16})
def segment_widget(viewer: napari.Viewer, image: napari.layers.Image, checkpoint: Path = Path("runs/demo"),
                   channel: int = -1, tile: int = 0, tta: bool = False, instances: bool = True) -> GeneratorWorker:
    """Segment ``image`` with a unetkit checkpoint in a background thread; adds the result layers."""
    data = as_channels_first(image.data, rgb=image.rgb, channel=None if channel < 0 else channel)

    @thread_worker(progress={"total": 2, "desc": "unetkit: segmenting"})
    def work():
        yield  # 1 of 2: started (the progress bar shows the job while the network runs)
        result = segment_array(checkpoint, data, tile_size=tile or None, tta=tta or None, instances=instances)
        yield
        return result

    worker = work()
    worker.returned.connect(lambda result: add_segmentation(viewer, image, result))
    worker.start()
    return worker


def _write_pair(folder: Path, image: napari.layers.Image, labels: napari.layers.Labels) -> Path:
    """The layers as a one-image `folders` dataset (images/ + labels/ TIFFs) for training."""
    from unetkit.data.io import write_labels, write_tiff

    data = as_channels_first(image.data, rgb=image.rgb, channel=0 if image.data.ndim == 3 and not image.rgb
                             else None)
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
    data = _write_pair(Path(staging), image, labels)

    @thread_worker(progress=True)
    def work():
        import unetkit

        return unetkit.train(data, out_dir, task, val=data, epochs=epochs, progress=False, **settings)

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
