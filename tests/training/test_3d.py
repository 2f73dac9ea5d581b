"""3D U-Net end to end: training on volumes, sparse labels, memory checks, 3D prediction with spacing."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.data.synthetic3d import write_synthetic_volumes
from unetkit.data.volumes import VolumeMeta, read_volume_file, write_label_volume, write_volume
from unetkit.errors import InputError
from unetkit.inference.files import PredictOptions, predict_files
from unetkit.inference.predictor import predict_probabilities
from unetkit.training.data import prepare_data
from unetkit.training.loop import fit

torch.set_num_threads(1)
NUCLEI3D = Path(__file__).resolve().parents[2] / "../shared/data/nuclei3d"
TINY_3D = {
    "model.name": "unet3d", "model.depth": 3, "model.base_channels": 4, "model.pool_sizes": [[1, 2, 2], [2, 2, 2]],
    "data.patch_shape": [8, 32, 32], "train.batch_size": 2, "data.samples_per_epoch": 8, "train.lr": 1e-2,
    "inference.tile_shape": [8, 32, 32], "train.overlays": 1,
}


def _config(**extra):
    return apply_overrides(RunConfig(), {**TINY_3D, **extra})


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    root = tmp_path_factory.mktemp("vol")
    write_synthetic_volumes(root / "train", 2, seed=1, shape=(12, 40, 40), anisotropy=2.0)
    write_synthetic_volumes(root / "val", 1, seed=2, shape=(10, 36, 44), anisotropy=2.0)
    return root


def test_training_on_volumes_then_3d_prediction_with_spacing(volumes, tmp_path, capsys):
    result = fit(_config(**{"train.epochs": 4, "task": "instances"}), volumes / "train", tmp_path / "run",
                 volumes / "val", progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] and "val_dsb_score" in result.history[-1]
    assert (tmp_path / "run" / "overlays" / "vol_0000.png").is_file()  # middle-slice picture
    _, config = ckpt.load_model(tmp_path / "run" / "best.pt")
    assert config.model.spatial_dims == 3  # resolved geometry is stored in the checkpoint
    from unetkit.inference.tuning import tune_checkpoint  # read as volumes, as training read them ("the network is
    values, rows = tune_checkpoint(tmp_path / "run", volumes / "val", device="cpu", progress=False)  # 2D" before)
    assert rows and 0 < values["threshold"] < 1

    rows = predict_files(tmp_path / "run", [volumes / "val"], tmp_path / "pred", PredictOptions(device="cpu"),
                         progress=False)
    assert rows[0]["depth"] == 10 and rows[0]["spacing_zyx"] == [2.0, 1.0, 1.0]
    for folder in ("probabilities", "masks", "labels"):
        array, meta = read_volume_file(tmp_path / "pred" / folder / "vol_0000.tif")
        assert array.shape == (1, 10, 36, 44) and meta.spacing == (2.0, 1.0, 1.0), folder
    assert (tmp_path / "pred" / "overlays" / "vol_0000.png").is_file()
    assert (tmp_path / "pred" / "objects" / "vol_0000.csv").read_text().startswith("id,area,centroid_z")
    # object tables: volume in µm³ from the spacing, mean intensity in the raw volume's units (uint16 counts)
    with open(tmp_path / "pred" / "objects" / "vol_0000.csv") as handle:
        objects = list(csv.DictReader(handle))
    labels = read_volume_file(tmp_path / "pred" / "labels" / "vol_0000.tif")[0][0]
    raw = read_volume_file(volumes / "val" / "images" / "vol_0000.tif")[0][0]
    assert objects and raw.max() > 1000  # raw counts, far from the normalised [0, 1] range
    for row in objects[:3]:
        voxels = labels == int(row["id"])
        assert float(row["volume_um3"]) == pytest.approx(voxels.sum() * 2.0, rel=1e-6)
        assert float(row["mean_intensity"]) == pytest.approx(raw[voxels].mean(dtype=np.float64), rel=1e-5)  # 6 digits

    # the CLI on one NIfTI file: it predicted, then exited 2 from the 2D images' subfolder note ("not an image")
    pytest.importorskip("nibabel")
    from unetkit.cli import main

    write_volume(tmp_path / "in" / "v.nii.gz", raw.astype(np.float32))
    assert main(["predict", str(tmp_path / "in" / "v.nii.gz"), "--model", str(tmp_path / "run"), "--out",
                 str(tmp_path / "pred_nifti"), "--quiet"]) == 0
    assert (tmp_path / "pred_nifti" / "labels" / "v.nii.gz").is_file()

    # a folder of 2D images is one volume of slices for a 3D model: predicted as such, and said
    from PIL import Image

    (tmp_path / "slices").mkdir()
    for z, plane in enumerate(raw[:6]):
        Image.fromarray((plane / plane.max() * 255).astype(np.uint8)).save(tmp_path / "slices" / f"z{z:02d}.png")
    assert main(["predict", str(tmp_path / "slices"), "--model", str(tmp_path / "run"), "--out",
                 str(tmp_path / "pred_slices"), "--quiet"]) == 0
    assert "slices was read as one volume of 6 slices" in capsys.readouterr().err


def test_sparse_labels_train_and_validate_on_annotated_slices_only(volumes, tmp_path):
    root = tmp_path / "sparse"
    for split in ("train", "val"):
        for path in sorted((volumes / split / "masks").glob("*.tif")):
            labels = read_volume_file(path)[0][0].astype(np.int32)
            sparse = np.full_like(labels, 255)
            sparse[::3] = labels[::3]  # every third slice annotated
            write_label_volume(root / split / "masks" / path.name, sparse, VolumeMeta())
            image = read_volume_file(volumes / split / "images" / path.name)[0][0]
            write_volume(root / split / "images" / path.name, image)
    config = _config(**{"train.epochs": 1, "data.sparse_labels": True, "task": "instances"})
    train, val, _ = prepare_data(apply_overrides(config, {"model.in_channels": 1}), root / "train", root / "val")
    assert np.all(train.targets[0][1::3] == 255) and set(np.unique(train.targets[0][::3])) <= {0, 1, 2}
    assert np.all(val.labels[0][1::3] == 255)
    result = fit(config, root / "train", tmp_path / "run", root / "val", progress=False)
    assert np.isfinite(result.history[0]["train_loss"]) and 0 <= result.history[0]["val_dice"] <= 1
    assert "val_dsb_score" not in result.history[0]  # instances cannot be scored on partial annotation


def test_training_that_does_not_fit_names_a_patch_that_does(volumes, tmp_path):
    config = _config(**{"train.epochs": 1, "train.memory_limit_gb": 0.002, "data.patch_shape": [16, 64, 64]})
    with pytest.raises(InputError, match=r"use --set data\.patch_shape=\[\d+, \d+, \d+\]"):
        fit(config, volumes / "train", tmp_path / "run", volumes / "val", progress=False)


def test_valid_3d_prediction_with_a_memory_shrunk_tile_is_exact(volumes, tmp_path):
    config = _config(**{"model.padding": "valid", "model.norm": "none", "model.pool_sizes": [],
                        "model.depth": 2, "model.in_channels": 1, "inference.tile_shape": [28, 40, 40],
                        "inference.batch_size": 4})
    from unetkit.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(config.model).eval()
    image = np.random.default_rng(0).random((1, 10, 36, 44)).astype(np.float32)
    whole = predict_probabilities(model, image, config, "cpu")
    from unetkit.inference.predictor import prediction_tile
    from unetkit.models.memory import GB, estimate_bytes

    limit = estimate_bytes(config.model, (1, 1, 22, 28, 28), training=False) / GB  # below the requested tile
    small = apply_overrides(config, {"inference.memory_limit_gb": limit})

    tile, batch = prediction_tile(small, image.shape[1:], "cpu")
    assert batch == 1 and np.prod(tile) < 28 * 40 * 40
    np.testing.assert_allclose(predict_probabilities(model, image, small, "cpu"), whole, atol=1e-5)


def test_nuclei3d_loads_as_one_training_volume():
    if not NUCLEI3D.is_dir():
        pytest.skip(f"{NUCLEI3D} not found (the shared nuclei3d volume is only on the development machine)")
    config = apply_overrides(_config(**{"task": "instances"}), {"model.in_channels": 1})
    train, val, _ = prepare_data(config, NUCLEI3D, None)
    assert len(train.images) == 1 and not val.images
    assert train.images[0].shape == (1, 31, 61, 57) and set(np.unique(train.targets[0])) == {0, 1, 2}
