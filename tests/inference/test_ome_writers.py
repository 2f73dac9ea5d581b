"""Calibrated outputs: OME-TIFF / PNG keep the pixel size; predict-large writes OME-Zarr (image + labels,
multiscale) and pyramidal OME-TIFF that ome-zarr-py and tifffile read back with their scale."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.axes import Selection, use_selection
from unetkit.data.io import normalize_percentile
from unetkit.data.ome import image_info, read_selected
from unetkit.inference.ome_writers import (
    _downsample,
    pyramid_shapes,
    write_label_image,
    write_probabilities,
    write_pyramidal_ome_tiff,
)
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.streaming import predict_large
from unetkit.inference.tile_plan import NetGeometry
from unetkit.models.unet import UNet


def test_pyramid_shapes_and_downsampling_by_hand():
    assert pyramid_shapes((2, 1000, 700)) == [(2, 1000, 700), (2, 500, 350)]
    assert pyramid_shapes((100, 90)) == [(100, 90)]
    block = np.array([[0, 2, 4], [2, 4, 6]], np.float32)  # odd width: the last column is repeated
    np.testing.assert_allclose(_downsample(block, True), [[2.0, 5.0]])
    np.testing.assert_array_equal(_downsample(block, False), [[0, 4]])


def test_labels_and_probabilities_round_trip_their_pixel_size(tmp_path):
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:9] = 7
    write_label_image(tmp_path / "labels.tif", labels, (0.5, 0.25))
    info = image_info(tmp_path / "labels.tif")
    assert info.axes == "YX" and info.pixel_size == pytest.approx({"Y": 0.5, "X": 0.25})
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "labels.tif"), labels)
    volume = np.random.default_rng(0).random((4, 8, 9)).astype(np.float32)
    write_probabilities(tmp_path / "p.tif", volume, (2.0, 0.3, 0.3))
    info = image_info(tmp_path / "p.tif")
    assert info.axes == "ZYX" and info.pixel_size == pytest.approx({"Z": 2.0, "Y": 0.3, "X": 0.3})
    # an uncalibrated input gives a plain OME-TIFF without a pixel size
    write_label_image(tmp_path / "plain.tif", labels, None)
    assert image_info(tmp_path / "plain.tif").pixel_size == {}


def test_pyramidal_ome_tiff_levels_hold_the_downsampled_image(tmp_path):
    source = np.random.default_rng(1).random((2, 600, 530)).astype(np.float32)
    levels = write_pyramidal_ome_tiff(source, tmp_path / "p.ome.tif", "CYX", (0.5, 0.5), tile=128)
    assert levels == 2
    with tifffile.TiffFile(tmp_path / "p.ome.tif") as tif:
        series = tif.series[0]
        assert len(series.levels) == 2 and series.levels[1].shape == (2, 300, 265)
        np.testing.assert_array_equal(series.levels[0].asarray(), source)
        np.testing.assert_allclose(series.levels[1].asarray(), _downsample(source, True), atol=1e-6)
    assert image_info(tmp_path / "p.ome.tif").pixel_size == pytest.approx({"Y": 0.5, "X": 0.5})


@pytest.fixture
def checkpoint(tmp_path):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 64,
                                           "inference.batch_size": 2, "data.channels": ["DAPI"],
                                           "model.norm": "batch"})
    torch.manual_seed(0)
    model = UNet(1, 2, depth=2, base_channels=4, padding="same", norm="batch").eval()
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})
    return tmp_path / "best.pt", model, config


def test_predict_large_ome_zarr_with_labels_and_channel_from_the_checkpoint(tmp_path, checkpoint):
    pytest.importorskip("zarr")
    reader = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    from unetkit.inference.ome_writers import instances_into_ome_zarr

    path, model, config = checkpoint
    rng = np.random.default_rng(2)
    image = rng.integers(100, 3000, (3, 2, 520, 540)).astype(np.uint16)  # TCYX, channel 1 = DAPI
    tifffile.imwrite(tmp_path / "movie.ome.tif", image, ome=True, photometric="minisblack",
                     metadata={"axes": "TCYX", "PhysicalSizeX": 0.4, "PhysicalSizeY": 0.4,
                               "Channel": {"Name": ["GFP", "DAPI"]}})
    out = tmp_path / "pred.ome.zarr"
    with use_selection(Selection(time=1)):  # the checkpoint picks DAPI, the command line the time point
        predict_large(path, tmp_path / "movie.ome.tif", out, device="cpu", strip_width=128, progress=False)
    expected = predict_tiled(normalize_percentile(image[1, 1:2]), TorchPredictor(model, "cpu"),
                             NetGeometry.from_config(config.model), 2, 64, 0.25, 2)
    probs, info = read_selected(out, Selection(), 2)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert info.axes == "CYX" and info.levels == 2
    assert info.pixel_size == pytest.approx({"Y": 0.4, "X": 0.4})
    instances_into_ome_zarr(out, "nuclei", config.postprocess, "binary", chunk=256, halo=32, progress=False)
    # ome-zarr-py, the reference reader, sees the image, its scale, the pyramid and the label image
    nodes = list(reader.Reader(parse_url(str(out)))())
    image_node = nodes[0]
    assert len(image_node.data) == 2 and image_node.data[0].shape == (2, 520, 540)
    scale = image_node.metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == pytest.approx([1.0, 0.4, 0.4])
    labels_info = image_info(out / "labels" / "nuclei")
    assert labels_info.axes == "YX" and labels_info.pixel_size == pytest.approx({"Y": 0.4, "X": 0.4})
    import zarr

    labels = np.asarray(zarr.open_array(str(out / "labels" / "nuclei" / "0"), mode="r"))
    from unetkit.inference.chunked import postprocess_chunked

    in_memory = np.zeros((520, 540), np.uint32)
    postprocess_chunked(probs, in_memory, config.postprocess, "binary", 256, 32, False)
    np.testing.assert_array_equal(labels, in_memory)  # the same labels as from the arrays in memory
    assert zarr.open_group(str(out / "labels"), mode="r").attrs["ome"]["labels"] == ["nuclei"]
    # the image is named as its final file, not as the unfinished one it was written under
    assert zarr.open_group(str(out), mode="r").attrs["ome"]["multiscales"][0]["name"] == "pred"


def test_predict_large_pyramidal_ome_tiff(tmp_path, checkpoint):
    path, model, config = checkpoint
    image = np.random.default_rng(3).integers(0, 255, (1, 600, 560)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "slide.tif", image, imagej=True, metadata={"axes": "CYX", "unit": "um"},
                     resolution=(1 / 0.25, 1 / 0.25))
    with use_selection(Selection.from_values("0")):  # the file has no channel names: index 0, not "DAPI"
        predict_large(path, tmp_path / "slide.tif", tmp_path / "probs.ome.tif", device="cpu", out_dtype="uint8",
                      progress=False)
    with tifffile.TiffFile(tmp_path / "probs.ome.tif") as tif:
        assert tif.is_ome and len(tif.series[0].levels) == 2 and tif.series[0].pages[0].is_tiled
    info = image_info(tmp_path / "probs.ome.tif")
    assert info.shape == (2, 600, 560) and info.pixel_size == pytest.approx({"Y": 0.25, "X": 0.25})
    assert not list(tmp_path.glob(".probs*"))  # the staging array is removed
    # predict-large reads its own pyramidal output back at full size ("No array found in store" before)
    with use_selection(Selection.from_values("1")):  # its channel 1 (of 2) as the one-channel input
        predict_large(path, tmp_path / "probs.ome.tif", tmp_path / "again.npy", device="cpu", progress=False)
    assert np.load(tmp_path / "again.npy").shape == (2, 600, 560)


def test_plain_tiff_outputs_of_predict_large_keep_the_pixel_size(tmp_path, checkpoint):
    """Plain tiled .tif probabilities and labels carried no pixel size; the OME ones did."""
    import unetkit

    path, _, _ = checkpoint
    image = np.random.default_rng(4).integers(0, 255, (1, 300, 280)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "slide.tif", image, imagej=True, metadata={"axes": "CYX", "unit": "um"},
                     resolution=(1 / 0.25, 1 / 0.5))
    unetkit.predict_large(path, tmp_path / "slide.tif", tmp_path / "probs.tif", instances=tmp_path / "labels.tif",
                          device="cpu", progress=False, channels=[0])
    for name in ("probs.tif", "labels.tif"):
        assert image_info(tmp_path / name).pixel_size == pytest.approx({"Y": 0.5, "X": 0.25}), name


def test_python_api_takes_the_selection_options(tmp_path, checkpoint):
    """``unetkit.predict_large(..., time=1)`` and ``unetkit.predict_files(..., channels=[...])`` pick the
    planes as --time / --channel do; a channel choice over the checkpoint's wins."""
    pytest.importorskip("zarr")
    import unetkit

    path, model, config = checkpoint
    image = np.random.default_rng(3).integers(100, 3000, (2, 2, 96, 80)).astype(np.uint16)  # TCYX
    tifffile.imwrite(tmp_path / "movie.ome.tif", image, ome=True, photometric="minisblack",
                     metadata={"axes": "TCYX", "PhysicalSizeX": 0.4, "PhysicalSizeY": 0.4,
                               "Channel": {"Name": ["GFP", "DAPI"]}})
    geometry = NetGeometry.from_config(config.model)

    def expected(plane):
        return predict_tiled(normalize_percentile(plane), TorchPredictor(model, "cpu"), geometry, 2, 64, 0.25, 2)

    with pytest.raises(Exception, match="--time"):  # two time points and none chosen
        unetkit.predict_large(path, tmp_path / "movie.ome.tif", tmp_path / "p.npy", device="cpu", progress=False)
    unetkit.predict_large(path, tmp_path / "movie.ome.tif", tmp_path / "p.npy", device="cpu", progress=False, time=1)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected(image[1, 1:2]), atol=1e-5)  # DAPI at t=1

    rows = unetkit.predict_files(path, [tmp_path / "movie.ome.tif"], tmp_path / "out", progress=False, device="cpu",
                                 channels=["GFP"], time=0)
    assert len(rows) == 1
    written = tifffile.imread(tmp_path / "out" / "probabilities" / "movie.tif")
    np.testing.assert_allclose(written, 1.0 - expected(image[0, 0:1])[0], atol=1e-5)  # GFP at t=0
    assert image_info(tmp_path / "out" / "probabilities" / "movie.tif").pixel_size == pytest.approx(
        {"Y": 0.4, "X": 0.4})


