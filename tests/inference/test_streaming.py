"""Images larger than memory: streamed prediction equals in-memory prediction, disk arrays read and
write boxes exactly, chunked instance labels follow the seam rule."""

import numpy as np
import pytest
import tifffile
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import ModelConfig, PostprocessConfig, RunConfig, apply_overrides, to_dict
from unetkit.data.io import normalize_percentile
from unetkit.errors import InputError
from unetkit.inference.arrays import TiledTiff, create_npy, open_npy
from unetkit.inference.chunked import instances_large, postprocess_chunked
from unetkit.inference.postprocess import postprocess
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.streaming import (
    Normalized,
    estimate_percentiles,
    open_source,
    predict_large,
    predict_streaming,
    strip_bounds,
)
from unetkit.inference.tile_plan import NetGeometry
from unetkit.models.registry import build_model
from unetkit.models.unet import UNet


def _net(padding):
    torch.manual_seed(0)
    model = UNet(1, 2, depth=3, base_channels=4, padding=padding).eval()
    return TorchPredictor(model, "cpu"), NetGeometry.from_config(ModelConfig(depth=3, padding=padding))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_streaming_equals_in_memory_prediction_for_any_strip_width(padding, tmp_path):
    predictor, geometry = _net(padding)
    image = np.random.default_rng(0).random((1, 150, 210), dtype=np.float32)
    expected = predict_tiled(image, predictor, geometry, 2, 64, 0.25, 3)
    for strip in (0, 100):  # one strip; strips of 100 columns (boundary tiles predicted twice)
        out = np.zeros_like(expected)
        stats = predict_streaming(image, out, predictor, geometry, 2, 64, 0.25, 3, strip_width=strip)
        np.testing.assert_allclose(out, expected, atol=1e-6)
        assert stats.tiles_predicted >= stats.tiles and stats.shape == (2, 150, 210)
    sink = create_npy(tmp_path / "p.npy", expected.shape, "float32")
    predict_streaming(image, sink, predictor, geometry, 2, 64, 0.25, 3, strip_width=100)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-6)
    tif = TiledTiff.create(tmp_path / "p.tif", expected.shape, "uint8", tile=32)
    predict_streaming(image, tif, predictor, geometry, 2, 64, 0.25, 3, strip_width=100, out_dtype="uint8")
    stored = tifffile.imread(tmp_path / "p.tif")
    assert stored.dtype == np.uint8
    assert np.abs(stored / 255.0 - expected).max() <= 0.5 / 255 + 1e-6


def test_strip_bounds_cover_the_width_once():
    assert strip_bounds(10000, 4096) == [(0, 4096), (4096, 8192), (8192, 10000)]
    assert strip_bounds(300, 0) == [(0, 300)]


def test_raw_array_reads_and_writes_boxes_like_numpy(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 1000, (3, 40, 50)).astype(np.uint16)
    disk = create_npy(tmp_path / "a.npy", data.shape, data.dtype)
    disk[:, :, :] = data
    for box in [(slice(None), slice(3, 17), slice(5, 41)), (1, slice(None), slice(0, 50)), (slice(0, 2), 7)]:
        np.testing.assert_array_equal(disk[box], data[box])
    disk[(slice(None), slice(10, 20), slice(0, 50))] = 7  # whole trailing axis: merged runs
    data[:, 10:20, :] = 7
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data)
    np.testing.assert_array_equal(open_npy(tmp_path / "a.npy")[:, 5:30, 2:9], data[:, 5:30, 2:9])


