"""CPU training precision: bf16 autocast where the CPU computes bf16 in hardware, float32 elsewhere."""

import json

import pytest
import torch

import unetkit.cpu.info as info
from unetkit.config import RunConfig, apply_overrides
from unetkit.config_rules import validate_training_config
from unetkit.errors import InputError
from unetkit.training.loop import fit
from unetkit.training.optim import autocast_dtype


def _config(**values):
    return apply_overrides(RunConfig(), {f"train.{key}": value for key, value in values.items()})


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cpu_and_explicit_settings_win(monkeypatch, native):
    monkeypatch.setattr(info, "native_bf16", lambda: native)
    assert autocast_dtype(_config(precision="auto"), "cpu") == (torch.bfloat16 if native else None)
    assert autocast_dtype(_config(precision="fp32"), "cpu") is None
    assert autocast_dtype(_config(precision="bf16"), "cpu") == torch.bfloat16
    assert autocast_dtype(_config(precision="bf16", amp=False), "cuda") is None  # CUDA follows train.amp
    assert autocast_dtype(_config(precision="bf16"), "mps") is None


def test_native_bf16_reads_the_cpu_flags(monkeypatch):
    for flags, expected in ((["avx2", "fma"], False), (["avx2", "avx512f", "avx512_bf16"], True),
                            (["amx_tile", "amx_bf16"], True), ([], False)):
        monkeypatch.setattr(info, "cpu_flags", lambda flags=flags: flags)
        assert info.native_bf16() is expected


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(InputError, match="train.precision"):
        validate_training_config(_config(precision="fp16"))


def test_bf16_trains_in_bf16_and_keeps_float32_weights(tiny_dataset, tmp_path, capsys):
    base = {"model.depth": 2, "model.base_channels": 4, "data.patch_size": 32, "data.samples_per_epoch": 8,
            "train.batch_size": 4, "train.epochs": 2, "inference.tile_size": 64, "train.overlays": 0}
    losses = {}
    for precision in ("fp32", "bf16"):
        config = apply_overrides(RunConfig(), {**base, "train.precision": precision})
        run = tmp_path / precision
        fit(config, tiny_dataset / "train", run, tiny_dataset / "val", progress=False)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["precision"] == {"fp32": "fp32", "bf16": "bfloat16"}[precision]
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())
        losses[precision] = [row["train_loss"] for row in state["history"]]
    assert "bfloat16" in capsys.readouterr().out  # the throughput line names it
    # same seed, same patches: only the forward pass's rounding differs (bf16 keeps 8 significant bits)
    assert all(torch.isfinite(torch.tensor(losses["bf16"])))
    assert losses["bf16"] != losses["fp32"]