def test_labels_past_65535_objects_keep_the_pixel_size(tmp_path):
    """uint32 labels were written without the OME pixel size (the writer took uint16 only)."""
    from unetkit.data.io import read_labels
    from unetkit.data.ome import pixel_size
    from unetkit.inference.ome_writers import write_label_image

    labels = np.arange(300 * 300, dtype=np.int64).reshape(300, 300)
    write_label_image(tmp_path / "many.tif", labels, (0.5, 0.25))
    np.testing.assert_array_equal(read_labels(tmp_path / "many.tif"), labels)
    assert tuple(pixel_size(tmp_path / "many.tif", 2)) == (0.5, 0.25)


def _probability_ome_zarr(path, spacing):
    """A (2, 600, 520) OME-Zarr of probabilities as predict-large writes it: object 1 in the box [100:300, 50:250]."""
    from unetkit.inference.ome_writers import finish_ome_zarr, open_output

    probs = np.zeros((2, 600, 520), np.float32)
    probs[0] = 1.0
    probs[0, 100:300, 50:250], probs[1, 100:300, 50:250] = 0.0, 1.0
    open_output(path, probs.shape, "float32")[:] = probs
    finish_ome_zarr(path, "CYX", spacing, name="pred")
    return probs


def test_ome_zarr_outputs_name_their_dimensions_and_pass_the_ngff_validator(tmp_path):
    """NGFF 0.5 wants dimension_names equal to the axes names on every array (ome-zarr-models refused our outputs)."""
    zarr = pytest.importorskip("zarr")
    from unetkit.inference.ome_writers import instances_into_ome_zarr

    out = tmp_path / "pred.ome.zarr"
    _probability_ome_zarr(out, (0.5, 0.5))
    instances_into_ome_zarr(out, "nuclei", RunConfig().postprocess, "binary", chunk=256, halo=32, progress=False)
    for level in ("0", "1"):
        assert zarr.open_array(str(out / level), mode="r").metadata.dimension_names == ("c", "y", "x")
        labels = zarr.open_array(str(out / "labels" / "nuclei" / level), mode="r")
        assert labels.metadata.dimension_names == ("y", "x")
    assert np.asarray(zarr.open_array(str(out / "labels" / "nuclei" / "0"), mode="r"))[200, 150] == 1
    models = pytest.importorskip("ome_zarr_models.v05.image")
    label_models = pytest.importorskip("ome_zarr_models.v05.image_label")
    models.Image.from_zarr(zarr.open_group(str(out), mode="r"))  # raises on invalid metadata
    label_models.ImageLabel.from_zarr(zarr.open_group(str(out / "labels" / "nuclei"), mode="r"))


def test_uncalibrated_ome_zarr_reads_back_uncalibrated(tmp_path):
    """No unit on the axes is no pixel size: unetkit's own uncalibrated output (scale 1, no unit) read back as 1 µm."""
    pytest.importorskip("zarr")
    from unetkit.data.ome import pixel_size

    _probability_ome_zarr(tmp_path / "plain.ome.zarr", None)
    assert image_info(tmp_path / "plain.ome.zarr").pixel_size == {}
    assert pixel_size(tmp_path / "plain.ome.zarr") is None
    _probability_ome_zarr(tmp_path / "um.ome.zarr", (0.5, 0.25))
    assert image_info(tmp_path / "um.ome.zarr").pixel_size == pytest.approx({"Y": 0.5, "X": 0.25})
