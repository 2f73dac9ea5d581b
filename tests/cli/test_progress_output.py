"""Progress output: few lines in a log (stderr not a terminal), none with --quiet; curves mark the best epoch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from unetkit.cli._progress import configure_progress
from unetkit.visualize.curves import plot_curves

TINY = ["--set", "model.depth=2", "--set", "model.base_channels=4", "--set", "data.patch_size=32",
        "--set", "data.samples_per_epoch=64", "--set", "train.batch_size=2", "--set", "inference.tile_size=32"]


def _unetkit(*argv: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "unetkit", *argv], capture_output=True, text=True, env=env,
                          timeout=600, check=True)


def test_log_gets_few_lines_and_quiet_gets_none(tmp_path):
    _unetkit("synth", "--out", str(tmp_path / "data"), "--n-train", "3", "--n-val", "1", "--n-test", "1")
    train = ["train", "--data", str(tmp_path / "data" / "train"), "--val", str(tmp_path / "data" / "val"),
             "--epochs", "2", *TINY]
    logged = _unetkit(*train, "--out", str(tmp_path / "run")).stderr  # a pipe: not a terminal
    # each bar draws its start and its end (mininterval 30 s): a handful of lines, not one per batch
    assert logged.count("\r") + logged.count("\n") < 40, logged[-2000:]
    assert "epoch 1/2" in logged
    quiet = _unetkit(*train, "--out", str(tmp_path / "quiet"), "--quiet").stderr
    assert "loading" not in quiet and "epoch 1/2" not in quiet


def test_configure_progress_keeps_user_settings(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "0")
    configure_progress(quiet=True)
    import os

    assert os.environ["TQDM_DISABLE"] == "0"  # the user's own choice wins


def test_curves_mark_the_best_epoch(tmp_path):
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "lr": 0.01, "val_dice": d}
            for e, d in ((1, 0.5), (2, 0.8), (3, 0.7))]
    plain = np.asarray(Image.open(plot_curves(rows, tmp_path / "plain.png")))
    marked = np.asarray(Image.open(plot_curves(rows, tmp_path / "marked.png", best_epoch=2)))
    assert plain.shape == marked.shape and not np.array_equal(plain, marked)


def test_tensorboard_logs_scalars_and_overlays(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from unetkit.cli import main

    main(["synth", "--out", str(tmp_path / "data"), "--n-train", "3", "--n-val", "1", "--n-test", "1"])
    assert main(["train", "--data", str(tmp_path / "data" / "train"), "--val", str(tmp_path / "data" / "val"),
                 "--out", str(tmp_path / "run"), "--epochs", "2", "--quiet", "--set", "train.tensorboard=true",
                 *TINY]) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "val/dice", "lr"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("val/dice")] == [1, 2]
    assert tags["images"] and all(tag.startswith("overlays/") for tag in tags["images"])
