"""Training runs: the loss falls, the run folder is complete, resume is exact, checkpoints rebuild."""

import csv
import json

import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.training.loop import fit

TINY = {
    "model.depth": 3, "model.base_channels": 8, "model.norm": "batch", "data.patch_size": 48,
    "data.samples_per_epoch": 32, "train.batch_size": 8, "train.lr": 5e-3, "inference.tile_size": 64,
    "train.overlays": 1, "model.dropout": 0.2,
}


def _config(**extra):
    return apply_overrides(RunConfig(), {**TINY, **extra})


def test_short_training_lowers_the_loss_and_writes_the_run_folder(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    result = fit(_config(**{"train.epochs": 6}), tiny_dataset / "train", run, tiny_dataset / "val", progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    for name in ("config.yaml", "metrics.csv", "curves.png", "last.pt", "best.pt", "summary.json"):
        assert (run / name).is_file(), name
    assert list((run / "overlays").glob("*.png"))
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 6 and "val_dice" in rows[0]
    val_losses = [float(row["val_loss"]) for row in rows]  # whole-image validation loss, plotted in curves.png
    assert all(0 < v < 10 for v in val_losses) and len(set(val_losses)) > 1
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == result.best_epoch
    assert not list(run.glob(".*tmp"))  # atomic writes leave no temporary files


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    straight = fit(_config(**{"train.epochs": 2}), tiny_dataset / "train", tmp_path / "a", tiny_dataset / "val",
                   progress=False)
    fit(_config(**{"train.epochs": 1}), tiny_dataset / "train", tmp_path / "b", tiny_dataset / "val", progress=False)
    resumed = fit(None, None, tmp_path / "b", resume=True, resume_overrides={"train.epochs": 2}, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    a = ckpt.load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = ckpt.load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert straight.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


def test_checkpoint_alone_rebuilds_the_model(tiny_dataset, tmp_path):
    fit(_config(**{"train.epochs": 1}), tiny_dataset / "train", tmp_path / "r", tiny_dataset / "val", progress=False)
    model, config = ckpt.load_model(tmp_path / "r" / "best.pt")
    assert config.model.in_channels == 1 and config.model.base_channels == 8
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 2, 48, 48)
    with pytest.raises(InputError, match="already holds a run"):
        fit(_config(), tiny_dataset / "train", tmp_path / "r", progress=False)
    with pytest.raises(InputError, match="no run to resume .*leave out --resume"):
        fit(None, None, tmp_path / "never", resume=True, progress=False)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="broken.pt"):
        ckpt.load_checkpoint(tmp_path / "broken.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a unetkit checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pt")
    # an image or an array given as the model was called "untrusted: it holds Python objects"
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "cells.png")
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name, kind in (("cells.png", "a PNG image"), ("array.npy", "a NumPy array")):
        with pytest.raises(InputError, match=f"{name}: not a checkpoint but {kind}"):
            ckpt.load_checkpoint(tmp_path / name)
    import zipfile

    with zipfile.ZipFile(tmp_path / "package.zip", "w") as archive:  # what `export --format bioimageio` writes
        archive.writestr("rdf.yaml", "type: model\n")
    with pytest.raises(InputError, match="package.zip: a bioimage.io package, not a checkpoint; .* weights.onnx"):
        ckpt.load_checkpoint(tmp_path / "package.zip")
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_paper_recipe_trains_a_valid_net_with_weight_maps(tiny_dataset, tmp_path):
    from unetkit.recipes import resolve_config

    config = resolve_config("paper", overrides=[
        "model.depth=3", "model.base_channels=4", "data.patch_size=92", "data.samples_per_epoch=4",
        "train.epochs=1", "inference.tile_size=92", "train.lr=0.001"])
    result = fit(config, tiny_dataset / "train", tmp_path / "p", tiny_dataset / "val", progress=False)
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["input_patch"] == [92, 92] and summary["output_patch"] == [52, 52]
    assert result.history[0]["train_loss"] > 0


@pytest.mark.parametrize(("setting", "base", "device", "gemm", "dims", "expected"), [
    ("auto", 16, "cpu", True, 2, True), ("auto", 64, "cpu", True, 2, True), ("auto", 64, "cpu", False, 2, False),
    ("auto", 32, "cpu", False, 2, True), ("auto", 32, "cuda", True, 2, True), ("auto", 64, "cuda", True, 2, False),
    ("auto", 64, "cpu", False, 3, True), ("auto", 64, "cuda", True, 3, False), ("auto", 16, "cpu", True, 1, False),
    ("true", 64, "cuda", True, 2, True), ("false", 16, "cpu", True, 3, False), ("true", 16, "cpu", True, 1, False),
    (True, 64, "cpu", False, 2, True), (False, 8, "cpu", True, 2, False),  # booleans from configs before "auto"
])
def test_channels_last_training_follows_the_setting_device_and_width(setting, base, device, gemm, dims, expected):
    from unetkit.training.optim import train_channels_last

    config = apply_overrides(RunConfig(), {"model.base_channels": base, "train.gemm_convs": gemm})
    config.train.channels_last = setting
    assert train_channels_last(config, device, dims) is expected


