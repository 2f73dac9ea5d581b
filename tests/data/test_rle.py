"""Kaggle DSB run-length encoding: hand-computed strings, round trips and submission files."""

import csv
from pathlib import Path

import numpy as np
import pytest

from unetkit.data.rle import (
    image_id,
    labels_to_rles,
    read_submission,
    rle_decode,
    rle_encode,
    rles_to_labels,
    write_submission,
)
from unetkit.errors import InputError


def test_rle_encode_by_hand():
    # Column-major numbering of a 3 x 3 image: column 0 is pixels 1-3, column 1 is 4-6, column 2 is 7-9.
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 0] = mask[1, 0] = mask[0, 2] = True
    assert rle_encode(mask) == "1 2 7 1"
    # A run continues from the bottom of one column to the top of the next: (2, 0), (0, 1) -> 3, 4.
    wrap = np.zeros((3, 3), dtype=bool)
    wrap[2, 0] = wrap[0, 1] = True
    assert rle_encode(wrap) == "3 2"
    assert rle_encode(np.ones((2, 2), dtype=bool)) == "1 4"
    assert rle_encode(np.zeros((2, 2), dtype=bool)) == ""
    assert labels_to_rles(np.zeros((2, 2), dtype=np.int32)) == []


def test_rle_decode_by_hand_and_errors():
    expected = np.zeros((3, 3), dtype=bool)
    expected[0, 0] = expected[1, 0] = expected[0, 2] = True
    assert np.array_equal(rle_decode("1 2 7 1", (3, 3)), expected)
    assert not rle_decode("", (3, 3)).any()
    with pytest.raises(InputError, match="odd number"):
        rle_decode("1 2 7", (3, 3))
    with pytest.raises(InputError, match="end within"):
        rle_decode("8 3", (3, 3))
    with pytest.raises(InputError, match="overlap"):
        rle_decode("1 3 2 1", (3, 3))
    with pytest.raises(InputError, match="integers"):
        rle_decode("1 a", (3, 3))


def random_labels(rng: np.random.Generator, shape=(37, 53), objects=12) -> np.ndarray:
    """Random rectangles painted over each other (later ones win), some ids missing, some split."""
    labels = np.zeros(shape, dtype=np.int32)
    for i in range(1, objects + 1):
        y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
        h, w = rng.integers(1, 12, size=2)
        labels[y : y + h, x : x + w] = i * 3  # ids 3, 6, 9, ...: not consecutive
    return labels


@pytest.mark.parametrize("seed", range(5))
def test_labels_round_trip(seed):
    labels = random_labels(np.random.default_rng(seed))
    rles = labels_to_rles(labels)
    ids = np.unique(labels[labels > 0])
    assert len(rles) == ids.size  # one per present id, empty ids skipped
    for rle, i in zip(rles, ids, strict=True):
        assert rle == rle_encode(labels == i)  # the one-pass encoder agrees with the per-mask one
    back = rles_to_labels(rles, labels.shape)
    # Identical up to relabelling: object k of the result is the k-th present id.
    assert np.array_equal(back, np.searchsorted(ids, labels) * (labels > 0) + (labels > 0))


def test_rles_to_labels_refuses_overlaps():
    with pytest.raises(InputError, match="overlaps object 1"):
        rles_to_labels(["1 3", "3 2"], (3, 3))


def test_image_id_strips_known_suffixes():
    assert image_id("abc123_labels.tif") == "abc123"
    assert image_id("abc123.png") == "abc123"
    assert image_id("a_b_pred.tiff") == "a_b"
    assert image_id("_labels.tif") == "_labels"


def test_write_and_read_submission(tmp_path):
    from unetkit.data.io import write_labels

    rng = np.random.default_rng(0)
    first = random_labels(rng)
    write_labels(tmp_path / "pred" / "img1_labels.tif", first)
    write_labels(tmp_path / "pred" / "img2.png", np.zeros((8, 9), dtype=np.int32))
    counts = write_submission(tmp_path / "pred", tmp_path / "out" / "submission.csv")
    n_objects = np.unique(first[first > 0]).size
    assert counts == {"images": 2, "objects": n_objects, "rows": n_objects + 1}

    with open(tmp_path / "out" / "submission.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ImageId", "EncodedPixels"]
    assert rows[-1] == ["img2", ""]  # an empty image: one row with empty EncodedPixels
    assert sum(row[0] == "img1" for row in rows) == n_objects

    read = read_submission(tmp_path / "out" / "submission.csv", {"img1": first.shape, "img2": (8, 9)})
    assert np.array_equal(read["img1"] > 0, first > 0)
    assert read["img1"].max() == n_objects and not read["img2"].any()
    with pytest.raises(InputError, match="no shape"):
        read_submission(tmp_path / "out" / "submission.csv", {"img1": first.shape})


def test_a_prediction_folder_is_submitted_from_its_labels(tmp_path):
    """``submit --pred`` on what ``unetkit predict`` wrote: its labels/, not its masks/ or instances/ pictures."""
    from unetkit.data.io import write_labels, write_png

    labels = random_labels(np.random.default_rng(1))
    write_labels(tmp_path / "pred" / "labels" / "img1.tif", labels)
    write_png(tmp_path / "pred" / "masks" / "img1.png", (labels > 0).astype(np.uint8) * 255)
    counts = write_submission(tmp_path / "pred", tmp_path / "s.csv")
    assert counts["objects"] == np.unique(labels[labels > 0]).size
    assert counts == write_submission(tmp_path / "pred" / "labels", tmp_path / "t.csv")
    assert (tmp_path / "s.csv").read_text() == (tmp_path / "t.csv").read_text()


def test_write_submission_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_submission(tmp_path / "missing", tmp_path / "s.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no label images"):
        write_submission(tmp_path / "empty", tmp_path / "s.csv")


DSB = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dsb2018" / "stage1_train"


def test_real_dsb_masks_round_trip(tmp_path):
    if not DSB.is_dir():
        pytest.skip(f"real data not found at {DSB} (the shared data folder is absent)")
    from unetkit.data.io import read_labels, write_labels

    image_dir = sorted(DSB.iterdir())[0]
    masks = [read_labels(path) > 0 for path in sorted((image_dir / "masks").glob("*.png"))]
    labels = np.zeros(masks[0].shape, dtype=np.int32)
    for i, mask in enumerate(masks, start=1):
        labels[mask] = i  # DSB nuclei do not overlap
    write_labels(tmp_path / "pred" / f"{image_dir.name}_labels.tif", labels)
    counts = write_submission(tmp_path / "pred", tmp_path / "s.csv")
    assert counts["objects"] == len(masks)
    back = read_submission(tmp_path / "s.csv", {image_dir.name: labels.shape})[image_dir.name]
    for i, mask in enumerate(masks, start=1):  # ids follow file order, which is the masks' order
        assert np.array_equal(back == i, mask)
