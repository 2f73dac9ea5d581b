"""Images of small objects predicted again at 2x: the helpers by hand, the rule, and the predictor's road."""

import numpy as np
import pytest
import torch

from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.inference.predictor import Predictor
from unetkit.inference.small_objects import block_mean, enlarge, median_object_area, upscale_if_small
from unetkit.models.registry import build_model


def three_class(labels: np.ndarray) -> np.ndarray:
    """Sure three-class probabilities of ``labels``: interior 1 on every object, background 1 elsewhere."""
    probs = np.zeros((3, *labels.shape), dtype=np.float32)
    probs[1] = labels > 0
    probs[0] = labels == 0
    return probs


def dots(shape=(64, 64), side=4, step=12) -> np.ndarray:
    """Squares of ``side`` px every ``step`` px, numbered."""
    labels = np.zeros(shape, dtype=np.int32)
    index = 0
    for top in range(4, shape[0] - side, step):
        for left in range(4, shape[1] - side, step):
            index += 1
            labels[top:top + side, left:left + side] = index
    return labels


def instances_config(area: float) -> RunConfig:
    return apply_overrides(RunConfig(), {
        "task": "instances", "model.out_channels": 3, "model.depth": 2, "model.base_channels": 4,
        "inference.tile_size": 64, "postprocess.min_size": 0, "postprocess.upscale_below_area": area})


def test_the_helpers_by_hand():
    labels = np.zeros((6, 6), dtype=np.int32)
    labels[0, :3], labels[2:5, 2:5], labels[5, 5] = 1, 2, 3  # 3, 9 and 1 px
    assert median_object_area(labels) == 3.0 and median_object_area(np.zeros((4, 4), int)) == 0.0
    output = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    expected = np.array([[3.5, 5.5, 7.5], [15.5, 17.5, 19.5]], dtype=np.float32)  # means of 2x2 blocks
    assert np.array_equal(block_mean(output)[0], expected) and block_mean(output).shape == (2, 2, 3)
    image = np.random.default_rng(0).random((3, 10, 12)).astype(np.float32)
    big = enlarge(image)
    assert big.shape == (3, 20, 24) and big.dtype == np.float32
    assert np.allclose(enlarge(np.full((1, 8, 8), 0.25, np.float32)), 0.25, atol=1e-6)  # flat stays flat
    # pixel centres stay aligned: each 2x2 block of the enlarged image averages back near its pixel
    assert np.abs(block_mean(big) - image).mean() < np.abs(image - image.mean()).mean() / 3


@pytest.mark.parametrize("shape", [(3, 10, 12), (1, 7, 9), (2, 1, 5), (1, 33, 2)])
def test_enlarge_gives_the_values_of_skimages_bicubic_rescale(shape):
    from skimage.transform import rescale

    image = np.random.default_rng(7).random(shape).astype(np.float32)
    image[image > 0.9] = 3.0  # bright outliers: the overshoot is not clipped
    reference = rescale(image, 2, order=3, channel_axis=0, anti_aliasing=False, clip=False)
    # both evaluate the same cubic B-spline in float64; float32 keeps 7 digits of values up to 3
    np.testing.assert_allclose(enlarge(image), reference, atol=1e-6)
    ringing = (enlarge(image) < image.min()) | (enlarge(image) > image.max())
    assert ringing.any()  # the spline rings around the outliers, outside the image's range: kept, not clipped
    with pytest.raises(ValueError, match="factor 2"):
        enlarge(image, 3)


