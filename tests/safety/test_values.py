"""Issue 15, case 5: every option and config value is checked when the configuration is built,
before any image is read, with one line naming the key, the value and the allowed range."""

from __future__ import annotations

import pytest

from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, from_dict
from unetkit.errors import InputError


@pytest.mark.parametrize("override, expected", [
    ("inference.batch_size=0", "inference.batch_size=0: expected an integer >= 1"),
    ("inference.tile_size=0", "inference.tile_size=0"),
    ("inference.tile_size=3", ">= 16"),
    ("inference.tile_size=-64", "inference.tile_size=-64"),
    ("inference.overlap=1.0", "inference.overlap=1.0: expected a number in [0, 1)"),
    ("inference.overlap=-0.5", "[0, 1)"),
    ("data.patch_size=0", "data.patch_size=0"),
    ("train.epochs=0", "train.epochs=0"),
    ("train.batch_size=0", "train.batch_size=0"),
    ("train.lr=-1", "train.lr=-1.0: expected a number > 0"),
    ("train.lr=.nan", "train.lr=nan"),
    ("model.depth=0", "model.depth=0: expected an integer in [1, 10]"),
    ("model.base_channels=100000", "model.base_channels=100000: expected an integer in [1, 1024]"),
    ("model.padding=full", "model.padding='full': expected one of valid, same"),
    ("train.optimizer=adam", "expected one of adamw, sgd"),
    ("data.nan_policy=ignore", "expected one of error, zero, nearest"),
    ("data.patch_shape=[0, 64]", "data.patch_shape"),
])
def test_bad_values_are_refused_naming_key_value_and_range(override, expected):
    with pytest.raises(InputError) as info:
        apply_overrides(RunConfig(), [override])
    assert expected in str(info.value)


def test_types_from_yaml_files_are_checked():
    with pytest.raises(InputError, match="train.epochs='ten'"):
        from_dict({"train": {"epochs": "ten"}})
    with pytest.raises(InputError, match="train.amp=1"):
        from_dict({"train": {"amp": 1}})
    assert from_dict({"train": {"lr": 1}}).train.lr == 1.0  # an int where a float is expected is fine


def test_defaults_and_recipes_are_valid():
    from unetkit.recipes import resolve_config

    for recipe in ("default", "paper"):
        resolve_config(recipe, None, [])


def _refused(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("options, words", [
    (["--batch", "0"], ("inference.batch_size=0",)),
    (["--batch", "-1"], ("inference.batch_size=-1",)),
    (["--tile", "0"], ("inference.tile_size=0",)),
    (["--tile", "1"], ("inference.tile_size=1", ">= 2")),  # the depth-2 net pools once
    (["--overlap", "1.5"], ("inference.overlap=1.5",)),
])
def test_predict_options_are_checked_before_any_output(dataset, run_dir, tmp_path, capsys, options, words):
    out = tmp_path / "pred"
    _refused(capsys, ["predict", "--model", str(run_dir), str(dataset / "test" / "images"), "--out", str(out),
                      "--quiet", *options], *words)
    assert not out.exists()


def test_train_and_synth_options_are_checked(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    _refused(capsys, ["train", "--data", str(dataset / "train"), "--out", str(out), "--epochs", "0"], "train.epochs=0")
    _refused(capsys, ["train", "--data", str(dataset / "train"), "--out", str(out), "--set", "train.lr=-1"],
             "train.lr=-1")
    assert not out.exists()
    _refused(capsys, ["synth", "--out", str(tmp_path / "s"), "--n-train", "-1"], "--n-train -1")
    assert not (tmp_path / "s").exists()


def test_predict_large_chunk_and_halo_are_refused_before_predicting(run_dir, tmp_path, capsys):
    import numpy as np

    image = tmp_path / "x.npy"
    np.save(image, np.zeros((40, 40), np.float32))
    for option, value in (("--chunk", "0"), ("--halo", "-5"), ("--strip", "0")):
        out = tmp_path / f"p{option}.npy"
        _refused(capsys, ["predict-large", str(image), "--model", str(run_dir), "--out", str(out),
                          "--instances", str(tmp_path / "l.npy"), "--quiet", option, value], f"{option} {value}")
        assert not out.exists()
