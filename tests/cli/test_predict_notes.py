"""What `unetkit predict` tells a user besides its summary: images it left aside in subfolders."""

import numpy as np
import torch

from unetkit.checkpoint import save_checkpoint
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.io import write_png
from unetkit.models.registry import build_model


def test_predict_names_images_in_subfolders_it_did_not_read(tmp_path, capsys):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 32})
    torch.manual_seed(0)
    model = save_checkpoint(tmp_path / "m.pt", {"config": to_dict(config), "model": build_model(config.model)
                                                .state_dict()})
    image = (np.random.default_rng(0).random((32, 40)) * 255).astype(np.uint8)
    write_png(tmp_path / "in" / "top.png", image)
    write_png(tmp_path / "in" / "day2" / "more.png", image)
    options = ["--model", str(model), "--quiet", "--device", "cpu"]
    assert main(["predict", str(tmp_path / "in"), *options, "--out", str(tmp_path / "in" / "pred")]) == 0  # the
    # output folder inside the input folder is not counted
    captured = capsys.readouterr()
    assert "predicted 1 image(s)" in captured.out
    note = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "note: 1 image file(s) in subfolders were not read" in note[0] and "day2" in note[0]
    assert main(["predict", str(tmp_path / "in"), str(tmp_path / "in" / "day2"), *options,
                 "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "predicted 2 image(s)" in captured.out and "note:" not in captured.err  # given too: nothing left aside
