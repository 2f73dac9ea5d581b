"""Issue 15, cases 2 and 6 for predict-large: the input is never the output; an unfinished output never
carries the final name; --resume continues an interrupted run and gives the uninterrupted result."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.inference import streaming
from unetkit.safety.partial import unfinished_path


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "slide.npy"
    np.save(path, rng.random((48, 96), dtype=np.float32))
    return path


def test_output_equal_to_input_is_refused(run_dir, image, capsys):
    before = image.read_bytes()
    code = main(["predict-large", str(image), "--model", str(run_dir), "--out", str(image), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "also an input" in err and len(err.splitlines()) == 1
    assert image.read_bytes() == before
    code = main(["predict-large", str(image), "--model", str(run_dir), "--out", str(image.with_name("p.npy")),
                 "--instances", str(image), "--quiet"])
    assert code == 2 and image.read_bytes() == before


def test_interrupted_output_is_unfinished_and_resume_completes_it(run_dir, image, tmp_path, monkeypatch):
    argv = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--strip", "32"]
    reference = tmp_path / "reference.npy"
    assert main([*argv, "--out", str(reference)]) == 0
    assert not unfinished_path(reference).exists()
    expected = np.load(reference)

    out = tmp_path / "probs.npy"
    real = streaming._write
    calls = {"n": 0}

    def dies_after_two_bands(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt  # as if killed in the middle of strip 2
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "_write", dies_after_two_bands)
    assert main([*argv, "--out", str(out)]) == 130
    assert not out.exists(), "an unfinished output must never carry the final name"
    assert unfinished_path(out).exists()
    monkeypatch.setattr(streaming, "_write", real)

    resumed = {"strips": []}
    original = streaming.predict_streaming

    def spy(*args, **kwargs):
        resumed["strips"] = sorted(kwargs.get("done_strips", ()))
        return original(*args, **kwargs)

    monkeypatch.setattr(streaming, "predict_streaming", spy)
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    assert resumed["strips"] == [0], "the finished first strip is not predicted again"
    assert not unfinished_path(out).exists() and not out.with_name("probs.npy.progress.json").exists()
    np.testing.assert_array_equal(np.load(out), expected)


def test_resume_with_other_settings_is_refused(run_dir, image, tmp_path, capsys, monkeypatch):
    out = tmp_path / "probs.npy"
    argv = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--strip", "32", "--out", str(out)]

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(streaming, "_write", dies)
    assert main(argv) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*argv, "--resume", "--dtype", "uint8"]) == 2
    assert "dtype" in capsys.readouterr().err
    assert main([*argv, "--resume", "--precision", "bf16"]) == 2  # bf16 strips beside fp32 ones
    assert "precision" in capsys.readouterr().err
    import shutil

    copy = tmp_path / "copy"  # another model's weights under the same file name: its strips beside these
    shutil.copytree(run_dir, copy)
    moved = [*argv[:2], "--model", str(copy), *argv[4:]]
    monkeypatch.setattr(streaming, "_write", dies)
    assert main([*moved[:-1], str(tmp_path / "other.npy")]) == 130
    monkeypatch.undo()
    best = copy / "best.pt"
    best.write_bytes(best.read_bytes() + b"\0")  # other bytes: a checkpoint trained on, or another one
    capsys.readouterr()
    assert main([*moved[:-1], str(tmp_path / "other.npy"), "--resume"]) == 2
    assert "sha256" in capsys.readouterr().err


def test_a_second_run_into_the_same_output_is_refused_and_a_stale_lock_taken_over(run_dir, image, tmp_path,
                                                                                    capsys):
    """Two predict-large into one --out: the second is refused while the first runs (<out>.lock)."""
    import json
    import socket
    import subprocess
    import sys

    out = tmp_path / "probs.npy"
    lock = tmp_path / "probs.npy.lock"
    argv = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--strip", "32", "--out", str(out)]
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": owner.pid, "host": socket.gethostname(), "command": "predict-large",
                                    "started": "now"}))
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert f"pid {owner.pid}" in err and "in use" in err and len(err.splitlines()) == 1
        assert not out.exists() and not unfinished_path(out).exists()
    finally:
        owner.kill()
        owner.wait()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "command": "predict-large",
                                "started": "then"}))
    assert main(argv) == 0
    assert "stale lock" in capsys.readouterr().err
    assert out.is_file() and not lock.exists()


def test_the_output_lock_is_held_while_predicting(run_dir, image, tmp_path, monkeypatch):
    import unetkit
    from unetkit.safety.locks import lock_path_of

    out = tmp_path / "probs.npy"
    seen = []
    real = streaming.predict_streaming

    def spy(*args, **kwargs):
        seen.append(lock_path_of(out).is_file())
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "predict_streaming", spy)
    unetkit.predict_large(run_dir, image, out, progress=False, strip_width=32)
    assert seen == [True] and not lock_path_of(out).exists()


def test_resume_with_another_channel_is_refused(run_dir, tmp_path, capsys, monkeypatch):
    """The channel/time/plane selection is part of the resume signature: --channel 1 never continues a
    prediction of channel 0."""
    import tifffile

    rng = np.random.default_rng(1)
    image = tmp_path / "two_channels.tif"
    plane = rng.random((48, 96), dtype=np.float32)
    # channel 1 is channel 0 mirrored: the same percentiles (so only the selection tells them apart)
    tifffile.imwrite(image, np.stack([plane, plane[:, ::-1]]), metadata={"axes": "CYX"})
    out = tmp_path / "probs.npy"
    argv = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--strip", "32", "--out", str(out)]
    real = streaming._write
    calls = {"n": 0}

    def dies_after_one(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "_write", dies_after_one)
    assert main([*argv, "--channel", "0"]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*argv, "--resume", "--channel", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "selection" in err and len(err.splitlines()) == 1
    assert unfinished_path(out).exists() and not out.exists()  # the unfinished channel-0 output is kept
    assert main([*argv, "--resume", "--channel", "0"]) == 0
    assert out.is_file()


def test_a_label_file_it_cannot_write_is_refused_before_predicting(run_dir, image, tmp_path, capsys):
    out, labels = tmp_path / "p.npy", tmp_path / "labels.png"
    code = main(["predict-large", str(image), "--model", str(run_dir), "--out", str(out), "--instances", str(labels),
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--instances" in err and ".tif" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slide.npy"]  # nothing predicted, nothing left behind


def test_labels_interrupted_after_the_probabilities_are_made_again_with_resume(run_dir, image, tmp_path,
                                                                               monkeypatch, capsys):
    """Ctrl-C in the instance step left a complete --out and unfinished labels: the same command, with or without
    --resume, then said "--out already exists", a dead end."""
    from unetkit.inference import chunked

    argv = ["predict-large", str(image), "--model", str(run_dir), "--quiet", "--out", str(tmp_path / "p.npy"),
            "--instances", str(tmp_path / "labels.npy")]
    real = chunked.postprocess_chunked

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chunked, "postprocess_chunked", interrupted)
    assert main(argv) == 130
    assert "continue with the same command and --resume" in capsys.readouterr().err
    probabilities = (tmp_path / "p.npy").read_bytes()
    monkeypatch.setattr(chunked, "postprocess_chunked", real)
    assert main([*argv, "--resume"]) == 0
    assert "its instance labels were interrupted: they are made from it again" in capsys.readouterr().err
    assert (tmp_path / "p.npy").read_bytes() == probabilities and (tmp_path / "labels.npy").is_file()
    assert not unfinished_path(tmp_path / "labels.npy").exists()
    (tmp_path / "labels.npy").unlink()
    assert main([*argv, "--resume"]) == 2  # finished labels gone, no unfinished ones: --out is not written over
