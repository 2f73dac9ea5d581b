"""Regression end to end: training learns, outputs are float32 in the target's units, scores agree."""

import numpy as np
import pytest
import tifffile

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.data.image_targets import TargetNorm
from unetkit.data.synthetic_tasks import write_regression_dataset
from unetkit.inference.files import PredictOptions, load_for_prediction, predict_files
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.predictor import predict_probabilities
from unetkit.inference.tile_plan import NetGeometry
from unetkit.metrics.baselines import regression_baselines
from unetkit.metrics.folders import evaluate_regression
from unetkit.training.loop import fit

TINY = {
    "task": "regression", "model.depth": 3, "model.base_channels": 8, "data.patch_size": 48,
    "data.samples_per_epoch": 32, "train.batch_size": 8, "train.lr": 5e-3, "inference.tile_size": 64,
    "train.overlays": 1, "loss.regression": "smooth_l1",
}


@pytest.fixture(scope="module")
def stain(tmp_path_factory):
    root = tmp_path_factory.mktemp("stain")
    write_regression_dataset(root / "train", 3, seed=1, sizes=[(64, 64), (72, 80), (64, 96)])
    write_regression_dataset(root / "val", 2, seed=2, sizes=[(70, 70), (64, 64)])
    return root


def test_regression_trains_and_predicts_in_target_units(stain, tmp_path):
    config = apply_overrides(RunConfig(), {**TINY, "train.epochs": 2})
    result = fit(config, stain / "train", tmp_path / "run", stain / "val", progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert {"val_psnr", "val_mae", "val_ssim", "val_loss"} <= set(result.history[-1])

    model, config = ckpt.load_model(tmp_path / "run" / "best.pt")
    assert config.data.target_offset and config.model.out_channels == 1
    rows = predict_files(tmp_path / "run" / "best.pt", [stain / "val" / "images"], tmp_path / "pred",
                         PredictOptions(device="cpu"), progress=False)
    assert len(rows) == 2 and "mean_0" in rows[0]
    written = tifffile.imread(tmp_path / "pred" / "predictions" / "stain_0000.tif")
    assert written.dtype == np.float32 and written.shape == (70, 70)
    # the file is the network output with the checkpoint's normalisation undone
    image = load_for_prediction(stain / "val" / "images" / "stain_0000.png", config)
    raw = predict_tiled(image, TorchPredictor(model, activation="none"), NetGeometry.from_config(config.model), 1,
                        config.inference.tile_size, config.inference.overlap, config.inference.batch_size)
    expected = TargetNorm.from_config(config.data).denormalize(raw)[0]
    assert np.allclose(written, expected, rtol=1e-5, atol=1e-3)
    scale, offset = config.data.target_scale[0], config.data.target_offset[0]
    assert np.allclose(written, raw[0] * scale + offset, atol=1e-3)
    # the predictor of validation and the API gives the same values (target units) as the file
    assert np.allclose(predict_probabilities(model, image, config, "cpu")[0], written, rtol=1e-5, atol=1e-3)

    scores = evaluate_regression(stain / "val" / "targets", tmp_path / "pred" / "predictions").summary
    assert scores["images"] == 2
    # validation scored the same images the same way: the numbers agree
    assert scores["psnr"] == pytest.approx(result.history[result.best_epoch - 1]["val_psnr"], abs=1e-3)


def test_baselines_get_their_best_affine_map():
    rng = np.random.default_rng(0)
    inputs = [rng.random((32, 32)) for _ in range(2)]
    exact = regression_baselines(inputs, [3 * i + 2 for i in inputs])
    assert exact["identity"]["scale"] == pytest.approx(3) and exact["identity"]["offset"] == pytest.approx(2)
    assert exact["identity"]["mae"] == pytest.approx(0, abs=1e-9)
    smooth = [np.outer(np.hanning(32), np.hanning(32))] * 2
    noisy = [s + 0.2 * rng.standard_normal(s.shape) for s in smooth]
    result = regression_baselines(noisy, smooth, sigmas=(0.5, 2.0))
    assert result["gaussian"]["psnr"] > result["identity"]["psnr"] and result["gaussian"]["sigma"] == 2.0
