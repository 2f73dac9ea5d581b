"""Validation images that are training images (the same file or a copy) are named before training."""

import shutil

import numpy as np
import tifffile

from unetkit.config import RunConfig
from unetkit.data.layouts import find_samples
from unetkit.data.overlap import overlap_note, shared_images
from unetkit.data.synthetic import write_synthetic_dataset
from unetkit.training.data import prepare_data


def test_the_same_folder_a_copy_and_a_look_alike_are_told_apart(tmp_path):
    write_synthetic_dataset(tmp_path / "a", n_images=3, seed=1, shape=(48, 48))
    write_synthetic_dataset(tmp_path / "b", n_images=3, seed=2, shape=(48, 48))  # same sizes, other pixels
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    train = find_samples(tmp_path / "a")
    assert [s.name for s in shared_images(train, find_samples(tmp_path / "a"))] == [s.name for s in train]
    assert len(shared_images(train, find_samples(tmp_path / "copy"))) == 3
    assert shared_images(train, find_samples(tmp_path / "b")) == []
    one_copied = tmp_path / "b" / "images" / "synth_0001.png"
    shutil.copy(tmp_path / "a" / "images" / "synth_0002.png", one_copied)
    assert [s.name for s in shared_images(train, find_samples(tmp_path / "b"))] == ["synth_0001"]
    note = overlap_note(shared_images(train, find_samples(tmp_path / "a")), 3)
    assert note.startswith("note: 3 of 3 validation images are also training images (synth_0000, synth_0001")
    assert overlap_note([], 3) == ""


def test_pages_of_one_stack_are_not_the_same_image(tmp_path):
    """An isbi-stack's samples share a file: page 0 of the training stack is not page 1 of its copy."""
    rng = np.random.default_rng(0)
    for folder in ("train", "val"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "volume.tif", rng.integers(0, 255, (3, 32, 32), dtype=np.uint8),
                         photometric="minisblack")
        tifffile.imwrite(tmp_path / folder / "labels.tif", np.full((3, 32, 32), 255, np.uint8),
                         photometric="minisblack")
        rng = np.random.default_rng(0)  # the val stack is a byte-for-byte copy
    train = find_samples(tmp_path / "train")
    val = find_samples(tmp_path / "val")
    shared = shared_images(train[:1], val)
    assert [s.index for s in shared] == [0]


def test_training_says_so_before_it_starts(tmp_path, capsys):
    write_synthetic_dataset(tmp_path / "d", n_images=2, seed=1, shape=(48, 48))
    prepare_data(RunConfig(), tmp_path / "d", tmp_path / "d")
    assert "note: 2 of 2 validation images are also training images" in capsys.readouterr().err
    write_synthetic_dataset(tmp_path / "v", n_images=1, seed=5, shape=(48, 48))
    prepare_data(RunConfig(), tmp_path / "d", tmp_path / "v")
    assert "validation images are also training images" not in capsys.readouterr().err