def test_bad_channels_last_setting_is_refused_by_name():
    from unetkit.training.optim import train_channels_last

    with pytest.raises(InputError, match="train.channels_last='sometimes': expected one of auto, true, false"):
        apply_overrides(RunConfig(), ["train.channels_last=sometimes"])  # refused when the config is built
    config = RunConfig()
    config.train.channels_last = "sometimes"  # set behind validation's back: still refused where it is used
    with pytest.raises(InputError, match="train.channels_last must be auto, true or false; got 'sometimes'"):
        train_channels_last(config)


@pytest.mark.parametrize("bad", [{"train.optimizer": "adam"}, {"train.scheduler": "step"},
                                 {"train.budget_clock": "gpu"}, {"train.channels_last": "maybe"}])
def test_bad_training_settings_fail_before_data_or_run_folder(bad, tmp_path):
    with pytest.raises(InputError, match=next(iter(bad))):
        fit(apply_overrides(RunConfig(), bad), tmp_path / "no-data-here", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_settings_set_behind_validation_and_cross_key_rules_fail_before_data(tmp_path):
    config = RunConfig()
    config.train.optimizer = "adam"  # set on the dataclass, never through from_dict
    with pytest.raises(InputError, match="train.optimizer='adam': expected one of adamw, sgd"):
        fit(config, tmp_path / "no-data-here", tmp_path / "run", progress=False)
    timed = apply_overrides(RunConfig(), {"train.scheduler": "cosine-time"})  # valid key by key
    with pytest.raises(InputError, match="cosine-time' needs train.time_budget_s > 0"):
        fit(timed, tmp_path / "no-data-here", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_default_cpu_autotune_trains_and_validates_end_to_end(tiny_dataset, tmp_path, monkeypatch):
    """The suite runs with UNETKIT_AUTOTUNE=0 (tests/conftest.py); users run with it on, as `make demo`
    does: training, whole-image validation (new shape classes met under inference_mode) and the tuning
    table written to the cache must all work there too."""
    from unetkit.cpu import autotune

    monkeypatch.setenv("UNETKIT_AUTOTUNE", "1")
    result = fit(_config(**{"train.epochs": 1, "train.channels_last": "true"}), tiny_dataset / "train",
                 tmp_path / "run", tiny_dataset / "val", progress=False)
    assert "val_dice" in result.history[-1]
    assert autotune.load_table()[autotune.machine_key()]  # the layers were measured on this machine


def test_init_weights_starts_a_new_run_from_a_checkpoint(tiny_dataset, tmp_path):
    fit(_config(**{"train.epochs": 1}), tiny_dataset / "train", tmp_path / "a", tiny_dataset / "val", progress=False)
    source = ckpt.load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    tiny_lr = {"train.epochs": 1, "train.lr": 1e-9, "train.weight_decay": 0.0, "train.seed": 7}
    fit(_config(**tiny_lr, **{"train.init_weights": str(tmp_path / "a")}), tiny_dataset / "train", tmp_path / "b",
        tiny_dataset / "val", progress=False)
    fit(_config(**tiny_lr), tiny_dataset / "train", tmp_path / "c", tiny_dataset / "val", progress=False)
    tuned = ckpt.load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    scratch = ckpt.load_checkpoint(tmp_path / "c" / "last.pt")["model"]
    convs = [key for key in source if key.endswith("weight") and source[key].ndim == 4]
    for key in convs:  # 4 AdamW steps of lr 1e-9 move a weight by at most ~4e-9
        assert torch.allclose(tuned[key], source[key], rtol=0, atol=1e-6), key
    assert max((scratch[k] - source[k]).abs().max().item() for k in convs) > 1e-2  # a random start differs
    # the network comes from the checkpoint (a different width asked for is overridden: its weights fit)
    fit(_config(**{"train.epochs": 1, "train.init_weights": str(tmp_path / "a"), "model.base_channels": 4}),
        tiny_dataset / "train", tmp_path / "d", tiny_dataset / "val", progress=False)
    assert ckpt.config_of(ckpt.load_checkpoint(tmp_path / "d" / "last.pt")).model.base_channels == 8
    with pytest.raises(InputError, match=r"train.init_weights=.*binary model.*--task binary"):
        fit(_config(**{"train.init_weights": str(tmp_path / "a"), "task": "instances"}), tiny_dataset / "train",
            tmp_path / "e", tiny_dataset / "val", progress=False)
    # a 2D checkpoint for a 3D run: the data was found as volumes (it said "no volumes found" of 2D data before)
    from unetkit.training.init_weights import adopt_init_network

    with pytest.raises(InputError, match=r"a 2D network \(unet\), but this run reads its data for a 3D one"):
        adopt_init_network(_config(**{"train.init_weights": str(tmp_path / "a"), "model.name": "unet3d"}))


def test_init_weights_takes_a_packaged_model_in_fp16():
    from unetkit.models.registry import build_model
    from unetkit.training.init_weights import load_init_weights

    packaged = ckpt.load_checkpoint("nuclei")
    config = ckpt.config_of(packaged).model
    model = build_model(config)
    load_init_weights(model, "nuclei")
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32 or not value.is_floating_point()
        assert torch.equal(value, packaged["model"][key].to(value.dtype)), key
    narrow = build_model(apply_overrides(RunConfig(), {"model.in_channels": 3, "model.out_channels": 3,
                                                       "model.base_channels": 8}).model)
    with pytest.raises(InputError, match=r"train.init_weights=nuclei: .*16 base channels.*does not match"):
        load_init_weights(narrow, "nuclei")
