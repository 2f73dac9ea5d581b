"""Every run reports patches per CPU-second and the CPU it ran on, at the end and in summary.json."""

import json

from unetkit.config import RunConfig, apply_overrides
from unetkit.cpu.info import cpu_model
from unetkit.training.loop import fit
from unetkit.training.throughput import describe_throughput, run_throughput


def test_throughput_over_epochs_by_hand():
    history = [{"patches": 32, "train_cpu_s": 8.0, "train_seconds": 5.0},
               {"patches": 32, "train_cpu_s": 8.0, "train_seconds": 3.0}]
    summary = run_throughput(history)
    assert (summary["train_patches"], summary["train_cpu_s"]) == (64, 16.0)
    assert summary["patches_per_cpu_s"] == 4.0 and summary["patches_per_s"] == 8.0
    assert run_throughput(history, world_size=2)["patches_per_cpu_s"] == 2.0  # two processes' CPU time
    assert run_throughput([])["patches_per_cpu_s"] is None
    assert describe_throughput(summary).startswith("training throughput: 4.00 patches per CPU-second (64 patches")


def test_a_run_prints_and_records_its_throughput_and_cpu(tiny_dataset, tmp_path, capsys):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "data.patch_size": 32,
                                           "data.samples_per_epoch": 8, "train.batch_size": 4, "train.epochs": 2,
                                           "inference.tile_size": 64, "train.overlays": 0})
    fit(config, tiny_dataset / "train", tmp_path / "run", tiny_dataset / "val", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_patches"] == 16 and summary["train_cpu_s"] > 0
    assert abs(summary["patches_per_cpu_s"] * summary["train_cpu_s"] / 16 - 1) < 0.05  # both rounded
    assert summary["cpu_model"] == cpu_model() and summary["torch_threads"] >= 1
    assert "training throughput:" in capsys.readouterr().out
