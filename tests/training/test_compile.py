"""torch.compile as an option: same results as eager, plain checkpoints, clear errors for bad backends.

The ``eager`` backend runs dynamo's graph capture without code generation, so these tests check the
plumbing in seconds; whether ``inductor`` pays is measured in benchmarks/peers.py, not here.
"""

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.inference.files import PredictOptions, predict_files
from unetkit.training.loop import fit

TINY = {
    "model.depth": 2, "model.base_channels": 4, "model.norm": "batch", "data.patch_size": 32,
    "data.samples_per_epoch": 16, "train.batch_size": 8, "inference.tile_size": 64, "train.overlays": 0,
    "train.epochs": 1, "train.device": "cpu",
}


@pytest.fixture(scope="module")
def eager_and_compiled(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("compile")
    runs = {}
    for backend in ("off", "eager"):
        config = apply_overrides(RunConfig(), {**TINY, "train.compile": backend})
        runs[backend] = fit(config, tiny_dataset / "train", root / backend, tiny_dataset / "val", progress=False)
    return root, runs


def test_compiled_training_matches_eager_and_saves_plain_weights(eager_and_compiled):
    root, runs = eager_and_compiled
    assert runs["eager"].history[0]["train_loss"] == pytest.approx(runs["off"].history[0]["train_loss"], rel=1e-4)
    plain = ckpt.load_checkpoint(root / "off" / "last.pt")["model"]
    compiled = ckpt.load_checkpoint(root / "eager" / "last.pt")["model"]
    assert list(compiled) == list(plain)  # no _orig_mod. prefixes: the checkpoint loads into a plain network
    for key in plain:
        torch.testing.assert_close(compiled[key], plain[key], rtol=1e-4, atol=1e-5)


def test_compiled_prediction_matches_eager(eager_and_compiled, tiny_dataset, tmp_path):
    root, _ = eager_and_compiled
    images = tiny_dataset / "val" / "images"
    outputs = {}
    for backend in ("off", "eager"):
        options = PredictOptions(device="cpu", compile=backend)
        predict_files(root / "off" / "last.pt", [images], tmp_path / backend, options, progress=False)
        outputs[backend] = sorted((tmp_path / backend).rglob("*.tif"))
    assert outputs["off"] and len(outputs["off"]) == len(outputs["eager"])
    import tifffile

    for a, b in zip(outputs["off"], outputs["eager"], strict=True):
        np.testing.assert_allclose(tifffile.imread(a), tifffile.imread(b), atol=1e-5)


def test_unknown_compile_backend_is_refused_by_name(tiny_dataset, tmp_path):
    config = apply_overrides(RunConfig(), {**TINY, "train.compile": "turbo"})
    with pytest.raises(InputError, match="train.compile must be off or a torch.compile backend.*'turbo'"):
        fit(config, tiny_dataset / "train", tmp_path / "run", progress=False)
