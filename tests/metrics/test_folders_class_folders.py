"""Multiclass evaluation against a class-folders truth (image folder + one binary mask folder per class)."""

import json
from pathlib import Path

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.data.io import write_png
from unetkit.errors import InputError
from unetkit.metrics.folders import evaluate_binary, evaluate_multiclass

H, W = 6, 5


def _rows(first: int, last: int) -> np.ndarray:
    """A (6, 5) 0/255 mask on rows first..last."""
    mask = np.zeros((H, W), np.uint8)
    mask[first : last + 1] = 255
    return mask


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    """Truth slices/ + a/ + b/ with two images, and class-id predictions as `unetkit predict` may write them.

    img0: a = rows 0-2, b = rows 2-3 (overlap: row 2). a first -> a rows 0-2, b row 3; b first -> a rows
    0-1, b rows 2-3. Prediction: a rows 0-1, b rows 2-3, background rows 4-5 (= the b-first merge).
    img1: a empty, b = column 0. Prediction: b on columns 0-1.
    """
    truth = tmp_path / "truth"
    pred = tmp_path / "pred"
    b1 = np.zeros((H, W), np.uint8)
    b1[:, 0] = 255
    for name, a, b in (("img0", _rows(0, 2), _rows(2, 3)), ("img1", np.zeros((H, W), np.uint8), b1)):
        write_png(truth / "slices" / f"{name}.png", np.full((H, W), 100, np.uint8))
        write_png(truth / "a" / f"{name}.png", a)
        write_png(truth / "b" / f"{name}.png", b)
    pred0 = np.zeros((H, W), np.uint8)
    pred0[0:2], pred0[2:4] = 1, 2
    pred1 = np.zeros((H, W), np.uint8)
    pred1[:, 0:2] = 2
    write_png(pred / "masks" / "img0.png", pred0)  # the masks/ folder of unetkit predict
    write_png(pred / "img1_mask.png", pred1)
    return truth, pred


def test_classes_from_folders_and_class_order_priority(folders):
    truth, pred = folders
    result = evaluate_multiclass(truth, pred, None)
    assert result.summary["class_names"] == ["background", "a", "b"]
    # img0: truth bg 10 | a 15 (10 -> a, 5 -> b) | b 5 (-> b); img1: truth bg 24 (18 -> bg, 6 -> b) | b 6 (-> b)
    assert result.summary["confusion_matrix"] == [[28, 0, 6], [0, 10, 5], [0, 0, 11]]
    # bg 56/62; a: TP 10, FN 5 -> 20/25; b: TP 11, FP 11 -> 22/33
    assert result.summary["per_class_dice"] == pytest.approx([28 / 31, 0.8, 2 / 3])
    assert result.rows[0]["name"] == "img0"
    assert result.rows[0]["dice_a"] == pytest.approx(0.8) and result.rows[0]["dice_b"] == pytest.approx(2 / 3)
    assert np.isnan(result.rows[1]["dice_a"]) and result.rows[1]["dice_b"] == pytest.approx(2 / 3)


def test_priority_changes_the_merged_truth(folders):
    truth, pred = folders
    result = evaluate_multiclass(truth, pred, 3, class_priority=["b"])
    # img0 now matches exactly; b: TP 16, FP 6 (img1) -> 32/38
    assert result.summary["confusion_matrix"] == [[28, 0, 6], [0, 10, 0], [0, 0, 16]]
    assert result.summary["per_class_dice"] == pytest.approx([28 / 31, 1.0, 16 / 19])
    assert result.rows[0]["mean_dice"] == 1.0


def test_class_names_name_the_folders(folders):
    truth, pred = folders
    result = evaluate_multiclass(truth, pred, None, class_names=["bg", "a", "b"], class_priority=["b"])
    assert result.summary["class_names"] == ["bg", "a", "b"]
    with pytest.raises(InputError, match="no mask folder for class"):
        evaluate_multiclass(truth, pred, None, class_names=["bg", "a", "c"])


