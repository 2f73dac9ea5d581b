"""Issue 15, cases 7-9: run folders stay consistent across kills, are locked while in use, and resume
from anywhere (absolute data paths, a fingerprint, an explicit new location)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import torch

from unetkit import checkpoint as ckpt
from unetkit.cli import main
from unetkit.safety.locks import LOCK_NAME


def _train(dataset, run, tiny, *extra):
    return main(["train", "--data", str(dataset / "train"), "--val", str(dataset / "val"), "--out", str(run),
                 "--quiet", *tiny, *extra])


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _epoch(path) -> int:
    return int(torch.load(path, weights_only=True)["epoch"])


def test_kill_while_best_pt_is_written_is_repaired_on_resume(dataset, tmp_path, tiny, monkeypatch):
    run = tmp_path / "run"
    real = ckpt.save_checkpoint

    def killed_at_best(path, payload):
        if path.name == "best.pt":
            raise KeyboardInterrupt  # as if killed while best.pt was written
        return real(path, payload)

    monkeypatch.setattr(ckpt, "save_checkpoint", killed_at_best)
    assert _train(dataset, run, tiny, "--epochs", "1") == 130
    monkeypatch.setattr(ckpt, "save_checkpoint", real)
    stale = run / f".last.pt.{_dead_pid()}.tmp.pt"  # the name temporary_path gives it
    stale.write_bytes(b"left by a killed run")
    assert main(["train", "--out", str(run), "--resume", "--epochs", "1", "--quiet"]) == 0
    last = torch.load(run / "last.pt", weights_only=True)
    summary = json.loads((run / "summary.json").read_text())
    assert _epoch(run / "best.pt") == last["best_epoch"] == summary["best_epoch"] == 1
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + last["epoch"]
    assert not stale.exists(), "temporary files of dead processes are removed"


def test_resume_keeps_best_last_metrics_and_summary_consistent(dataset, tmp_path, tiny):
    run = tmp_path / "run"
    assert _train(dataset, run, tiny, "--epochs", "1") == 0
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    last = torch.load(run / "last.pt", weights_only=True)
    summary = json.loads((run / "summary.json").read_text())
    assert last["epoch"] == 2 and summary["epochs_run"] == 2
    assert _epoch(run / "best.pt") == last["best_epoch"] == summary["best_epoch"]
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 3
    assert not (run / LOCK_NAME).exists()


def test_a_run_folder_in_use_is_refused_and_a_stale_lock_taken_over(dataset, tmp_path, tiny, capsys):
    import socket

    run = tmp_path / "run"
    run.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_NAME).write_text(json.dumps({"pid": owner.pid, "host": socket.gethostname(),
                                                 "command": "train", "started": "now"}))
        assert _train(dataset, run, tiny, "--epochs", "1") == 2
        err = capsys.readouterr().err
        assert f"pid {owner.pid}" in err and "in use" in err
        assert not (run / "config.yaml").exists() and not (run / "last.pt").exists()
        pred = tmp_path / "pred"
        pred.mkdir()
        (pred / LOCK_NAME).write_text((run / LOCK_NAME).read_text())
        assert main(["predict", "--model", str(run), str(dataset / "test" / "images"), "--out", str(pred),
                     "--quiet"]) == 2
        assert "in use" in capsys.readouterr().err
        trained = tmp_path / "trained"  # a finished run whose folder a training holds again
        assert _train(dataset, trained, tiny, "--epochs", "1") == 0
        (trained / LOCK_NAME).write_text((run / LOCK_NAME).read_text())
        kept = (trained / "best.pt").read_bytes()
        assert main(["tune-postprocess", "--model", str(trained), "--data", str(dataset / "val"), "--update"]) == 2
        assert "in use by `unetkit train`" in capsys.readouterr().err  # its update would be written over
        assert (trained / "best.pt").read_bytes() == kept
    finally:
        owner.kill()
        owner.wait()
    (run / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                             "command": "train", "started": "then"}))
    assert _train(dataset, run, tiny, "--epochs", "1") == 0
    assert "stale lock" in capsys.readouterr().err
    assert not (run / LOCK_NAME).exists()


def test_resume_from_another_directory_and_from_a_new_location(dataset, tmp_path, tiny, capsys, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(dataset / "train", data / "train")
    shutil.copytree(dataset / "val", data / "val")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "data/train", "--val", "data/val", "--out", "run", "--epochs", "1", "--quiet",
                 *tiny]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert os.path.isabs(state["train_dir"]) and state["data_fingerprint"]["files"] > 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--quiet"]) == 0
    # the data move: the old location is gone, the new one is given explicitly
    moved = tmp_path / "moved"
    shutil.move(str(data), str(moved))
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "3", "--quiet"]) == 2
    assert "--data" in capsys.readouterr().err
    (moved / "train" / "masks" / "extra.png").write_bytes((next((moved / "train" / "masks").iterdir())).read_bytes())
    shutil.copy(next((moved / "train" / "images").iterdir()), moved / "train" / "images" / "extra.png")
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "3", "--quiet",
                 "--data", str(moved / "train"), "--val", str(moved / "val")]) == 0
    assert "differ from those the run started with" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_dir"] == str(moved / "train")


def test_a_run_without_validation_says_how_best_was_chosen(dataset, tmp_path, capsys, tiny):
    """With --val-fraction 0 the run ended 'best epoch 1: score -1.2': the training loss, negated, unexplained."""
    from unetkit.cli import main

    assert main(["train", "--data", str(dataset / "train"), "--out", str(tmp_path / "run"), "--val-fraction", "0",
                 "--epochs", "1", "--quiet", *tiny]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("best epoch 1: no validation images, so chosen by training loss (") and "(-" not in last
