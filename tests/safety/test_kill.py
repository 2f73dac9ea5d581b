"""Issue 15: kill -9 at random moments of train, predict and predict-large (a bounded loop on tiny data).

After each kill: every file under its final name is complete (loads, and equals the uninterrupted
result where one exists), and resuming gives the uninterrupted result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit.checkpoint import load_checkpoint
from unetkit.cli import main
from unetkit.safety.partial import unfinished_path


def _kill_during(argv: list[str], cwd: Path, started: Path, delay: float) -> None:
    """Run the CLI in a child process; once ``started`` exists (the work is under way), wait ``delay`` seconds
    and kill -9 it (unless it has finished by then)."""
    # the child computes with as many threads as this process (other test modules set 1): float sums
    # are then reduced in the same order, so results can be compared bit for bit with in-process runs
    threads = str(torch.get_num_threads())
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    process = subprocess.Popen([sys.executable, "-m", "unetkit", *argv], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


KILLS = 1  # kills per command (each costs a child process: ~3 s of imports); moments drawn from a seeded rng


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(15)


def test_kill_train_then_resume(dataset, tmp_path, tiny, rng):
    base = ["train", "--data", str(dataset / "train"), "--val", str(dataset / "val"), "--epochs", "2", "--quiet",
            *tiny]
    reference = tmp_path / "reference"
    assert main([*base, "--out", str(reference)]) == 0
    expected = load_checkpoint(reference / "last.pt")["model"]
    for attempt in range(KILLS):
        run = tmp_path / f"run{attempt}"
        _kill_during([*base, "--out", str(run)], tmp_path, run / "metrics.csv", float(rng.uniform(0.0, 1.0)))
        for name in ("last.pt", "best.pt"):
            if (run / name).exists():
                load_checkpoint(run / name)  # complete, never truncated
        assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0  # the lock of the dead run is stale
        state = load_checkpoint(run / "last.pt")
        assert state["epoch"] == 2
        for key, value in expected.items():
            torch.testing.assert_close(state["model"][key], value, rtol=0, atol=0, msg=key)
        assert load_checkpoint(run / "best.pt")["epoch"] == state["best_epoch"]


def test_kill_predict_leaves_only_complete_files(dataset, run_dir, tmp_path, rng):
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):  # a few more images so that the kill lands among the writes
        for source in sorted((dataset / "test" / "images").iterdir()):
            (images / f"{k}_{source.name}").write_bytes(source.read_bytes())
    base = ["predict", "--model", str(run_dir), str(images), "--quiet", "--instances"]
    reference = tmp_path / "reference"
    assert main([*base, "--out", str(reference)]) == 0
    for attempt in range(KILLS):
        out = tmp_path / f"out{attempt}"
        _kill_during([*base, "--out", str(out)], tmp_path, out / "masks", float(rng.uniform(0.0, 0.5)))
        for path in _visible_files(out) if out.exists() else []:
            if path.suffix == ".png":
                Image.open(path).load()
            elif path.suffix == ".tif":
                tifffile.imread(path)
            assert path.read_bytes() == (reference / path.relative_to(out)).read_bytes(), path
        assert main([*base, "--out", str(out)]) == 0  # a stale lock of the killed run is taken over
        assert [p.relative_to(out) for p in _visible_files(out)] == \
            [p.relative_to(reference) for p in _visible_files(reference)]
        assert not [p for p in out.rglob(".*") if p.is_file()], "no temporary or lock file is left"


def test_kill_predict_large_then_resume(run_dir, tmp_path, rng):
    image = tmp_path / "slide.npy"
    np.save(image, np.random.default_rng(1).random((96, 512), dtype=np.float32))
    base = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--strip", "64"]
    reference = tmp_path / "reference.npy"
    assert main([*base, "--out", str(reference)]) == 0
    expected = np.load(reference)
    for attempt in range(KILLS):
        out = tmp_path / f"probs{attempt}.npy"
        _kill_during([*base, "--out", str(out)], tmp_path, unfinished_path(out), float(rng.uniform(0.0, 0.3)))
        if out.exists():  # only a finished output carries the final name
            np.testing.assert_array_equal(np.load(out), expected)
            assert not unfinished_path(out).exists()
            continue
        assert main([*base, "--out", str(out), "--resume"]) == 0
        np.testing.assert_array_equal(np.load(out), expected)
        assert not unfinished_path(out).exists()


def test_ctrl_c_during_training_says_how_to_continue(run_dir, tmp_path, capsys, monkeypatch):
    """Ctrl-C printed only 'interrupted'; the line now says which epoch last.pt holds and the command that
    continues the run (or that nothing can be resumed yet)."""
    import shutil

    import unetkit

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(unetkit, "train", interrupted)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    epoch = load_checkpoint(run / "last.pt")["epoch"]
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3"]) == 130
    assert capsys.readouterr().err.strip() == (f"unetkit train: interrupted after epoch {epoch}; continue it with: "
                                               f"unetkit train --out {run} --resume")
    assert main(["train", "--data", str(run), "--out", str(tmp_path / "new")]) == 130
    assert "before the first epoch ended (nothing to resume)" in capsys.readouterr().err


def test_ctrl_c_during_predict_large_says_resume_when_strips_are_kept(tmp_path, capsys, monkeypatch):
    import unetkit
    from unetkit.safety.partial import PartialOutput

    out = tmp_path / "probs.npy"

    def interrupted(*args, **kwargs):
        partial = PartialOutput(out)
        partial.start({"model": "m"}, resume=False)
        partial.work.write_bytes(b"strips")
        raise KeyboardInterrupt

    monkeypatch.setattr(unetkit, "predict_large", interrupted)
    assert main(["predict-large", "x.npy", "--model", "m", "--out", str(out)]) == 130
    assert "interrupted; what was written is kept: continue with the same command and --resume" in \
        capsys.readouterr().err