def test_small_objects_are_predicted_again_at_twice_the_size_and_brought_back():
    labels = dots()  # 16 px objects
    image = np.random.default_rng(1).random((1, *labels.shape)).astype(np.float32)
    seen = []

    def predict(enlarged):
        seen.append(enlarged.shape)
        return np.repeat(np.repeat(three_class(labels), 2, axis=1), 2, axis=2) * 0.5  # a recognisable answer

    first = three_class(labels)
    again = upscale_if_small(first, image, instances_config(17), "three-class", predict)
    assert seen == [(1, 128, 128)]
    assert np.allclose(again.probabilities, first * 0.5)  # the 2x answer, block-averaged back to the image's size
    assert again.scale == 2 and again.labels is None  # labels of the first answer do not describe the second
    kept = upscale_if_small(first, image, instances_config(16), "three-class", predict)  # objects not under it
    assert kept.probabilities is first and kept.scale == 1
    assert np.array_equal(kept.labels > 0, labels > 0) and kept.labels.max() == labels.max()  # the sizing labels
    off = upscale_if_small(first, image, instances_config(0), "three-class", predict)  # the rule off
    assert off.probabilities is first and off.scale == 1 and off.labels is None
    assert len(seen) == 1
    empty = three_class(np.zeros_like(labels))
    none = upscale_if_small(empty, image, instances_config(17), "three-class", predict)  # no objects
    assert none.probabilities is empty and none.scale == 1 and not none.labels.any()


def test_the_predictor_takes_the_second_road_only_for_an_instances_model_with_the_rule(monkeypatch):
    labels = dots()
    image = np.random.default_rng(2).random((1, *labels.shape)).astype(np.float32)
    calls = []

    def tiled(self, array, progress=False):
        calls.append(array.shape)
        return three_class(labels if array.shape[-1] == 64 else np.repeat(np.repeat(labels, 2, 0), 2, 1))

    monkeypatch.setattr(Predictor, "single_pass", tiled)
    config = instances_config(100)
    predictor = Predictor(build_model(config.model).eval(), config)
    scaled = predictor.scaled_output(image)
    assert calls == [(1, 64, 64), (1, 128, 128)]
    assert np.array_equal(scaled.probabilities, three_class(labels))  # a sure 2x answer averages back to itself
    assert scaled.scale == 2
    calls.clear()
    binary = apply_overrides(config, {"task": "binary", "model.out_channels": 2})
    binary_predictor = Predictor(build_model(binary.model).eval(), binary)
    assert binary_predictor.scaled_output(image).scale == 1
    assert calls == [(1, 64, 64)]  # binary models: one road
    assert "scale" not in binary_predictor.result(image).extra


def test_a_lazily_read_image_takes_the_second_road_too(tmp_path, monkeypatch):
    """A memmap (or zarr) image was predicted at 1x only: the nuclei model gave 14 objects where the same
    pixels in memory gave 15 (DSB 0.572 against 0.602 on that image)."""
    labels = dots()
    stored = (np.random.default_rng(2).random((*labels.shape, 1)) * 255).astype(np.uint8)
    np.save(tmp_path / "image.npy", stored)
    seen = []

    def tiled(self, array, progress=False):
        seen.append(np.asarray(array[(slice(None),) * 3], np.float32))
        return three_class(labels if array.shape[-1] == 64 else np.repeat(np.repeat(labels, 2, 0), 2, 1))

    monkeypatch.setattr(Predictor, "single_pass", tiled)
    config = instances_config(100)
    predictor = Predictor(build_model(config.model).eval(), config)
    lazy = predictor.result(predictor.prepare(np.load(tmp_path / "image.npy", mmap_mode="r")))
    in_memory = predictor.result(predictor.prepare(stored))
    assert lazy.extra["scale"] == in_memory.extra["scale"] == 2
    assert [a.shape for a in seen] == [(1, 64, 64), (1, 128, 128)] * 2
    np.testing.assert_allclose(seen[1], seen[3], atol=1e-6)  # the same enlarged image either way
    assert np.array_equal(lazy.labels, in_memory.labels)


