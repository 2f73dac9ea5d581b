"""Synthetic fluorescence nuclei (unetkit.data.synthetic) and the `unetkit synth` command."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from unetkit.cli import main
from unetkit.data.io import read_image, read_labels
from unetkit.data.layouts import find_samples
from unetkit.data.synthetic import make_nuclei_image, write_synthetic_dataset, write_synthetic_splits
from unetkit.errors import InputError


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different ids that are 4-neighbours somewhere."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        touch = (a > 0) & (b > 0) & (a != b)
        pairs.update(zip(np.minimum(a, b)[touch].tolist(), np.maximum(a, b)[touch].tolist(), strict=True))
    return pairs


def test_make_nuclei_image_is_deterministic():
    first = make_nuclei_image(np.random.default_rng(5))
    second = make_nuclei_image(np.random.default_rng(5))
    other = make_nuclei_image(np.random.default_rng(6))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_consecutive_connected_and_plausible(seed):
    image, labels = make_nuclei_image(np.random.default_rng(seed), shape=(256, 256))
    assert image.shape == labels.shape == (256, 256)
    assert image.dtype == np.uint8 and labels.dtype == np.uint16
    ids = np.unique(labels)
    n = int(labels.max())
    np.testing.assert_array_equal(ids, np.arange(n + 1))  # 0 and ids 1..N, none missing
    assert 15 <= n <= 150  # radius 5-16 px at ~22% cover of 256x256
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() >= 30 and areas.max() <= np.pi * 16**2 * 1.5
    for object_id, region in enumerate(ndimage.find_objects(labels), start=1):
        _, parts = ndimage.label(labels[region] == object_id)
        assert parts == 1  # each nucleus is one piece
    assert len(_touching_pairs(labels)) >= 3  # clustered nuclei touch


def test_nuclei_are_brighter_than_background():
    image, labels = make_nuclei_image(np.random.default_rng(0))
    inside, outside = image[labels > 0].astype(float), image[labels == 0].astype(float)
    assert np.median(inside) > 3 * np.median(outside)
    # Dim nuclei exist: the faintest nucleus is well below the typical one.
    means = ndimage.mean(image, labels, index=np.arange(1, labels.max() + 1))
    assert means.min() < 0.7 * np.median(means)


def test_bit_depth_16_and_odd_shape():
    image, labels = make_nuclei_image(np.random.default_rng(1), shape=(61, 77), bit_depth=16)
    assert image.dtype == np.uint16 and image.shape == labels.shape == (61, 77)
    assert image.max() > 255
    with pytest.raises(InputError, match="bit_depth"):
        make_nuclei_image(np.random.default_rng(1), bit_depth=12)


def test_fast_enough():
    rng = np.random.default_rng(0)
    make_nuclei_image(rng)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        make_nuclei_image(rng)
    assert (time.perf_counter() - start) / 3 < 0.25  # target is < 0.1 s; slack for busy test machines


def test_dataset_files_byte_identical_and_readable(tmp_path):
    paths_a = write_synthetic_dataset(tmp_path / "a", 3, seed=7, sizes=[(64, 80), (65, 81), (70, 70)])
    write_synthetic_dataset(tmp_path / "b", 3, seed=7, sizes=[(64, 80), (65, 81), (70, 70)])
    assert [p.name for p in paths_a] == ["synth_0000.png", "synth_0001.png", "synth_0002.png"]
    for folder, ext in (("images", "png"), ("masks", "tif")):
        for i in range(3):
            name = f"{folder}/synth_{i:04d}.{ext}"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert read_image(paths_a[1]).shape == (1, 65, 81)
    assert read_labels(tmp_path / "a" / "masks" / "synth_0001.tif").shape == (65, 81)
    assert len(find_samples(tmp_path / "a")) == 3

    write_synthetic_dataset(tmp_path / "a", 2, seed=7, shape=(40, 40))  # rewrite smaller: stale files go
    assert len(find_samples(tmp_path / "a")) == 2


def test_splits_mixed_odd_sizes_and_distinct_seeds(tmp_path):
    splits = write_synthetic_splits(tmp_path, seed=0, n_train=3, n_val=1, n_test=2)
    assert set(splits) == {"train", "val", "test"}
    shapes = {name: [read_labels(s.label_paths[0]).shape for s in find_samples(path)]
              for name, path in splits.items()}
    assert [len(v) for v in shapes.values()] == [3, 1, 2]
    for sizes in shapes.values():
        assert sizes[0][0] % 2 == 1 and sizes[0][1] % 2 == 1  # first image has odd sides
        assert all(200 <= side <= 400 for size in sizes for side in size)
    first = {name: (path / "images" / "synth_0000.png").read_bytes() for name, path in splits.items()}
    assert len(set(first.values())) == 3  # each split draws its own images


def test_cli_synth_single_folder(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "one"), "--n", "2", "--size", "48", "40"]) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    assert read_image(tmp_path / "one" / "images" / "synth_0001.png").shape == (1, 48, 40)
    assert main(["synth", "--out", str(tmp_path / "bad"), "--n", "0"]) == 2  # clean error, no traceback


def test_cli_synth_never_writes_over_or_into_an_existing_dataset(tmp_path, capsys):
    import hashlib

    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--n", "2", "--size", "48", "40"]) == 0
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*") if p.is_file()}
    for argv in (["--n", "3", "--size", "32", "32"], ["--n-train", "1", "--n-val", "1", "--n-test", "1"]):
        assert main(["synth", "--out", str(data), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--out {data} already exists and is not an empty folder" in err
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*") if p.is_file()} == before
    (tmp_path / "empty").mkdir()
    assert main(["synth", "--out", str(tmp_path / "empty"), "--n", "1", "--size", "32", "32"]) == 0  # empty: fine