def test_sources_present_images_channels_first(tmp_path):
    gray = np.random.default_rng(2).integers(0, 255, (30, 40)).astype(np.uint8)
    np.save(tmp_path / "g.npy", gray)
    rgb = np.random.default_rng(3).integers(0, 255, (30, 40, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgb)  # contiguous, read by file offset
    g = open_source(tmp_path / "g.npy")
    c = open_source(tmp_path / "c.tif")
    assert g.shape == (1, 30, 40) and c.shape == (3, 30, 40)
    np.testing.assert_array_equal(g[:, 5:9, 10:20], gray[None, 5:9, 10:20])
    np.testing.assert_array_equal(c[:, 5:9, 10:20], np.moveaxis(rgb, -1, 0)[:, 5:9, 10:20])
    lo, hi = estimate_percentiles(g, 1.0, 99.8)
    assert (lo, hi) == tuple(np.percentile(gray.astype(np.float32), [1.0, 99.8]))
    gray_view = Normalized(c, lo, hi, channels=1)  # RGB averaged to the net's one channel
    assert gray_view[(slice(None), slice(0, 4), slice(0, 4))].shape == (1, 4, 4)
    with pytest.raises(InputError, match=".npy, .tif"):
        open_source(tmp_path / "g.npy").shape and open_source(_touch(tmp_path / "x.png"))


@pytest.mark.parametrize(("store", "stored"), [("npy", (30, 40, 3)), ("npy", (3, 30, 40)), ("zarr", (30, 40, 3))])
def test_a_channel_choice_is_applied_to_plain_arrays_not_ignored(store, stored, tmp_path):
    """--channel / channels=[...] on a .npy or plain .zarr (no axis metadata) reads that channel, as on a TIFF."""
    from unetkit.data.axes import Selection, use_selection

    rgb = np.random.default_rng(4).integers(0, 255, (30, 40, 3)).astype(np.uint8)
    data = rgb if stored[-1] == 3 else np.moveaxis(rgb, -1, 0)
    if store == "npy":
        path = tmp_path / "c.npy"
        np.save(path, data)
    else:
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "c.zarr"
        zarr.open_array(str(path), mode="w", shape=data.shape, dtype=data.dtype)[...] = data
    assert open_source(path).shape == (3, 30, 40)  # no selection: every channel, channels first
    with use_selection(Selection.from_values(channels=[1])):
        view = open_source(path)
    assert view.shape == (1, 30, 40)
    np.testing.assert_array_equal(view[(slice(None), slice(5, 9), slice(10, 20))], rgb[None, 5:9, 10:20, 1])
    with use_selection(Selection.from_values(channels=[5])), pytest.raises(InputError, match="fix --channel"):
        open_source(path)


def _touch(path):
    path.write_bytes(b"")
    return path


def test_compressed_tiff_is_read_through_zarr(tmp_path):
    pytest.importorskip("zarr", reason="zarr is an optional extra: pip install 'unetkit[zarr]'")
    image = np.random.default_rng(4).integers(0, 4000, (70, 90)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", image, tile=(32, 32), compression="zlib")
    source = open_source(tmp_path / "z.tif")
    np.testing.assert_array_equal(source[:, 10:50, 20:77], image[None, 10:50, 20:77])


def test_predict_large_matches_predict_tiled_on_the_normalised_image(tmp_path):
    config = apply_overrides(RunConfig(), {"model.depth": 3, "model.base_channels": 4, "model.norm": "batch",
                                           "inference.tile_size": 64, "inference.batch_size": 2})
    torch.manual_seed(0)
    model = UNet(1, 2, depth=3, base_channels=4, padding="same", norm="batch").eval()
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})
    image = np.random.default_rng(5).integers(100, 3000, (130, 170)).astype(np.uint16)
    np.save(tmp_path / "big.npy", image)
    stats = predict_large(tmp_path / "best.pt", tmp_path / "big.npy", tmp_path / "probs.npy", device="cpu",
                          strip_width=96, progress=False)
    expected = predict_tiled(normalize_percentile(image[None]), TorchPredictor(model, "cpu"),
                             NetGeometry.from_config(config.model), 2, 64, 0.25, 2)
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected, atol=1e-5)
    assert stats.megapixels == pytest.approx(130 * 170 / 1e6) and stats.peak_rss_mb > 0


