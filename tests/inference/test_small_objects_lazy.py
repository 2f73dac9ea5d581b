"""The small-object rule on images read and written box by box: the lazy 2x view, the shrinking sink, the
sampled decision, and ``predict_large`` against the in-memory road."""

import numpy as np
import pytest
import torch

from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.inference.postprocess import postprocess
from unetkit.inference.small_objects import block_mean, enlarge, median_object_area
from unetkit.inference.small_objects_lazy import (
    WHOLE_DECISION_PIXELS,
    Enlarged,
    ShrinkingSink,
    even_strip,
    sampled_median_area,
)
from unetkit.models.registry import build_model


def three_class(labels: np.ndarray) -> np.ndarray:
    """Sure three-class probabilities of ``labels``: interior on every object, background elsewhere."""
    return np.stack([labels == 0, labels > 0, np.zeros_like(labels, dtype=bool)]).astype(np.float32)


def instances_config(area: float) -> RunConfig:
    """A small 2D instances network with the rule at ``area`` px."""
    return apply_overrides(RunConfig(), {
        "task": "instances", "model.out_channels": 3, "model.depth": 2, "model.base_channels": 4,
        "inference.tile_size": 64, "postprocess.min_size": 0, "postprocess.upscale_below_area": area})


def noise(shape, seed=0) -> np.ndarray:
    """(1, H, W) float32 noise with the bright outliers a saturated microscope image has."""
    image = np.random.default_rng(seed).random((1, *shape)).astype(np.float32)
    image[image > 0.97] = 3.0
    return image


def one_object_checkpoint(path, area: float):
    """(network, config) of an instances checkpoint saved at ``path`` whose answer is one object of the whole
    image (threshold 0): under a rule limit of 1e9 px (taken at 2x), over one of 1 px (left at 1x)."""
    from unetkit import checkpoint as ckpt
    from unetkit.config import to_dict

    config = apply_overrides(instances_config(area), {"postprocess.threshold": 0.0, "postprocess.seed_threshold": 0.0})
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    ckpt.save_checkpoint(path, {"config": to_dict(config), "model": model.state_dict()})
    return model, config


@pytest.mark.parametrize("box", [(0, 40, 0, 60), (37, 101, 55, 131), (300, 400, 360, 460), (1, 399, 3, 459)])
def test_the_lazy_view_reads_what_enlarging_the_whole_image_gives(box):
    image = noise((200, 230))
    whole = enlarge(image)
    view = Enlarged(image)
    assert view.shape == (1, 400, 460) and view.dtype == np.float32
    top, bottom, left, right = box
    # the spline's reach decays by 0.27 per px: 16 px of context leave float32 rounding (~3e-8 measured)
    np.testing.assert_allclose(view[:, top:bottom, left:right], whole[:, top:bottom, left:right], atol=1e-6)
    with pytest.raises(InputError, match="2D"):
        Enlarged(np.zeros((1, 4, 5, 6), np.float32))


def test_the_shrinking_sink_writes_two_by_two_means_across_odd_bands_and_strips():
    rng = np.random.default_rng(1)
    big = rng.random((2, 20, 24)).astype(np.float32)
    target = np.full((2, 10, 12), -1.0, np.float32)
    sink = ShrinkingSink(target)
    assert sink.shape == (2, 20, 24)
    for cols in ((0, 10), (10, 24)):  # strip after strip, bands of odd and even heights, top to bottom
        for rows in ((0, 3), (3, 4), (4, 11), (11, 20)):
            sink[(slice(None), slice(*rows), slice(*cols))] = big[:, slice(*rows), slice(*cols)]
    sink.finish()
    np.testing.assert_allclose(target, block_mean(big), atol=1e-7)
    broken = ShrinkingSink(np.zeros((1, 5, 6), np.float32))
    broken[(slice(None), slice(0, 3), slice(0, 12))] = np.ones((1, 3, 12), np.float32)
    with pytest.raises(RuntimeError, match="never completed"):
        broken.finish()
    with pytest.raises(RuntimeError, match="left unwritten"):  # a band skipped: the kept row has no pair
        broken[(slice(None), slice(4, 6), slice(0, 12))] = np.ones((1, 2, 12), np.float32)
    with pytest.raises(RuntimeError, match="multiples of 2"):
        ShrinkingSink(np.zeros((1, 5, 6), np.float32))[(slice(None), slice(0, 2), slice(1, 5))] = np.ones((1, 2, 4))
    assert even_strip(4096) == 4096 and even_strip(33) == 34 and even_strip(0) == 0


def squares(shape, side, step) -> np.ndarray:
    """Squares of ``side`` px every ``step`` px from (5, 5) (none crossing the edge), numbered."""
    from scipy import ndimage

    covered = [((np.arange(n)[:, None] - np.arange(5, n - side, step)[None]) % n < side).any(axis=1) for n in shape]
    return ndimage.label(covered[0][:, None] & covered[1][None, :])[0]


def sure_answer(image: np.ndarray) -> np.ndarray:
    """A stand-in network that is sure of what the image shows: interior where it is bright."""
    return three_class((image[0] > 0.5).astype(np.int32))


def test_the_decision_reads_a_small_image_whole_as_in_memory():
    labels = squares((120, 150), 4, 11)
    image = (labels > 0)[None].astype(np.float32)
    config = instances_config(100)
    expected = median_object_area(postprocess(sure_answer(image), config.postprocess, "three-class"))
    assert sampled_median_area(sure_answer, image, config, "three-class") == expected == 16