def test_clear_errors(folders, tmp_path):
    truth, pred = folders
    with pytest.raises(InputError, match=r"--num-classes 4 but .* has 3 classes \(background, a, b\)"):
        evaluate_multiclass(truth, pred, 4)
    with pytest.raises(InputError, match="not classes"):
        evaluate_multiclass(truth, pred, None, class_priority=["c"])
    with pytest.raises(InputError, match="multiclass only"):
        evaluate_binary(truth, pred)
    (pred / "img1_mask.png").unlink()
    with pytest.raises(InputError, match="img1.png"):
        evaluate_multiclass(truth, pred, None)
    write_png(tmp_path / "ids" / "img0.png", np.zeros((H, W), np.uint8))  # class-id truth images
    with pytest.raises(InputError, match="--class-priority applies to a class-folders truth"):
        evaluate_multiclass(tmp_path / "ids", pred, 3, class_priority=["b"])
    with pytest.raises(InputError, match="--num-classes"):
        evaluate_multiclass(tmp_path / "ids", pred, None)


def test_cli_class_priority_json(folders, tmp_path, capsys):
    truth, pred = folders
    code = main(["evaluate", "--task", "multiclass", "--truth", str(truth), "--pred", str(pred),
                 "--class-priority", "b", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["class_names"] == ["background", "a", "b"] and summary["images"] == 2
    assert summary["per_class_dice"] == pytest.approx([28 / 31, 1.0, 16 / 19])
    assert summary["mean_dice"] == pytest.approx((1 + 16 / 19) / 2)
    assert (tmp_path / "out" / "confusion_matrix.csv").is_file()
    code = main(["evaluate", "--task", "multiclass", "--truth", str(truth), "--pred", str(pred),
                 "--num-classes", "5", "--out", str(tmp_path / "out")])
    assert code == 2 and "--num-classes 5" in capsys.readouterr().err
    assert main(["evaluate", "--task", "binary", "--truth", str(truth), "--pred", str(pred),
                 "--class-priority", "b"]) == 2


def test_the_models_recorded_class_order_reads_a_class_folders_truth(tmp_path):
    """em-organelles' classes are not in folder-name order: its predictions scored against class folders (sorted)
    gave each class another's id, and every foreground Dice near 0 without a word. The model's class names, kept in
    prediction.json by predict, now order the truth's classes."""
    import unetkit

    truth, pred = tmp_path / "truth", tmp_path / "pred"
    nucleus, cytoplasm = _rows(0, 1), _rows(2, 4)
    write_png(truth / "images" / "a.png", np.full((H, W), 100, np.uint8))
    write_png(truth / "nucleus" / "a.png", nucleus)
    write_png(truth / "cytoplasm" / "a.png", cytoplasm)
    ids = np.zeros((H, W), np.uint8)
    ids[nucleus > 0], ids[cytoplasm > 0] = 1, 2  # the model's order: background, nucleus, cytoplasm
    write_png(pred / "masks" / "a.png", ids)
    record = {"task": "multiclass", "class_names": ["background", "nucleus", "cytoplasm"]}
    (pred / "prediction.json").write_text(json.dumps(record))
    scores = unetkit.evaluate(truth, pred / "masks", "multiclass")
    assert scores.summary["class_names"] == record["class_names"] and scores.summary["mean_dice"] == 1.0
    explicit = unetkit.evaluate(truth, pred / "masks", "multiclass", class_names=["background", "cytoplasm", "nucleus"])
    assert explicit.summary["mean_dice"] < 0.5  # the user's names win (here: the sorted order, which is wrong)
    write_png(truth / "ids" / "a.png", ids)  # class-id truth: the record gives the number of classes too
    assert unetkit.evaluate(truth / "ids", pred / "masks", "multiclass").summary["mean_dice"] == 1.0
    (pred / "prediction.json").write_text(json.dumps({**record, "class_names": ["background", "nucleus", "axon"]}))
    with pytest.raises(InputError, match="no mask folder for the class.*axon of the model that made"):
        unetkit.evaluate(truth, pred / "masks", "multiclass")