# --------------------------------------------------------------------------------------------------
# chunked instances


def _disks(shape, centres, radius):
    yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    return mask


def _same_partition(a, b):
    """True when two label images hold the same objects (ids may differ)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def test_chunked_instances_equal_the_whole_image_and_objects_on_seams_are_whole():
    rng = np.random.default_rng(6)
    shape = (200, 230)
    centres = [tuple(c) for c in rng.integers(5, 195, (40, 2))] + [(64, 64), (64, 70), (10, 127), (128, 128)]
    fg = _disks(shape, centres, 6)
    probs = np.stack([np.where(fg, 0.1, 0.9), np.where(fg, 0.9, 0.1)]).astype(np.float32)
    config = PostprocessConfig(min_size=5)
    whole = postprocess(probs, config, "binary")
    out = np.zeros(shape, np.uint32)
    stats = postprocess_chunked(probs, out, config, "binary", chunk=64, halo=48)
    assert _same_partition(out, whole)
    assert stats.objects == whole.max() and stats.cut_pieces == 0 and stats.chunks == 16
    # three-class: touching nuclei split by the watershed, also across seams
    interior = _disks(shape, centres, 4)
    boundary = fg & ~interior
    p3 = np.stack([np.where(fg, 0.05, 0.9), np.where(interior, 0.9, 0.05), np.where(boundary, 0.9, 0.05)])
    p3 = p3 + rng.uniform(0, 0.02, p3.shape)  # real maps have no flat plateaus (watershed ties)
    p3 = (p3 / p3.sum(0)).astype(np.float32)
    whole3 = postprocess(p3, config, "three-class")
    out3 = np.zeros(shape, np.uint32)
    postprocess_chunked(p3, out3, config, "three-class", chunk=64, halo=48)
    assert _same_partition(out3, whole3)


def test_clumps_larger_than_the_halo_are_split_at_seams_but_fully_labelled(tmp_path):
    shape = (100, 200)
    fg = np.zeros(shape, bool)
    fg[40:46, 10:190] = True  # a 180 px bar; halo 16 cannot hold it
    probs = np.stack([~fg, fg]).astype(np.float32)
    out = np.zeros(shape, np.uint32)
    stats = postprocess_chunked(probs, out, PostprocessConfig(min_size=1), "binary", chunk=64, halo=16)
    assert np.array_equal(out > 0, fg)
    assert stats.cut_pieces >= 2 and len(np.unique(out[fg])) == stats.objects
    np.save(tmp_path / "probs.npy", probs)
    file_stats = instances_large(tmp_path / "probs.npy", tmp_path / "labels.npy", PostprocessConfig(min_size=1),
                                 "binary", chunk=64, halo=16, progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), out)
    assert file_stats.objects == stats.objects


def test_labels_go_to_a_tiled_tiff_as_to_npy(tmp_path):
    fg = np.zeros((300, 520), bool)  # two tiles of 256 px down, three across: partial edge tiles
    fg[20:60, 30:90] = fg[200:290, 240:300] = fg[100:120, 500:520] = True
    probs = np.stack([~fg, fg]).astype(np.float32)
    np.save(tmp_path / "probs.npy", probs)
    run = {"config": PostprocessConfig(min_size=1), "kind": "binary", "chunk": 128, "halo": 96, "progress": False}
    npy = instances_large(tmp_path / "probs.npy", tmp_path / "labels.npy", **run)
    tif = instances_large(tmp_path / "probs.npy", tmp_path / "labels.tif", **run)
    written = tifffile.imread(tmp_path / "labels.tif")
    assert written.dtype == np.uint32 and written.shape == fg.shape
    np.testing.assert_array_equal(written, np.load(tmp_path / "labels.npy"))
    assert tif.objects == npy.objects == 3


def test_a_one_channel_output_goes_to_a_tiled_tiff(tmp_path):
    from unetkit.inference.streaming import create_sink

    sink = create_sink(tmp_path / "values.tif", (1, 70, 300), "float32")  # a regression model's one channel
    sink[(slice(None), slice(0, 70), slice(250, 300))] = 2.5
    sink.close()
    written = tifffile.imread(tmp_path / "values.tif")
    assert written.shape == (70, 300) and (written[:, 250:] == 2.5).all() and (written[:, :250] == 0).all()


def test_a_tiled_ome_tiff_carries_its_pixel_size_in_its_ome_xml(tmp_path):
    """predict-large's labels.ome.tif had OME-XML without PhysicalSize (Bio-Formats reads that, not the resolution
    tags), while the probabilities beside it had it: the two did not overlay at scale in Fiji or QuPath."""
    sink = TiledTiff.create(tmp_path / "labels.ome.tif", (1, 70, 300), np.uint32, spacing=(0.5, 0.25))
    sink[(slice(None), slice(0, 70), slice(250, 300))] = 7
    sink.close()
    with tifffile.TiffFile(tmp_path / "labels.ome.tif") as tif:
        assert tif.is_ome and 'PhysicalSizeX="0.25"' in tif.ome_metadata and 'PhysicalSizeY="0.5"' in tif.ome_metadata
        written = tif.asarray()
    assert written.shape == (70, 300) and (written[:, 250:] == 7).all() and (written[:, :250] == 0).all()


@pytest.mark.parametrize(("name", "dims", "told"), [("labels.png", 2, ".npy, .zarr or .tif"),
                                                    ("labels.tif", 3, "TIFF labels are for 2D")])
def test_a_label_output_that_cannot_be_written_is_named(name, dims, told):
    from unetkit.inference.streaming import check_label_output

    with pytest.raises(InputError, match=f"--instances {name}: .*{told}"):
        check_label_output(name, dims)


def test_a_pyramidal_tiff_is_read_at_full_size(tmp_path):
    """A pyramid (OME-TIFF with sub-resolutions, as predict-large writes .ome.tif) was a zarr group: 'No array
    found in store', so predict-large could not read its own .ome.tif."""
    pytest.importorskip("zarr")
    from unetkit.inference.streaming import open_source

    full = (np.arange(300 * 280) % 251).astype(np.uint8).reshape(300, 280)
    with tifffile.TiffWriter(tmp_path / "pyr.ome.tif", bigtiff=True, ome=True) as writer:
        writer.write(full, subifds=1, tile=(128, 128), metadata={"axes": "YX"})
        writer.write(full[::2, ::2], tile=(128, 128), subfiletype=1)
    source = open_source(tmp_path / "pyr.ome.tif")
    assert tuple(source.shape) == (1, 300, 280)
    np.testing.assert_array_equal(np.asarray(source[:, :, :]), full[None])