def test_a_large_image_decides_from_blocks_without_the_objects_their_edges_cut():
    side = 2100  # 4.4 MP: over the whole-image limit, so 4 x 4 blocks of 512 px are read
    assert side * side > WHOLE_DECISION_PIXELS
    labels = squares((side, side), 200, 230)  # 40,000 px squares: a block of 512 px cuts most of those it holds
    image = (labels > 0)[None].astype(np.float32)
    read = []

    def predict(block):
        read.append(block.shape)
        return sure_answer(block)

    assert sampled_median_area(predict, image, instances_config(100), "three-class") == 40_000
    assert read == [(1, 512, 512)] * 16


@pytest.mark.parametrize(("area", "scale", "dtype"), [(1e9, 2, "float32"), (1.0, 1, "float32"), (1e9, 2, "uint8")])
def test_predict_large_takes_the_road_predict_takes(area, scale, dtype, tmp_path, capsys):
    from unetkit.api import predict_large
    from unetkit.inference.predictor import Predictor

    model, config = one_object_checkpoint(tmp_path / "best.pt", area)
    image = (noise((70, 90), seed=3)[0] * 80).astype(np.uint8)
    np.save(tmp_path / "big.npy", image)
    done = predict_large(tmp_path / "best.pt", tmp_path / "big.npy", tmp_path / "probs.npy", device="cpu",
                         strip_width=33, out_dtype=dtype, progress=False)  # 34 at 2x: several strips
    predictor = Predictor(model, config)
    expected = predictor.output(predictor.prepare(image))
    assert predictor.scaled_output(predictor.prepare(image)).scale == scale == done["prediction"].scale
    written = np.load(tmp_path / "probs.npy")
    assert written.shape == (3, 70, 90) == done["prediction"].shape
    if dtype == "uint8":  # probability x 255, rounded: within one step
        assert np.abs(written.astype(np.float32) - np.rint(expected * 255)).max() <= 1
    else:
        np.testing.assert_allclose(written, expected, atol=1e-5)


def test_an_interrupted_prediction_at_twice_the_size_resumes_to_the_same_result(tmp_path, monkeypatch):
    from unetkit.api import predict_large
    from unetkit.inference import streaming
    from unetkit.safety.partial import unfinished_path

    one_object_checkpoint(tmp_path / "best.pt", 1e9)
    np.save(tmp_path / "slide.npy", np.random.default_rng(6).random((48, 96), dtype=np.float32))
    run = {"model": tmp_path / "best.pt", "image": tmp_path / "slide.npy", "device": "cpu", "strip_width": 32,
           "progress": False}
    reference = predict_large(out=tmp_path / "reference.npy", **run)["prediction"]
    assert reference.scale == 2
    real, calls = streaming._write, {"n": 0}

    def dies_in_the_third_strip(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:  # a strip of 96 rows at 2x takes two bands of a 64 px tile plan
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "_write", dies_in_the_third_strip)
    with pytest.raises(KeyboardInterrupt):
        predict_large(out=tmp_path / "probs.npy", **run)
    assert unfinished_path(tmp_path / "probs.npy").exists() and not (tmp_path / "probs.npy").exists()
    monkeypatch.setattr(streaming, "_write", real)
    done = []
    original = streaming.predict_streaming
    monkeypatch.setattr(streaming, "predict_streaming",
                        lambda *a, **k: done.append(sorted(k["done_strips"])) or original(*a, **k))
    decided = []
    decide = streaming.small_object_scale
    monkeypatch.setattr(streaming, "small_object_scale", lambda *a, **k: decided.append(1) or decide(*a, **k))
    resumed = predict_large(out=tmp_path / "probs.npy", resume=True, **run)["prediction"]
    assert done == [[0, 1]]  # the strips finished before the interruption are not predicted again
    assert decided == [] and resumed.scale == 2  # nor is the decision made again: the run's scale is kept
    np.testing.assert_array_equal(np.load(tmp_path / "probs.npy"), np.load(tmp_path / "reference.npy"))


@pytest.mark.parametrize(("area", "streamed", "suffix"), [(1.0, False, ".npy"), (1.0, False, ".tif"),
                                                           (1.0, False, ".ome.zarr"), (0.0, True, ".npy")])
def test_an_image_decided_whole_at_1x_is_predicted_once(area, streamed, suffix, tmp_path, monkeypatch):
    import tifffile

    from unetkit.api import predict_large
    from unetkit.inference import streaming
    from unetkit.inference.predictor import Predictor

    # the rule on (limit 1 px: the one whole-image object stays at 1x) or off (area 0: no decision at all)
    model, config = one_object_checkpoint(tmp_path / "best.pt", area)
    image = (noise((70, 90), seed=4)[0] * 80).astype(np.uint8)
    np.save(tmp_path / "slide.npy", image)
    passes = []
    original = streaming.predict_streaming
    monkeypatch.setattr(streaming, "predict_streaming", lambda *a, **k: passes.append("stream") or original(*a, **k))
    single = Predictor.single_pass
    monkeypatch.setattr(Predictor, "single_pass",
                        lambda self, a, progress=False: passes.append("whole") or single(self, a, progress))
    out = tmp_path / f"probs{suffix}"
    done = predict_large(tmp_path / "best.pt", tmp_path / "slide.npy", out, device="cpu", strip_width=33,
                         progress=False)["prediction"]
    assert passes == (["stream"] if streamed else ["whole"])  # never the network over the image twice
    assert done.scale == 1 and 0 < done.tiles <= done.tiles_predicted  # strip edges repeat tiles when streamed
    assert streamed or done.tiles == done.tiles_predicted
    predictor = Predictor(model, config)
    if suffix == ".ome.zarr":  # level 0 of the pyramid
        import zarr

        written = np.asarray(zarr.open_array(str(out / "0"), mode="r"))
    else:
        written = np.load(out) if suffix == ".npy" else tifffile.imread(out)
    np.testing.assert_allclose(written, single(predictor, predictor.prepare(image)), atol=1e-5)
