"""An instances run ends with its post-processing tuned on training images, stored in its checkpoints."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

import unetkit
from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.data.splits import SplitData
from unetkit.data.synthetic import write_synthetic_dataset
from unetkit.errors import InputError
from unetkit.inference.object_filter import filter_for, object_features, object_scores
from unetkit.inference.postprocess import DEFAULT_GRID, postprocess, tune_postprocess
from unetkit.inference.predictor import Predictor
from unetkit.metrics.instances import instance_scores
from unetkit.tasks import get_task
from unetkit.training.finalize import MAX_SIDE, tune_for_model, tuning_set
from unetkit.training.loop import fit

# deliberately bad: no grid value, and min_size 500 removes every synthetic nucleus of a 64 px image
BAD = {"postprocess.threshold": 0.95, "postprocess.seed_threshold": 0.99, "postprocess.min_size": 500}
TINY = {"model.depth": 3, "data.patch_size": 64, "data.samples_per_epoch": 32, "train.batch_size": 8,
        "inference.tile_size": 64, "train.overlays": 0, "train.lr": 5e-3,
        "postprocess.tune_min_objects": 0}  # these tiny sets hold a few dozen nuclei: tune on them all the same


@pytest.fixture(scope="module")
def nuclei(tmp_path_factory):
    root = tmp_path_factory.mktemp("nuclei")
    write_synthetic_dataset(root / "train", n_images=4, seed=7, shape=(64, 64))
    write_synthetic_dataset(root / "val", n_images=2, seed=8, shape=(64, 64))
    return root


def _postprocess(path):
    stored = ckpt.config_of(ckpt.load_checkpoint(path)).postprocess
    return {key: getattr(stored, key) for key in DEFAULT_GRID}


def _tuning_crops(run, train):
    """(config, model) of ``run``'s last.pt and the (images, truths) its end-of-run tuning drew from ``train``."""
    config = ckpt.config_of(ckpt.load_checkpoint(run / "last.pt"))
    task = get_task(config)
    split = task.build_split(task.find_samples(train, config), config, "tuning", with_weights=False)
    images, truths = tuning_set(split, config.postprocess.tune_images, 2)
    return config, ckpt.load_model(run / "last.pt")[0], images, truths


def test_training_stores_tuned_postprocessing_and_a_cpu_width(nuclei, tmp_path, capsys):
    run = tmp_path / "run"
    result = unetkit.train(nuclei / "train", run, "instances", val=nuclei / "val", epochs=6, device="cpu",
                           progress=False, **TINY, **BAD)  # model.base_channels not chosen: a CPU-sized net
    out = capsys.readouterr().out
    assert "CPU training: model.base_channels=16" in out and "post-processing tuned on 4 training images" in out
    assert "last.pt on the 2 validation images with the tuned post-processing: val_dsb_score" in out
    last = _postprocess(run / "last.pt")
    for path in (run / "last.pt", run / "best.pt"):
        values = _postprocess(path)
        assert all(values[key] in DEFAULT_GRID[key] for key in values), values  # the grid's winner ...
        assert all(values[key] != BAD[f"postprocess.{key}"] for key in values)  # ... not the start
        assert ckpt.config_of(ckpt.load_checkpoint(path)).model.base_channels == 16  # predict rebuilds it
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["base_channels"] == 16
    # config.yaml stays the config the epochs validated with (a run repeated from it chose its best.pt on the tuned
    # values and differed); the tuned ones are in last.pt and summary.json, the trained ones kept in last.pt too
    bad = {key[12:]: value for key, value in BAD.items()}
    assert {key: saved["postprocess"][key] for key in DEFAULT_GRID} == bad
    trained = ckpt.trained_config(ckpt.load_checkpoint(run / "last.pt")).postprocess
    assert {key: getattr(trained, key) for key in DEFAULT_GRID} == bad
    assert {key: json.loads((run / "summary.json").read_text())["postprocess_tuned"][key] for key in DEFAULT_GRID} \
        == last
    # the stored values are what tuning last.pt's weights on the drawn training images gives
    config, model, images, truths = _tuning_crops(run, nuclei / "train")
    values, score, _ = tune_for_model(model, config, torch.device("cpu"), images, truths, "three-class")
    assert values == last
    predictor = Predictor(model, config, "cpu")  # and they beat the bad start on those images
    probs = [predictor.output(image) for image in images]
    start = tune_postprocess(probs, truths, "three-class", {k[12:]: [v] for k, v in BAD.items()})[1][0]["score"]
    assert score > start, (score, start)
    # summary.json's tuned validation score is last.pt with its stored post-processing on the validation images
    task = get_task(config)
    val = task.build_split(task.find_samples(nuclei / "val", config), config, "validation", with_weights=False)
    summary = json.loads((run / "summary.json").read_text())
    rescored = np.mean([instance_scores(truth, postprocess(predictor.output(image), config.postprocess,
                                                           "three-class")).dsb_score
                        for image, truth in zip(val.images, val.labels, strict=True)])
    assert summary["val_dsb_score_tuned"] == pytest.approx(rescored, abs=1e-4)  # stored rounded to 4 places
    assert result.tuned_scores == {key: summary[key] for key in ("val_dsb_score_tuned", "val_ap50_tuned")}
    # the object filter stored is the one fitted on the same crops for the tuned values
    filtered, fit = filter_for(probs, truths, config.postprocess, "three-class")
    assert fit.scores[0.0] == pytest.approx(score)  # the filter's "keep all" is the tuned post-processing
    stored = config.postprocess
    assert stored.min_object_score == filtered["min_object_score"]
    # the run predicted the crops with its in-memory network, here the checkpoint's: outputs equal up to float
    # rounding, so the two fits give every object the same score far within 1e-3 (a probability)
    for output in probs:
        labels = postprocess(output, dataclasses.replace(stored, min_object_score=0.0), "three-class")
        features = object_features(output, labels)
        if len(features) and filtered["object_weights"]:
            assert object_scores(features, stored.object_weights) == pytest.approx(
                object_scores(features, filtered["object_weights"]), abs=1e-3)


