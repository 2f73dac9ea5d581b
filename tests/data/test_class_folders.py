"""The class-folders layout: detection, class names, priority merge, clear errors; the EPFL folder."""

from pathlib import Path

import numpy as np
import pytest

from unetkit.data.class_folders import (
    class_folder_names,
    find_class_folder_samples,
    is_class_folders,
    load_class_folder_labels,
)
from unetkit.data.io import write_png
from unetkit.errors import InputError

EPFL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epfl-hippocampus" / "train"


def _dataset(root: Path) -> Path:
    """slices/ + organelle/ + rim/: one 4x4 image; the rim overlaps the organelle at one pixel."""
    write_png(root / "slices" / "s0.png", np.arange(16, dtype=np.uint8).reshape(4, 4))
    organelle = np.zeros((4, 4), dtype=np.uint8)
    organelle[1:3, 1:3] = 255
    rim = np.zeros((4, 4), dtype=np.uint8)
    rim[1, 1:] = 255
    write_png(root / "organelle" / "s0.png", organelle)
    write_png(root / "rim" / "s0.png", rim)
    return root


def test_detects_the_layout_and_names_classes_after_the_folders(tmp_path):
    root = _dataset(tmp_path / "d")
    assert is_class_folders(root)
    assert class_folder_names(root) == ["background", "organelle", "rim"]
    assert class_folder_names(root, class_names=["bg", "rim"]) == ["bg", "rim"]
    (root / "masks").mkdir()
    assert not is_class_folders(root)  # a masks/ folder makes it a folders dataset


def test_samples_hold_one_mask_per_class_merged_by_priority(tmp_path):
    root = _dataset(tmp_path / "d")
    [sample] = find_class_folder_samples(root)
    assert [p.parent.name for p in sample.label_paths] == ["organelle", "rim"]
    rim_first = load_class_folder_labels(sample, [2, 1], (4, 4))
    assert rim_first.tolist() == [[0, 0, 0, 0], [0, 2, 2, 2], [0, 1, 1, 0], [0, 0, 0, 0]]
    organelle_first = load_class_folder_labels(sample, [1, 2], (4, 4))
    assert organelle_first[1].tolist() == [0, 1, 1, 2]
    with pytest.raises(InputError, match="mask of shape"):
        load_class_folder_labels(sample, [1, 2], (5, 4))


def test_missing_masks_and_folders_are_named(tmp_path):
    root = _dataset(tmp_path / "d")
    write_png(root / "slices" / "s1.png", np.zeros((4, 4), dtype=np.uint8))
    write_png(root / "rim" / "s1.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(InputError, match=r"s1 \(no mask in organelle\).*all zeros"):
        find_class_folder_samples(root)
    with pytest.raises(InputError, match="no mask folder for class.*nucleus"):
        find_class_folder_samples(root, class_names=["background", "nucleus"])
    with pytest.raises(InputError, match="no image folder"):
        class_folder_names(root / "rim")  # a folder of masks, no image folder inside


@pytest.mark.skipif(not EPFL.is_dir(), reason=f"EPFL data not found at {EPFL}")
def test_epfl_hippocampus_reads_as_class_folders():
    assert is_class_folders(EPFL)
    names = class_folder_names(EPFL)
    assert names[0] == "background" and set(names[1:]) == {
        "PSD", "axon", "membranes", "mitochondrial boundaries", "mitochondrion", "vesicles"}
    samples = find_class_folder_samples(EPFL)
    assert len(samples) == 27 and samples[0].image_path.parent.name == "slices"
