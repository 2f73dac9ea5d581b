"""`evaluate --out` never overlaps its inputs: not the truth folder, not a folder holding the truth or the
predictions, never over an input file (the CLI and ``unetkit.evaluate`` alike)."""

from __future__ import annotations

import numpy as np
import pytest

import unetkit
from unetkit.cli import main
from unetkit.data.io import write_labels, write_png
from unetkit.errors import InputError


@pytest.fixture
def folders(tmp_path):
    """root/truth/{a,b}.png and root/pred/{a,b}_mask.png (binary, 8 x 8)."""
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    for name in ("a", "b"):
        write_png(tmp_path / "root" / "truth" / f"{name}.png", mask)
        write_png(tmp_path / "root" / "pred" / f"{name}_mask.png", mask)
    return tmp_path / "root", tmp_path / "root" / "truth", tmp_path / "root" / "pred"


def _refused(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("where", ["truth", "root", "truth_sub"])
def test_out_that_is_or_holds_the_truth_is_refused(folders, capsys, hashes, where):
    root, truth, pred = folders
    out = {"truth": truth, "root": root, "truth_sub": truth / "scores"}[where]
    before = hashes(root)
    err = _refused(capsys, ["evaluate", "--truth", str(truth), "--pred", str(pred), "--out", str(out)])
    assert str(out) in err and "truth" in err
    assert hashes(root) == before and not (truth / "scores").exists()


def test_out_that_holds_the_predictions_is_refused(folders, tmp_path, capsys, hashes):
    root, truth, pred = folders
    truth2 = tmp_path / "elsewhere" / "truth"
    truth2.parent.mkdir()
    truth.rename(truth2)
    before = hashes(pred)
    err = _refused(capsys, ["evaluate", "--truth", str(truth2), "--pred", str(pred), "--out", str(root)])
    assert "prediction" in err and str(root) in err
    assert not list(root.glob("evaluation_*")) and hashes(pred) == before


def test_python_api_refuses_too(folders):
    root, truth, pred = folders
    with pytest.raises(InputError, match="truth"):
        unetkit.evaluate(truth, pred, "binary", out=truth)


def test_out_over_an_input_file_is_refused(tmp_path, capsys, hashes):
    """Multiclass writes confusion_matrix.png: a prediction of that name in --out is never overwritten."""
    labels = np.zeros((8, 8), np.uint8)
    labels[:4] = 1
    pred = tmp_path / "pred"
    for name in ("confusion_matrix", "x"):
        write_labels(tmp_path / "truth" / f"{name}.png", labels)
        write_labels(pred / f"{name}.png", labels)
    before = hashes(pred)
    err = _refused(capsys, ["evaluate", "--task", "multiclass", "--num-classes", "2", "--truth",
                            str(tmp_path / "truth"), "--pred", str(pred), "--out", str(pred)])
    assert "confusion_matrix.png" in err and "input" in err
    assert hashes(pred) == before


def test_out_beside_the_predictions_is_still_the_default(folders, capsys):
    _, truth, pred = folders
    assert main(["evaluate", "--truth", str(truth), "--pred", str(pred)]) == 0
    assert (pred / "evaluation_binary.csv").is_file()
    assert main(["evaluate", "--truth", str(truth), "--pred", str(pred), "--out", str(pred)]) == 0  # rerun
