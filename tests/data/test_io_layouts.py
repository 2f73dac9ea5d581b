"""Readers, dataset layouts and their errors: fixtures made here, plus a few real images."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.data.io import normalize_percentile, read_image, read_labels, read_stack
from unetkit.data.layouts import detect_layout, find_images, find_samples, load_sample, split_samples
from unetkit.errors import InputError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_image_formats(tmp_path):
    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 255, (7, 9), dtype=np.uint8)
    gray16 = rng.integers(0, 65535, (7, 9), dtype=np.uint16)
    rgb = rng.integers(0, 255, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((7, 9), 255, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([gray8, np.full((7, 9), 255, np.uint8)]), mode="LA").save(tmp_path / "la.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    tifffile.imwrite(tmp_path / "g16.tif", gray16)
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([gray8, gray8 + 1, gray8 // 2]), photometric="minisblack")

    assert np.array_equal(read_image(tmp_path / "g8.png"), gray8[None])
    assert read_image(tmp_path / "g16.png").dtype == np.uint16
    assert np.array_equal(read_image(tmp_path / "g16.png")[0], gray16)
    assert np.array_equal(read_image(tmp_path / "rgb.png"), np.moveaxis(rgb, -1, 0))
    assert np.array_equal(read_image(tmp_path / "rgba.png"), np.moveaxis(rgb, -1, 0))  # alpha dropped
    assert np.array_equal(read_image(tmp_path / "la.png"), gray8[None])  # gray + alpha -> gray
    assert read_image(tmp_path / "rgb.jpg").shape == (3, 7, 9)
    assert np.array_equal(read_image(tmp_path / "g16.tif")[0], gray16)
    assert read_stack(tmp_path / "stack.tif").shape == (3, 7, 9)


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="broken.png"):
        read_image(tmp_path / "broken.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="notes.txt"):
        read_image(tmp_path / "notes.txt")
    Image.fromarray(np.dstack([np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8) * 9,
                               np.zeros((4, 4), np.uint8)])).save(tmp_path / "colour_mask.png")
    with pytest.raises(InputError, match="colour"):
        read_labels(tmp_path / "colour_mask.png")


def test_percentile_normalisation():
    image = np.arange(1000, dtype=np.float32).reshape(1, 10, 100)
    out = normalize_percentile(image, 1, 99)
    assert out.dtype == np.float32
    assert np.isclose(np.percentile(out, 1), 0, atol=1e-6) and np.isclose(np.percentile(out, 99), 1, atol=1e-6)
    assert np.all(normalize_percentile(np.full((1, 4, 4), 7.0)) == 0)  # constant: zeros, no NaN


def _folders(root, names=("a", "b", "c"), shape=(8, 8)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in names:
        Image.fromarray(np.zeros(shape, np.uint8)).save(root / "images" / f"{name}.png")
        tifffile.imwrite(root / "masks" / f"{name}.tif", np.ones(shape, np.uint16))


def test_folders_layout_pairs_by_stem_and_names_problems(tmp_path):
    _folders(tmp_path / "ok")
    samples = find_samples(tmp_path / "ok")
    assert detect_layout(tmp_path / "ok") == "folders" and [s.name for s in samples] == ["a", "b", "c"]
    image, labels = load_sample(samples[0])
    assert image.shape == (1, 8, 8) and labels.shape == (8, 8)

    _folders(tmp_path / "unpaired")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "unpaired" / "images" / "lonely.png")
    with pytest.raises(InputError, match="lonely"):
        find_samples(tmp_path / "unpaired")

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        find_samples(tmp_path / "empty")

    _folders(tmp_path / "mismatch")
    tifffile.imwrite(tmp_path / "mismatch" / "masks" / "b.tif", np.ones((9, 8), np.uint16))
    with pytest.raises(InputError, match=r"b\.png.*b\.tif|b\.tif.*b\.png"):
        load_sample(find_samples(tmp_path / "mismatch")[1])


def test_dsb_layout_merges_masks_and_reports_missing_masks(tmp_path):
    for image_id, n_masks in (("id1", 2), ("id2", 0)):
        (tmp_path / image_id / "images").mkdir(parents=True)
        (tmp_path / image_id / "masks").mkdir()
        Image.fromarray(np.zeros((6, 6, 4), np.uint8)).save(tmp_path / image_id / "images" / f"{image_id}.png")
        for k in range(n_masks):
            mask = np.zeros((6, 6), np.uint8)
            mask[k * 3:(k + 1) * 3, :2] = 255
            Image.fromarray(mask).save(tmp_path / image_id / "masks" / f"m{k}.png")
    assert detect_layout(tmp_path) == "dsb"
    with pytest.raises(InputError, match="id2"):
        find_samples(tmp_path)
    only = find_samples(tmp_path, require_labels=False)
    image, labels = load_sample(only[0])
    assert image.shape == (3, 6, 6) and sorted(np.unique(labels)) == [0, 1, 2]


def test_split_is_fixed_and_find_images_expands_folders(tmp_path):
    _folders(tmp_path / "d", names=[f"n{i}" for i in range(10)])
    samples = find_samples(tmp_path / "d")
    train, val = split_samples(samples, 0.15, seed=0)
    assert len(val) == 2 and len(train) == 8 and split_samples(samples, 0.15, 0)[1] == val
    assert len(find_images([tmp_path / "d"])) == 10


@pytest.mark.skipif(not (SHARED / "dsb2018").is_dir(), reason="../shared/data is absent")
def test_real_dsb_isbi_and_epfl_images():
    root = SHARED / "dsb2018" / "stage1_train"
    for sample in find_samples(root)[:2]:
        image, labels = load_sample(sample)
        assert image.shape[0] == 3 and image.dtype == np.float32
        assert labels.max() == len(sample.label_paths)  # one id per nucleus mask file
    isbi = read_image(SHARED / "isbi2012" / "train" / "images" / "slice00.png")
    assert isbi.shape == (1, 512, 512)
    epfl = sorted((SHARED / "epfl-hippocampus" / "train" / "slices").glob("*.png"))[0]
    assert read_image(epfl).shape[1:] == (768, 1024)