@pytest.mark.parametrize(("area", "scale", "passes"), [(10.0, 1, 1), (100.0, 2, 2), (0.0, 1, 1)])
def test_an_image_left_at_its_size_is_post_processed_once(area, scale, passes, monkeypatch):
    from unetkit.inference import postprocess as postprocess_module

    labels = dots()  # 16 px objects: over a limit of 10 px, under one of 100 px
    image = np.random.default_rng(5).random((1, *labels.shape)).astype(np.float32)
    monkeypatch.setattr(Predictor, "single_pass", lambda self, array, progress=False: three_class(
        labels if array.shape[-1] == 64 else np.repeat(np.repeat(labels, 2, 0), 2, 1)))
    made = []
    real = postprocess_module.postprocess
    monkeypatch.setattr(postprocess_module, "postprocess", lambda *a, **k: made.append(1) or real(*a, **k))
    config = instances_config(area)
    result = Predictor(build_model(config.model).eval(), config).result(image)
    assert len(made) == passes  # the labels that sized the objects are the result's when the image stays at 1x
    assert result.extra.get("scale", 1) == scale and ("scale" in result.extra) == (area > 0)
    assert np.array_equal(result.labels > 0, labels > 0) and result.labels.max() == labels.max()


def test_tasks_without_instances_refuse_ready_made_labels():
    from unetkit.tasks import get_task

    config = apply_overrides(RunConfig(), {"task": "multiclass", "model.out_channels": 3})
    probs = three_class(dots())
    with pytest.raises(InputError):
        get_task(config).result(probs, config, labels=dots())


def test_the_rule_is_checked_and_off_by_default():
    assert RunConfig().postprocess.upscale_below_area == 0.0
    with pytest.raises(InputError, match="postprocess.upscale_below_area"):
        apply_overrides(RunConfig(), {"postprocess.upscale_below_area": -1})


def test_a_real_network_gives_probabilities_of_the_images_size_on_the_second_road(monkeypatch):
    torch.manual_seed(0)
    # threshold 0: the whole image is one object, under the (huge) limit, so the second road is taken
    config = apply_overrides(instances_config(1e9), {"postprocess.threshold": 0.0, "postprocess.seed_threshold": 0.0})
    predictor = Predictor(build_model(config.model).eval(), config)
    shapes = []
    tiled = Predictor.single_pass
    monkeypatch.setattr(Predictor, "single_pass", lambda self, a, p=False: shapes.append(a.shape) or tiled(self, a, p))
    output = predictor.output(np.random.default_rng(3).random((1, 50, 70)).astype(np.float32))
    assert shapes == [(1, 50, 70), (1, 100, 140)]
    assert output.shape == (3, 50, 70) and np.allclose(output.sum(0), 1, atol=1e-5)


@pytest.mark.parametrize("area", [0.0, 1.0, 1e9])
def test_predict_tells_which_images_were_predicted_again(area, tmp_path, capsys):
    import imageio.v3 as iio

    from unetkit import checkpoint as ckpt
    from unetkit.cli import main
    from unetkit.config import to_dict

    # threshold 0: each image is one object of its whole size, over a limit of 1 px and under one of 1e9
    config = apply_overrides(instances_config(area), {"postprocess.threshold": 0.0, "postprocess.seed_threshold": 0.0})
    torch.manual_seed(0)
    weights = build_model(config.model).state_dict()
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": weights})
    (tmp_path / "images").mkdir()
    for index in range(2):
        image = np.random.default_rng(index).integers(0, 255, (40, 48)).astype(np.uint8)
        iio.imwrite(tmp_path / "images" / f"im{index}.png", image)
    assert main(["predict", "--model", str(tmp_path / "best.pt"), str(tmp_path / "images"),
                 "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "predicted again at 2x" in line]
    if area == 0:
        assert said == []  # the rule off: nothing to tell
    else:
        assert said == [f"{2 if area > 1 else 0} of 2 image(s) had small objects and were predicted again at 2x "
                        "(postprocess.upscale_below_area)"]


def test_the_rule_is_for_2d_instances_models_only():
    from unetkit.inference.small_objects import rule_applies

    assert rule_applies(instances_config(100)) and not rule_applies(instances_config(0))
    assert not rule_applies(apply_overrides(instances_config(100), {"task": "binary", "model.out_channels": 2}))
    assert not rule_applies(apply_overrides(instances_config(100), {"model.name": "unet3d"}))