def test_the_off_switch_keeps_the_configured_values(nuclei, tmp_path, capsys):
    config = apply_overrides(RunConfig(), {**TINY, **BAD, "task": "instances", "model.base_channels": 8,
                                           "train.epochs": 1, "postprocess.tune_after_training": False})
    fit(config, nuclei / "train", tmp_path / "run", nuclei / "val", progress=False)
    assert "post-processing tuned" not in capsys.readouterr().out
    for name in ("last.pt", "best.pt"):
        assert _postprocess(tmp_path / "run" / name) == {key[12:]: value for key, value in BAD.items()}


def test_tuning_images_are_a_seeded_draw_of_centre_crops():
    rng = np.random.default_rng(0)
    sizes = [(600, 700), (40, 50), (520, 30)]
    labels = [rng.integers(0, 5, size).astype(np.int32) for size in sizes]
    split = SplitData(names=["a", "b", "c"], images=[np.stack([lab, -lab]).astype(np.float32) for lab in labels],
                      labels=labels)
    images, truths = tuning_set(split, 24, 2)
    assert len(images) == 3 and tuning_set(split, 2, 2)[1][0].shape == tuning_set(split, 2, 2)[1][0].shape
    side = MAX_SIDE[2]
    crops = sorted(truth.shape for truth in truths)
    assert crops == [(40, 50), (side, 30), (side, side)]
    for image, truth in zip(images, truths, strict=True):
        assert image.shape == (2, *truth.shape) and np.array_equal(image[0], truth)  # cropped alike
    big = next(t for t in truths if t.shape == (side, side))
    assert np.array_equal(big, labels[0][44:44 + side, 94:94 + side])  # the centre


RANGE = r"an integer in \[1, 1000\]"


@pytest.mark.parametrize(("value", "expected"), [(0, RANGE), (1001, RANGE), (2.5, "expected int"),
                                               (True, "expected int")])
def test_tune_images_outside_its_range_is_refused_by_name(value, expected):
    with pytest.raises(InputError, match=rf"postprocess.tune_images={value!r}: .*{expected}"):
        apply_overrides(RunConfig(), {"postprocess.tune_images": value})


def test_too_few_truth_objects_keep_the_configured_values(nuclei, tmp_path, capsys):
    run = tmp_path / "run"
    unetkit.train(nuclei / "train", run, "instances", val=nuclei / "val", epochs=2, device="cpu", progress=False,
                  **{**TINY, **BAD, "postprocess.tune_min_objects": 10_000})
    out = capsys.readouterr().out
    assert "the grid kept as configured" in out and "fewer than postprocess.tune_min_objects=10000" in out
    assert _postprocess(run / "last.pt") == {key[12:]: value for key, value in BAD.items()}
    # tune_for_model scores them as they are: the same number as the one-point grid of the configured values
    config, model, images, truths = _tuning_crops(run, nuclei / "train")
    values, score, start = tune_for_model(model, config, torch.device("cpu"), images, truths, "three-class")
    probs = [Predictor(model, config, "cpu").output(image) for image in images]
    expected = tune_postprocess(probs, truths, "three-class", {k[12:]: [v] for k, v in BAD.items()})[1][0]["score"]
    assert values == _postprocess(run / "last.pt") and score == start == pytest.approx(expected)
