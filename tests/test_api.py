"""The public Python API: load / predict / train / evaluate, and that every prediction path agrees."""

import inspect

import numpy as np
import pytest
import tifffile
import torch

import unetkit
from unetkit.checkpoint import save_checkpoint
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.io import normalize_percentile
from unetkit.errors import InputError
from unetkit.models.registry import build_model

TINY = {"model.depth": 3, "model.base_channels": 4, "inference.tile_size": 32, "inference.batch_size": 3}


def _checkpoint(path, task, **values):
    """An untrained but fixed (seeded) checkpoint in today's format: config + weights."""
    config = apply_overrides(RunConfig(), {"task": task, **TINY, **values})
    torch.manual_seed(0)
    model = build_model(config.model)
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(path, {"config": to_dict(config), "model": model.state_dict()})


def _image(shape=(70, 90), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * 3000 + 200).astype(np.uint16)


def _float32_tolerance(values):
    # The paths feed bit-identical inputs; stitching sums <= 4 overlapping tiles per pixel (2D) in float32,
    # so the outputs may differ by a few roundings of the largest value: 16 eps of it is a safe bound.
    return 16 * np.finfo(np.float32).eps * float(np.abs(values).max())


def test_regression_checkpoint_gives_the_same_values_through_predict_predict_large_and_the_api(tmp_path):
    checkpoint = _checkpoint(tmp_path / "rg.pt", "regression", **{
        "model.out_channels": 1, "data.target_offset": [100.0], "data.target_scale": [1000.0]})
    image = _image()
    tifffile.imwrite(tmp_path / "img.tif", image)

    assert main(["predict", "--model", str(checkpoint), str(tmp_path / "img.tif"), "--out", str(tmp_path / "pred"),
                 "--device", "cpu", "--quiet"]) == 0
    from_predict = tifffile.imread(tmp_path / "pred" / "predictions" / "img.tif")
    assert main(["predict-large", str(tmp_path / "img.tif"), "--model", str(checkpoint), "--out",
                 str(tmp_path / "large.npy"), "--device", "cpu", "--quiet"]) == 0
    from_large = np.load(tmp_path / "large.npy")[0]
    from_api = unetkit.load(checkpoint, device="cpu").predict(image).values[0]

    assert from_predict.shape == from_large.shape == from_api.shape == image.shape
    # values in the target's units (offset 100, scale 1000), not softmaxed probabilities in [0, 1]
    assert from_large.max() - from_large.min() > 1.0
    tolerance = _float32_tolerance(from_predict)
    np.testing.assert_allclose(from_large, from_predict, rtol=0, atol=tolerance)
    np.testing.assert_allclose(from_api, from_predict, rtol=0, atol=tolerance)


def test_predict_large_refuses_uint8_storage_for_regression_values(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path / "rg.pt", "regression", **{
        "model.out_channels": 1, "data.target_offset": [0.0], "data.target_scale": [1.0]})
    np.save(tmp_path / "img.npy", _image((40, 40)))
    assert main(["predict-large", str(tmp_path / "img.npy"), "--model", str(checkpoint), "--out",
                 str(tmp_path / "o.npy"), "--dtype", "uint8", "--device", "cpu", "--quiet"]) == 2
    assert "use --dtype float32" in capsys.readouterr().err


