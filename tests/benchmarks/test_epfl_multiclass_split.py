"""benchmarks/epfl_multiclass.py: the fixed splits (which slices validate, links not copies) and the
merged-class Dice, on a tiny class-folders dataset and hand-made confusion matrices."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from epfl_multiclass import CLASSES, SPLITS, make_split, merged_dice, validation_names  # noqa: E402

from unetkit.data.io import write_png  # noqa: E402

NAMES = [f"training{i:04d}.png" for i in (0, 1, 2, 3, 13, 17, 24, 28, 42, 135, 161, 162, 163, 164)]


def test_axon_split_validates_the_first_four_slices_and_keeps_other_axon_slices_for_training():
    val = validation_names(NAMES, "axon")
    assert val == ["training0000.png", "training0001.png", "training0002.png", "training0003.png"]
    axon_slices = {f"training{i:04d}.png" for i in (0, 1, 2, 3, 13, 17, 24, 28)}  # the slices holding axon
    assert len(axon_slices & set(val)) >= 2 and len(axon_slices - set(val)) >= 1
    assert validation_names(NAMES, "last5") == NAMES[-5:]


def test_a_split_whose_slices_are_missing_is_refused():
    with pytest.raises(ValueError, match="training0000.png"):
        validation_names(NAMES[1:], "axon")
    with pytest.raises(ValueError, match="others to train on"):
        validation_names(SPLITS["axon"], "axon")


def test_make_split_links_every_class_folder_into_train_and_val(tmp_path):
    data = tmp_path / "data"
    folders = [CLASSES[0], CLASSES[-1]]
    for folder in ["slices", *folders]:
        for name in NAMES:
            write_png(data / folder / name, np.zeros((4, 4), np.uint8))
    train, val, val_names = make_split(data, folders, tmp_path / "split", "axon")
    assert val_names == SPLITS["axon"]
    for folder in ["slices", *folders]:
        assert sorted(p.name for p in (val / folder).iterdir()) == SPLITS["axon"]
        assert sorted(p.name for p in (train / folder).iterdir()) == NAMES[4:]
        assert all(p.is_symlink() for p in (train / folder).iterdir())
    make_split(data, folders, tmp_path / "split", "axon")  # a second call reuses the links


def test_merged_dice_pools_the_classes_before_scoring():
    # truth rows, prediction columns: background, interior, rim
    cm = np.array([[90, 1, 1],
                   [0, 6, 2],   # 2 interior pixels called rim: wrong per class, right for the organelle
                   [1, 1, 4]])
    # organelle = classes 1 + 2: TP = 6 + 2 + 1 + 4 = 13, FP = 1 + 1 = 2, FN = 0 + 1 = 1
    assert merged_dice(cm, [1, 2]) == pytest.approx(26 / 29)
    assert merged_dice(cm, [1]) == pytest.approx(12 / (12 + 1 + 1 + 2))
    assert np.isnan(merged_dice(np.zeros((3, 3)), [1]))
