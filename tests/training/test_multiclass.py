"""Multiclass end to end through the CLI: train on class folders, predict, evaluate; names everywhere."""

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from unetkit import checkpoint as ckpt
from unetkit.cli import main
from unetkit.data.io import read_labels
from unetkit.data.synthetic_tasks import write_multiclass_dataset

TINY = ["model.depth=3", "model.base_channels=8", "data.patch_size=48", "data.samples_per_epoch=32",
        "train.batch_size=8", "train.lr=0.005", "inference.tile_size=64", "train.overlays=1"]


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    sizes = [(64, 64), (72, 80), (64, 96)]
    write_multiclass_dataset(root / "train", 3, seed=1, sizes=sizes, mask_format="class-folders")
    write_multiclass_dataset(root / "val", 2, seed=2, sizes=sizes[:2], mask_format="class-folders")
    write_multiclass_dataset(root / "val_index", 2, seed=2, sizes=sizes[:2], mask_format="index")
    return root


def test_train_predict_evaluate_multiclass(cells, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--task", "multiclass", "--data", str(cells / "train"), "--val", str(cells / "val"),
            "--out", str(run), "--epochs", "1", "--quiet", "--set", "data.class_priority=[nucleus]",
            "--set", "loss.auto_class_weights=true"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0

    state = ckpt.load_checkpoint(run / "best.pt")
    assert state["config"]["data"]["class_names"] == ["background", "cytoplasm", "nucleus"]
    assert len(state["config"]["loss"]["class_weights"]) == 3
    model, _ = ckpt.load_model(run / "best.pt")
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 3, 48, 48)
    header = next(csv.reader(open(run / "metrics.csv")))
    assert {"val_mean_dice", "val_dice_cytoplasm", "val_dice_nucleus", "val_loss"} <= set(header)
    assert list((run / "overlays").glob("*.png"))

    out = tmp_path / "pred"
    assert main(["predict", "--model", str(run), str(cells / "val" / "images"), "--out", str(out),
                 "--class-probabilities", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "cytoplasm" in printed and "nucleus" in printed
    mask = read_labels(out / "masks" / "cells_0000.png")
    assert mask.shape == (64, 64) and mask.max() <= 2
    total = sum(tifffile.imread(out / "probabilities" / name / "cells_0000.tif")
                for name in ("background", "cytoplasm", "nucleus"))
    assert np.allclose(total, 1.0, atol=1e-4)
    record = json.loads((out / "prediction.json").read_text())
    assert record["class_names"] == ["background", "cytoplasm", "nucleus"]
    assert record["settings"]["tile_size"] is None and record["inference"]["tile_size"] == 64  # the value used
    assert record["tile_taken"] == [64]  # and the tile the network takes for it
    rows = list(csv.DictReader(open(out / "classes.csv")))
    assert len(rows) == 2 and "fraction_nucleus" in rows[0]
    assert (out / "overlays" / "cells_0000.png").is_file()

    assert main(["evaluate", "--task", "multiclass", "--num-classes", "3", "--truth",
                 str(cells / "val_index" / "masks"), "--pred", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(summary["per_class_dice"]) == 3 and 0 <= summary["mean_dice"] <= 1