def test_percentiles_of_an_image_with_nan_agree_with_the_in_memory_road():
    """Under nan_policy "zero" an image in memory is normalised after its NaN are set to 0; predict-large and
    memory maps left them out of the percentiles instead (0..187 against 102..191: masks of 4.9 % and 23.6 %)."""
    from unetkit.inference.streaming import estimate_percentiles

    image = np.random.default_rng(0).uniform(100, 200, (1, 60, 70)).astype(np.float32)
    image[:, :, :20] = np.nan
    filled = np.nan_to_num(image, nan=0.0)
    expected = np.percentile(filled, [1.0, 99.8])
    assert estimate_percentiles(image, 1.0, 99.8, nan_policy="zero") == pytest.approx(tuple(expected))
    left_out = np.percentile(image[np.isfinite(image)], [1.0, 99.8])
    assert estimate_percentiles(image, 1.0, 99.8, nan_policy="nearest") == pytest.approx(tuple(left_out))


@pytest.mark.parametrize("options", [{"compression": "lzw"}, {"tile": (64, 64)}, {"tile": (64, 64),
                                                                                   "compression": "zlib"}])
def test_a_truncated_tiff_is_named_when_its_pixels_are_read(tmp_path, options):
    """predict-large ended in tifffile's, numpy's or a codec's traceback on a truncated strip or tile."""
    from unetkit.inference.streaming import open_source

    image = np.random.default_rng(0).integers(0, 255, (256, 256)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "whole.tif", image, **options)
    raw = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[:len(raw) * 3 // 5])
    np.testing.assert_array_equal(open_source(tmp_path / "whole.tif")[:, :, :][0], image)
    with pytest.raises(InputError, match=r"cut\.tif: cannot read its pixels .*truncated or corrupt"):
        open_source(tmp_path / "cut.tif")[:, :, :]


def test_a_page_stack_and_an_empty_zarr_folder_are_named(tmp_path):
    """predict-large called a 6-page TIFF "6 channels", and an empty .zarr folder "No array found in store"."""
    from unetkit.inference.streaming import open_source

    tifffile.imwrite(tmp_path / "six.tif", np.zeros((6, 32, 32), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="six.tif: a multi-page TIFF with 6 pages .* --axes ZYX --plane N"):
        open_source(tmp_path / "six.tif")
    assert open_source(tmp_path / "six.tif", spatial_dims=3).shape == (1, 6, 32, 32)  # a volume for a 3D model
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(InputError, match="empty.zarr: no zarr array here"):
        open_source(tmp_path / "empty.zarr")


def test_float16_output_that_cannot_hold_the_values_is_refused():
    """A regression model's values near 1e31 were written as inf (near 1e-30: all 0) by --dtype float16."""
    from unetkit.inference.streaming import _convert

    probabilities = np.array([[0.0, 0.25, 1.0]], np.float32)
    np.testing.assert_array_equal(_convert(probabilities, "float16"), probabilities.astype(np.float16))
    small = np.full((1, 3), 3e-5, np.float32)  # subnormal in float16, still held (an empty region of a density map)
    np.testing.assert_allclose(_convert(small, "float16").astype(np.float32), small, rtol=1e-2)
    for values in (np.full((1, 3), 1e31, np.float32), np.full((1, 3), -7e4, np.float32), np.full((1, 3), 1e-30)):
        with pytest.raises(InputError, match="--dtype float16 holds 6e-08..65504"):
            _convert(values, "float16")


def test_a_float16_refusal_midway_leaves_no_unfinished_output(tmp_path):
    """predict-large --dtype float16 of values past 65504 was refused, but left x.unfinished.npy and its progress
    file behind: nothing a rerun could resume (another --dtype is another output)."""
    config = apply_overrides(RunConfig(), {"task": "regression", "data.target_scale": [1e6],
                                           "data.target_offset": [0.0], "model.depth": 2, "model.out_channels": 1,
                                           "model.base_channels": 4, "inference.tile_size": 32})
    torch.manual_seed(0)
    model = build_model(config.model)
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})
    np.save(tmp_path / "image.npy", np.random.default_rng(0).random((40, 50)).astype(np.float32))
    with pytest.raises(InputError, match="--dtype float16 holds"):
        predict_large(tmp_path / "best.pt", tmp_path / "image.npy", tmp_path / "values.npy", device="cpu",
                      out_dtype="float16", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt", "image.npy"]


def test_an_output_that_cannot_hold_a_volume_is_refused_before_its_progress_record(tmp_path):
    """predict-large --out x.tif for a 3D model was refused after x.tif.progress.json had been written."""
    from unetkit.inference.streaming import check_sink

    for name in ("x.tif", "x.ome.tif"):
        with pytest.raises(InputError, match="output is for 2D images"):
            check_sink(tmp_path / name, (2, 8, 16, 16))
    check_sink(tmp_path / "x.npy", (2, 8, 16, 16))
    with pytest.raises(InputError, match="must end in"):
        check_sink(tmp_path / "x.png", (2, 16, 16))
    assert list(tmp_path.iterdir()) == []