def test_api_normalises_like_the_cli_so_raw_and_rescaled_images_predict_alike(tmp_path):
    checkpoint = _checkpoint(tmp_path / "b.pt", "binary")
    image = (_image() // 16).astype(np.uint8)  # a raw 8-bit image, as read from a PNG
    from unetkit.data.io import write_png

    write_png(tmp_path / "img.png", image)
    assert main(["predict", "--model", str(checkpoint), str(tmp_path / "img.png"), "--out", str(tmp_path / "pred"),
                 "--device", "cpu", "--quiet"]) == 0
    cli = tifffile.imread(tmp_path / "pred" / "probabilities" / "img.tif")
    model = unetkit.load(checkpoint, device="cpu")
    result = model.predict(image)
    np.testing.assert_allclose(result.foreground, cli, rtol=0, atol=_float32_tolerance(cli))
    assert result.probabilities.shape == (2, *image.shape) and result.mask.dtype == bool
    np.testing.assert_array_equal(result.mask, result.foreground > 0.5)
    # percentile normalisation inside: an affine change of the gray values changes nothing
    rescaled = model.predict(image.astype(np.float32) * 3.5 + 40.0)
    np.testing.assert_allclose(rescaled.probabilities, result.probabilities, atol=1e-4)
    # a colour image is (H, W, 3), averaged for this gray model; three planes first are not colours (below)
    rgb = np.stack([image] * 3, axis=-1)
    assert model.predict(rgb).probabilities.shape == (2, *image.shape)


def test_gray_with_a_trailing_axis_and_lists_predict_as_the_image_and_odd_arrays_are_named(tmp_path):
    checkpoint = _checkpoint(tmp_path / "b.pt", "binary")
    model = unetkit.load(checkpoint, device="cpu")
    image = (_image((40, 48)) // 16).astype(np.uint8)
    expected = model.predict(image).probabilities
    # (H, W, 1), as many readers give gray images: one channel last, not 40 channels of a 48 x 1 image
    np.testing.assert_array_equal(model.predict(image[..., None]).probabilities, expected)
    # nested lists: int64, normalised in float64, so the network input differs from the uint8 one's float32
    # arithmetic by float32 rounding (a relative 6e-8); the outputs by as little
    np.testing.assert_allclose(model.predict(image.tolist()).probabilities, expected, rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="no pixels"):
        model.predict(np.zeros((0, 48)))
    with pytest.raises(InputError, match=r"complex pixel values.*np\.abs"):
        model.predict(image.astype(np.complex64))  # a float32 cast would drop the imaginary part unsaid


class LazyArray:
    """A minimal zarr/dask-like array: shape, dtype, ndim and box reads only (no numpy conversion)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


def test_lazy_arrays_are_read_tile_by_tile_and_predict_like_numpy(tmp_path):
    checkpoint = _checkpoint(tmp_path / "b.pt", "instances", **{"model.out_channels": 3})
    image = _image((96, 80))
    model = unetkit.load(checkpoint, device="cpu")
    lazy = LazyArray(image)
    result = model.predict(lazy)
    assert lazy.reads > 4  # percentiles, then one read per tile
    expected = model.predict(image)
    np.testing.assert_allclose(result.probabilities, expected.probabilities, rtol=0,
                               atol=_float32_tolerance(expected.probabilities))
    assert result.labels is not None and result.labels.shape == image.shape  # instances models give labels


def test_instances_are_refused_for_regression_and_multiclass(tmp_path):
    regression = _checkpoint(tmp_path / "rg.pt", "regression", **{
        "model.out_channels": 1, "data.target_offset": [0.0], "data.target_scale": [1.0]})
    multiclass = _checkpoint(tmp_path / "mc.pt", "multiclass", **{
        "model.out_channels": 3, "data.class_names": ["background", "a", "b"]})
    for checkpoint in (regression, multiclass):
        with pytest.raises(InputError, match="instance labels come from binary or instances models"):
            unetkit.load(checkpoint, device="cpu").predict(_image((40, 40)), instances=True)
    result = unetkit.load(multiclass, device="cpu").predict(_image((40, 40)))
    assert result.mask.shape == (40, 40) and int(result.mask.max()) < 3 and result.extra["class_names"][1] == "a"


def test_train_from_in_memory_pairs_then_load_predict_evaluate(tmp_path):
    from unetkit.data.synthetic import make_nuclei_image

    pairs = [make_nuclei_image(np.random.default_rng(seed), (64, 64)) for seed in range(3)]
    run = unetkit.train(pairs, out=tmp_path / "run", task="binary", epochs=1, progress=False,
                        **{"model.depth": 3, "model.base_channels": 4, "data.patch_size": 32,
                           "data.samples_per_epoch": 8, "train.batch_size": 4, "inference.tile_size": 64})
    assert (run.run_dir / "best.pt").is_file() and run.best_epoch == 1
    assert sorted(p.name for p in (tmp_path / "run" / "data" / "train" / "masks").iterdir())[0] == "0000.tif"
    model = unetkit.load(run.run_dir, device="cpu")
    assert model.task.name == "binary" and model.config.model.base_channels == 4
    image, mask = pairs[0]
    assert model.predict(image).mask.shape == mask.shape

    unetkit.predict_files(run.run_dir, [tmp_path / "run" / "data" / "train" / "images"], tmp_path / "pred",
                          device="cpu", progress=False)
    scores = unetkit.evaluate(truth=tmp_path / "run" / "data" / "train" / "masks", pred=tmp_path / "pred" / "masks",
                              task="binary", out=tmp_path / "eval")
    assert scores.summary["images"] == 3 and 0.0 <= scores.summary["dice"] <= 1.0
    assert scores.written == [tmp_path / "eval" / "evaluation_binary.csv"]
    noted = unetkit.evaluate(truth=tmp_path / "run" / "data" / "train" / "masks", pred=tmp_path / "pred" / "masks",
                             task="binary", threshold=0.3)  # masks, not probabilities: a note says so
    assert any("--threshold 0.3 applies to probability maps" in note for note in noted.notes)
    with pytest.raises(InputError, match=r"num_classes \(--num-classes\) applies to another task"):
        unetkit.evaluate(tmp_path / "run" / "data" / "train" / "masks", tmp_path / "pred" / "masks", num_classes=3)
    with pytest.raises(InputError, match="unknown evaluation option bogus; the binary task takes: threshold"):
        unetkit.evaluate(tmp_path / "run" / "data" / "train" / "masks", tmp_path / "pred" / "masks", bogus=1)


def test_training_and_loading_leave_the_callers_random_streams_and_numpy_scalars_are_values(tmp_path):
    """train() reseeded Python's, numpy's and torch's generators (every later draw was the seed-0 one); load()
    drew the discarded initial weights from torch's; numpy scalars (np.arange grids) ended in TypeErrors."""
    import random

    from unetkit.data.synthetic import make_nuclei_image

    def seed():
        random.seed(7), np.random.seed(7), torch.manual_seed(7)

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed()
    expected = draws()
    seed()
    pairs = [make_nuclei_image(np.random.default_rng(seed), (48, 48)) for seed in range(2)]
    run = unetkit.train(pairs, out=tmp_path / "run", epochs=np.int64(1), progress=False,
                        **{"model.depth": 2, "model.base_channels": np.int64(4), "data.patch_size": 32,
                           "data.samples_per_epoch": 8, "train.batch_size": 4, "inference.tile_size": 48})
    model = unetkit.load(run.run_dir, device="cpu", tile_size=np.int64(48), tta=np.bool_(False))
    assert draws() == expected
    assert model.config.model.base_channels == 4 and model.config.inference.tile_size == 48


def test_numpy_values_and_flags_are_taken_on_every_api_road(tmp_path):
    """After train/load took numpy scalars, predict_files still failed on them (prediction.json), evaluate on an
    np.float64 threshold, config lists on np.array; instances="no" wrote labels; a bfloat16 tensor was a TypeError."""
    from unetkit.data.io import write_png

    checkpoint = _checkpoint(tmp_path / "b.pt", "binary")
    image = _image((40, 48))
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a.tif", image)
    write_png(tmp_path / "truth" / "a.png", (image > 1500).astype(np.uint8) * 255)
    rows = unetkit.predict_files(checkpoint, tmp_path / "in", tmp_path / "pred", device="cpu", progress=False,
                                 tile_size=np.int64(32), tta=np.bool_(False))
    assert len(rows) == 1 and (tmp_path / "pred" / "prediction.json").is_file()
    with pytest.raises(InputError, match="instances='no': give True or False"):
        unetkit.predict_files(checkpoint, tmp_path / "in", tmp_path / "pred2", instances="no")
    for call in (lambda: unetkit.load(checkpoint, tta="no"),
                 lambda: unetkit.predict_large(checkpoint, tmp_path / "in" / "a.tif", tmp_path / "p.npy", tta="no")):
        with pytest.raises(InputError, match="tta='no': give True or False"):  # was read as False, unsaid
            call()
    scores = unetkit.evaluate(tmp_path / "truth", tmp_path / "pred" / "masks", threshold=np.float64(0.5))
    assert scores.summary["images"] == 1
    assert apply_overrides(RunConfig(), {"data.patch_shape": np.array([64, 64])}).data.patch_shape == [64, 64]
    model = unetkit.load(checkpoint, device="cpu")
    tensor = torch.from_numpy(image.astype(np.float32)).to(torch.bfloat16)
    np.testing.assert_array_equal(model.predict(tensor).probabilities, model.predict(tensor.float()).probabilities)


def test_arrays_not_files_tensors_and_planes_are_taken_or_refused_by_name(tmp_path):
    """Three planes on the first axis of an array were averaged into a gray model's channel (files of three
    non-colour planes are refused); a torch tensor, a file name and instances="no" ended in tracebacks or in
    "no pixels (shape ())" and instances on; load(None) in pathlib's TypeError."""
    model = unetkit.load(_checkpoint(tmp_path / "b.pt", "binary"), device="cpu")
    gray = _image((40, 48))
    # (H, W, 3) is the RGB of image readers: its normalised colours are averaged
    rgb = np.stack([gray, gray // 2, gray // 3], axis=-1)
    colours = normalize_percentile(np.moveaxis(rgb, -1, 0), model.config.data.normalize_low,
                                   model.config.data.normalize_high)
    np.testing.assert_array_equal(model.prepare(rgb), colours.mean(axis=0, keepdims=True))
    expected = model.predict(rgb).probabilities
    np.save(tmp_path / "rgb.npy", rgb)  # the same bytes as a file: averaged by predict-large too
    unetkit.predict_large(tmp_path / "b.pt", tmp_path / "rgb.npy", tmp_path / "p.npy", device="cpu", progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=0, atol=_float32_tolerance(expected))
    planes = np.stack([gray, gray // 2, gray // 3])
    for array in (planes, LazyArray(planes)):
        with pytest.raises(InputError, match="first axis of an array"):
            model.predict(array)
    as_float = gray.astype(np.float32)
    np.testing.assert_array_equal(model.predict(torch.from_numpy(as_float)).probabilities,
                                  model.predict(as_float).probabilities)
    with pytest.raises(InputError, match="not a file name"):
        model.predict(str(tmp_path / "b.pt"))
    with pytest.raises(InputError, match="give True or False"):
        model.predict(gray, instances="no")
    with pytest.raises(InputError, match="expected a file or folder path"):
        unetkit.load(None)
    with pytest.raises(InputError, match="expected a file or folder path.*predict arrays with"):
        unetkit.predict_large(tmp_path / "b.pt", gray, tmp_path / "o.npy")


def test_an_opaque_alpha_channel_of_an_array_is_left_out_as_files_leave_it(tmp_path):
    """np.asarray(Image.open(png)) gives DSB images as RGBA and EPFL ones as gray + alpha: the API refused them
    ("image has 4 channels") where predict reading the same files drops the alpha."""
    gray = (_image((40, 48)) // 16).astype(np.uint8)
    rgb = np.stack([gray, gray // 2, 255 - gray], axis=-1)
    opaque = np.full(gray.shape + (1,), 255, np.uint8)
    colour = unetkit.load(_checkpoint(tmp_path / "c.pt", "binary", **{"model.in_channels": 3}), device="cpu")
    np.testing.assert_array_equal(colour.predict(np.concatenate([rgb, opaque], -1)).probabilities,
                                  colour.predict(rgb).probabilities)
    model = unetkit.load(_checkpoint(tmp_path / "b.pt", "binary"), device="cpu")
    np.testing.assert_array_equal(model.predict(np.concatenate([gray[..., None], opaque], -1)).probabilities,
                                  model.predict(gray).probabilities)
    # RGBA into a gray model: alpha left out, the colours averaged as for (H, W, 3); a memory map alike
    rgba = np.concatenate([rgb, opaque], -1)
    np.save(tmp_path / "rgba.npy", rgba)
    mapped = np.load(tmp_path / "rgba.npy", mmap_mode="r")
    for array in (rgba, mapped):
        np.testing.assert_allclose(model.predict(array).probabilities, model.predict(rgb).probabilities, rtol=0,
                                   atol=_float32_tolerance(model.predict(rgb).probabilities))
    for fourth in (gray[..., None], np.zeros_like(opaque)):  # content, or an empty stain: a channel, not alpha
        with pytest.raises(InputError, match="image has 4 channels but the model expects 3"):
            colour.predict(np.concatenate([rgb, fourth], -1))
    two = unetkit.load(_checkpoint(tmp_path / "two.pt", "binary", **{"model.in_channels": 2}), device="cpu")
    with pytest.raises(InputError, match="image has 4 channels but the model expects 2"):  # said as given
        two.predict(rgba)


def test_home_folder_paths_are_expanded_and_input_generators_read_once(tmp_path, monkeypatch):
    """predict_files(..., "~/x") made a folder named "~" in the working folder; a generator of inputs was used up
    by the output checks, so no image was found."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    checkpoint = _checkpoint(tmp_path / "home" / "b.pt", "binary")
    tifffile.imwrite(tmp_path / "a.tif", _image((40, 48)))
    rows = unetkit.predict_files("~/b.pt", (path for path in [tmp_path / "a.tif"]), "~/pred", device="cpu",
                                 progress=False)
    assert len(rows) == 1 and (tmp_path / "home" / "pred" / "masks" / "a.png").is_file()
    assert not (tmp_path / "~").exists() and checkpoint.is_file()


def test_in_memory_pairs_with_wrong_masks_are_named_by_pair(tmp_path):
    """Wrong masks of in-memory pairs were named by the TIFFs written for them (run/data/train/masks/0000.tif) and
    CLI flags; an (H, W, 1) mask beside an (H, W, 3) image was "of another size"."""
    from unetkit.data.synthetic import make_nuclei_image

    image, mask = make_nuclei_image(np.random.default_rng(0), (48, 48))
    rgb = np.stack([image] * 3, axis=-1)
    cases = [(mask.astype(np.float32) * 0.5, "pair 1: label image holds non-integer values"),
             (mask.astype(np.int32) - 1, r"pair 1: label values range -1\.\."),
             (mask.astype(np.int64) * 2**40, r"pair 1: label values range 0\.\..* below 2\*\*31")]
    for wrong, told in cases:
        with pytest.raises(InputError, match=told):  # pair 0, (H, W, 3) with an (H, W, 1) mask, passed
            unetkit.train([(rgb, mask[..., None]), (image, wrong)], out=tmp_path / "run", epochs=1, progress=False)
    assert not (tmp_path / "run" / "data" / "train").exists()


def test_in_memory_pairs_of_a_failed_call_are_replaced_and_channels_last_images_are_colour(tmp_path):
    """A call refused after its pairs were written left them behind, and the next call trained on them beside its
    own; (H, W, 3) images were written as 3-page TIFFs and refused as a stack of pages."""
    from unetkit.data.synthetic import make_nuclei_image

    pairs = [make_nuclei_image(np.random.default_rng(seed), (48, 48)) for seed in range(4)]
    settings = {"model.depth": 2, "model.base_channels": 4, "data.patch_size": 32, "data.samples_per_epoch": 8,
                "train.batch_size": 4, "inference.tile_size": 48}
    bad = [(np.full((48, 48), np.nan, np.float32), pairs[0][1]), *pairs]
    with pytest.raises(InputError, match="NaN"):
        unetkit.train(bad, out=tmp_path / "run", epochs=1, progress=False, **settings)
    assert len(list((tmp_path / "run" / "data" / "train" / "images").iterdir())) == 5
    colour = [(np.stack([image, image // 2, 255 - image], axis=-1), mask) for image, mask in pairs[:2]]
    run = unetkit.train(colour, out=tmp_path / "run", epochs=1, progress=False, **settings)
    assert sorted(p.name for p in (tmp_path / "run" / "data" / "train" / "images").iterdir()) == ["0000.tif",
                                                                                                   "0001.tif"]
    assert unetkit.load(run.run_dir, device="cpu").config.model.in_channels == 3

    (tmp_path / "other" / "data" / "train").mkdir(parents=True)  # a folder of the user's, not of unetkit.train
    with pytest.raises(InputError, match=r"holds files that no unetkit run wrote \(e.g. data\)"):
        unetkit.train(pairs, out=tmp_path / "other", epochs=1, progress=False, **settings)


def test_array_channels_are_picked_by_index_and_two_trailing_channels_are_channels(tmp_path):
    """An (H, W, 2) array was read as 768 channels, and ``load(..., channels=[1])`` was ignored for arrays; an
    index outside the array was accepted."""
    ckpt = _checkpoint(tmp_path / "gray.pt", "binary")
    first, second = _image((48, 64), seed=1), _image((48, 64), seed=2)
    pair = np.stack([first, second], axis=-1)  # (H, W, 2): two stains, or gray and alpha
    with pytest.raises(InputError, match="image has 2 channels but the model expects 1"):
        unetkit.load(ckpt, device="cpu").predict(pair)
    picked = unetkit.load(ckpt, device="cpu", channels=[1])
    expected = unetkit.load(ckpt, device="cpu").predict(second).probabilities
    np.testing.assert_array_equal(picked.predict(pair).probabilities, expected)
    lazy = np.lib.format.open_memmap(tmp_path / "pair.npy", mode="w+", dtype=pair.dtype, shape=pair.shape)
    lazy[:] = pair
    np.testing.assert_allclose(picked.predict(np.load(tmp_path / "pair.npy", mmap_mode="r")).probabilities, expected,
                               atol=1e-5)
    with pytest.raises(InputError, match="channel 2 of an array of 2 channel"):
        unetkit.load(ckpt, device="cpu", channels=[2]).predict(pair)
    with pytest.raises(InputError, match="are names, and an array has none"):
        unetkit.load(ckpt, device="cpu", channels=["DAPI"]).predict(pair)


def test_a_thin_colour_strip_is_read_with_its_trailing_channels_for_a_colour_model(tmp_path):
    """An (H <= 4, W, 3) strip was read channels-first (H channels of a W x 3 image) and refused for a colour
    model; where both ends are short, the one holding the model's channel count is the channel axis."""
    ckpt = _checkpoint(tmp_path / "colour.pt", "binary", **{"model.in_channels": 3})
    strip = np.stack([_image((2, 96), seed=s) for s in range(3)], axis=-1)  # (2, 96, 3)
    predictor = unetkit.load(ckpt, device="cpu")
    result = predictor.predict(strip)
    assert result.probabilities.shape[1:] == (2, 96)
    expected = predictor.predict(np.ascontiguousarray(np.moveaxis(strip, -1, 0))).probabilities
    np.testing.assert_array_equal(result.probabilities, expected)


def test_channels_last_arrays_of_a_multichannel_model_are_read_as_its_channels(tmp_path):
    """(H, W, 5) was read as 64 channels of a 64 x 5 image for a 5-channel model: only 1-4 trailing channels were
    taken as channels."""
    ckpt = _checkpoint(tmp_path / "five.pt", "binary", **{"model.in_channels": 5})
    stains = np.stack([_image((40, 56), seed=s) for s in range(5)], axis=-1)
    predictor = unetkit.load(ckpt, device="cpu")
    expected = predictor.predict(np.ascontiguousarray(np.moveaxis(stains, -1, 0))).probabilities
    np.testing.assert_array_equal(predictor.predict(stains).probabilities, expected)
    np.save(tmp_path / "stains.npy", stains)  # predict-large reads the file's trailing axis as the same channels
    unetkit.predict_large(ckpt, tmp_path / "stains.npy", tmp_path / "probs.npy", device="cpu", progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected, atol=1e-5)


def test_in_memory_pairs_of_five_channels_train_a_five_channel_model(tmp_path):
    """Pairs of (H, W, 5) images were written as 5-page TIFFs and refused as a stack of pages, naming a file the user
    never made."""
    from unetkit.data.synthetic import make_nuclei_image

    pairs = []
    for seed in range(2):
        image, mask = make_nuclei_image(np.random.default_rng(seed), (48, 48))
        pairs.append((np.stack([image * (k + 1) // 5 for k in range(5)], axis=-1), mask))
    run = unetkit.train(pairs, out=tmp_path / "run", epochs=1, progress=False, **{
        "model.depth": 2, "model.base_channels": 4, "data.patch_size": 32, "data.samples_per_epoch": 8,
        "train.batch_size": 4, "inference.tile_size": 32})
    predictor = unetkit.load(run.run_dir, device="cpu")
    assert predictor.config.model.in_channels == 5
    assert predictor.predict(pairs[0][0]).mask.shape == (48, 48)


def test_the_public_api_is_documented_and_typed():
    expected = {"Predictor", "Result", "evaluate", "export_model", "load", "predict_files", "predict_large", "train"}
    assert set(unetkit.__all__) == expected
    for name in unetkit.__all__:
        obj = getattr(unetkit, name)
        assert inspect.getdoc(obj) and len(inspect.getdoc(obj)) > 40, name
    for function in (unetkit.load, unetkit.train, unetkit.evaluate):
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty
        assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    assert "Example" in unetkit.load.__doc__ and "normalises" in unetkit.load.__doc__


def test_3d_model_predicts_a_volume_through_the_api_as_the_cli_does(tmp_path):
    checkpoint = _checkpoint(tmp_path / "v.pt", "binary", **{
        "model.name": "unet3d", "model.depth": 2, "inference.tile_shape": [16, 32, 32]})
    volume = _image((12, 40, 36))
    tifffile.imwrite(tmp_path / "vol.tif", volume, imagej=True, metadata={"axes": "ZYX"})
    assert main(["predict", "--model", str(checkpoint), str(tmp_path / "vol.tif"), "--out", str(tmp_path / "pred"),
                 "--device", "cpu", "--quiet"]) == 0
    cli = tifffile.imread(tmp_path / "pred" / "probabilities" / "vol.tif")
    result = unetkit.load(checkpoint, device="cpu").predict(volume)
    assert result.probabilities.shape == (2, 12, 40, 36)
    np.testing.assert_allclose(result.foreground, cli, rtol=0, atol=_float32_tolerance(cli))


def test_api_refuses_outputs_over_inputs_and_a_locked_folder_before_loading_anything(tmp_path):
    import json
    import os
    import socket

    from unetkit.safety.locks import LOCK_NAME

    images = tmp_path / "images"
    images.mkdir()
    missing_model = tmp_path / "no-model.pt"  # never loaded: the output checks come first
    with pytest.raises(InputError, match="holds the input"):
        unetkit.predict_files(missing_model, [images], tmp_path)
    with pytest.raises(InputError, match="holds the input"):
        unetkit.train(images, tmp_path, epochs=1)
    with pytest.raises(InputError, match="is also an input"):
        unetkit.predict_large(missing_model, tmp_path / "slide.npy", tmp_path / "slide.npy")
    with pytest.raises(InputError, match="--halo -1: expected an integer >= 0"):
        unetkit.predict_large(missing_model, tmp_path / "slide.npy", tmp_path / "out.npy", halo=-1)
    out = tmp_path / "predictions"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                             "command": "predict", "started": "now"}))
    with pytest.raises(InputError, match="is in use by `unetkit predict`"):
        unetkit.predict_files(missing_model, [images], out)
    assert (out / LOCK_NAME).exists()  # another process's lock is never removed
