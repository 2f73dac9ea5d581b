"""Dataset layouts: detection, sample pairing, loading and splitting (unetkit.data.layouts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unetkit.data.io import write_labels, write_png, write_tiff
from unetkit.data.layouts import (
    Sample,
    detect_layout,
    find_images,
    find_samples,
    load_image,
    load_labels,
    load_sample,
    split_samples,
)
from unetkit.errors import InputError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _image(shape=(8, 10), value_step=1) -> np.ndarray:
    return (np.arange(np.prod(shape)) * value_step % 256).reshape(shape).astype(np.uint8)


def _folders(root: Path, image_names, mask_names, mask_dir="masks") -> Path:
    for name in image_names:
        write_png(root / "images" / f"{name}.png", _image())
    for name in mask_names:
        write_labels(root / mask_dir / f"{name}.tif", (_image() > 40).astype(np.uint16))
    return root


def _dsb(root: Path, ident: str, masks: list[np.ndarray], shape=(8, 10)) -> Path:
    write_png(root / ident / "images" / f"{ident}.png", np.stack([_image(shape)] * 3))  # (3, H, W)
    (root / ident / "masks").mkdir(parents=True, exist_ok=True)
    for i, mask in enumerate(masks):
        write_png(root / ident / "masks" / f"m{i:02d}.png", mask.astype(np.uint8) * 255)
    return root / ident


# ---------------------------------------------------------------------------------------------- detection


def test_detect_each_layout(tmp_path):
    assert detect_layout(_folders(tmp_path / "f", ["a"], ["a"])) == "folders"
    mask = np.zeros((8, 10), bool)
    mask[2:4, 2:4] = True
    _dsb(tmp_path / "d", "id1", [mask])
    assert detect_layout(tmp_path / "d") == "dsb"
    write_tiff(tmp_path / "s" / "train-volume.tif", np.zeros((3, 8, 10), np.uint8))
    write_tiff(tmp_path / "s" / "train-labels.tif", np.zeros((3, 8, 10), np.uint8))
    assert detect_layout(tmp_path / "s") == "isbi-stack"
    write_png(tmp_path / "i" / "x.png", _image())
    assert detect_layout(tmp_path / "i") == "images"


def test_detect_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        detect_layout(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt.*expected one of"):
        detect_layout(tmp_path / "odd")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        detect_layout(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------- folders


def test_folders_pair_by_stem_sorted_and_labels_dir(tmp_path):
    root = _folders(tmp_path, ["b", "a", "c"], ["c", "a", "b"], mask_dir="labels")
    samples = find_samples(root)
    assert [s.name for s in samples] == ["a", "b", "c"]
    assert samples[0].image_path.name == "a.png" and samples[0].label_paths[0] == root / "labels" / "a.tif"
    image, labels = load_sample(samples[0])
    assert image.shape == (1, 8, 10) and image.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, _image() > 40)


def test_folders_unpaired_files_are_named(tmp_path):
    names = [f"img{i:02d}" for i in range(13)]
    root = _folders(tmp_path, names + ["lonely"], names[:1] + ["orphan"])
    with pytest.raises(InputError) as error:
        find_samples(root)
    message = str(error.value)
    assert "13 image(s)" in message and "img01" in message and "and 3 more" in message
    assert "orphan" in message and "1 mask(s)" in message


def test_folders_without_masks(tmp_path):
    root = _folders(tmp_path, ["a", "b"], [])
    with pytest.raises(InputError, match="masks/"):
        find_samples(root)
    samples = find_samples(root, require_labels=False)
    assert [s.label_paths for s in samples] == [(), ()]
    with pytest.raises(InputError, match="no label file"):
        load_labels(samples[0])


def test_folders_masks_but_no_images_and_empty(tmp_path):
    root = _folders(tmp_path / "m", [], ["a"])
    (root / "images").mkdir()
    with pytest.raises(InputError, match="holds 1 masks"):
        find_samples(root)
    (tmp_path / "e" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="no images"):
        find_samples(tmp_path / "e", require_labels=False)


def test_size_mismatch_names_both_files(tmp_path):
    write_png(tmp_path / "images" / "a.png", _image((8, 10)))
    write_labels(tmp_path / "masks" / "a.png", np.zeros((8, 9), np.uint16))
    (sample,) = find_samples(tmp_path)
    with pytest.raises(InputError, match=r"images/a\.png is 8x10.*masks/a\.png are 8x9"):
        load_sample(sample)


# ---------------------------------------------------------------------------------------------- dsb


def test_dsb_masks_merge_to_ids_in_file_order(tmp_path):
    first, second = np.zeros((8, 10), bool), np.zeros((8, 10), bool)
    first[1:3, 1:4] = True
    second[5:7, 6:9] = True
    _dsb(tmp_path, "b_id", [first, second])
    _dsb(tmp_path, "a_id", [second])
    samples = find_samples(tmp_path)
    assert [s.name for s in samples] == ["a_id", "b_id"]
    image, labels = load_sample(samples[1])
    assert image.shape == (3, 8, 10)
    expected = first.astype(np.int32) + 2 * second
    np.testing.assert_array_equal(labels, expected)


def test_dsb_errors_name_the_id(tmp_path):
    mask = np.ones((8, 10), bool)
    _dsb(tmp_path, "good", [mask])
    _dsb(tmp_path, "nomasks", [])
    with pytest.raises(InputError, match="nomasks.*no mask files"):
        find_samples(tmp_path)
    assert len(find_samples(tmp_path, require_labels=False)) == 2

    other = tmp_path / "other"
    _dsb(other, "x", [mask])
    write_png(other / "x" / "masks" / "m99.png", np.zeros((8, 9), np.uint8))
    (sample,) = find_samples(other)
    with pytest.raises(InputError, match="m99.png.*shape"):
        load_labels(sample)


# ---------------------------------------------------------------------------------------------- isbi stack


def test_isbi_stack_one_sample_per_page(tmp_path):
    volume = np.stack([_image(value_step=k + 1) for k in range(3)])  # (3, 8, 10)
    labels = (volume > 100).astype(np.uint8) * 255
    write_tiff(tmp_path / "train-volume.tif", volume)
    write_tiff(tmp_path / "train-labels.tif", labels)
    samples = find_samples(tmp_path)
    assert [s.index for s in samples] == [0, 1, 2]
    assert samples[1].name == "train-volume_001"
    image, label = load_sample(samples[2])
    assert image.shape == (1, 8, 10)
    np.testing.assert_array_equal(label, labels[2])
    np.testing.assert_allclose(image[0], load_image(Sample("x", tmp_path / "train-volume.tif", (), 2))[0])

    write_tiff(tmp_path / "train-labels.tif", labels[:2])
    with pytest.raises(InputError, match="3 pages.*has 2"):
        find_samples(tmp_path)


# ---------------------------------------------------------------------------------------------- prediction


def test_find_images_files_folders_and_dsb(tmp_path):
    write_png(tmp_path / "flat" / "b.png", _image())
    write_png(tmp_path / "flat" / "a.tif.png", _image())
    (tmp_path / "flat" / "readme.txt").write_text("ignored")
    _dsb(tmp_path / "dsb", "id1", [np.ones((8, 10), bool)])
    single = write_png(tmp_path / "single.png", _image())
    found = find_images([tmp_path / "flat", tmp_path / "dsb", single, single])
    assert found == sorted(found) and len(found) == 4
    assert tmp_path / "dsb" / "id1" / "images" / "id1.png" in found
    with pytest.raises(FileNotFoundError, match="missing"):
        find_images([tmp_path / "missing"])
    (tmp_path / "void").mkdir()
    with pytest.raises(InputError, match="no images"):
        find_images([tmp_path / "void"])


def test_split_samples_fixed_and_non_empty():
    samples = [Sample(f"s{i}", Path(f"s{i}.png")) for i in range(10)]
    train, val = split_samples(samples, 0.15, seed=3)
    assert len(val) == 2 and len(train) == 8  # round(1.5) = 2
    assert sorted(s.name for s in train + val) == sorted(s.name for s in samples)
    assert split_samples(samples, 0.15, seed=3) == (train, val)
    assert split_samples(samples, 0.15, seed=4) != (train, val)
    train2, val2 = split_samples(samples[:2], 0.01, seed=0)
    assert len(train2) == 1 and len(val2) == 1
    assert split_samples(samples[:1], 0.5, seed=0) == (samples[:1], [])
    with pytest.raises(InputError, match="val_fraction"):
        split_samples(samples, 1.0, seed=0)


# ---------------------------------------------------------------------------------------------- real data


def test_real_dsb_ids():
    root = DATA / "dsb2018" / "stage1_train"
    if not root.is_dir():
        pytest.skip(f"DSB 2018 data not available at {root}")
    samples = find_samples(root)
    assert len(samples) == 531
    for sample in samples[:3]:
        image, labels = load_sample(sample)
        assert image.shape[0] == 3 and image.dtype == np.float32
        assert len(np.unique(labels)) - 1 == len(sample.label_paths)  # one id per mask file


def test_real_isbi_folders():
    root = DATA / "isbi2012" / "train"
    if not root.is_dir():
        pytest.skip(f"ISBI 2012 data not available at {root}")
    samples = find_samples(root)  # images/ + labels/
    assert len(samples) == 25
    image, labels = load_sample(samples[0])
    assert image.shape == (1, 512, 512) and set(np.unique(labels)) == {0, 255}


def test_images_left_in_subfolders_are_counted_outside_the_output_and_hidden_folders(tmp_path):
    from unetkit.data.layouts import images_left_in_subfolders

    image = np.zeros((8, 8), dtype=np.uint8)
    for name in ("top.png", "sub/a.png", "sub/deeper/b.tif", ".hidden/c.png", "pred/masks/top.png", "sub/notes.txt"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            (tmp_path / "in" / name).write_text("not an image")
        else:
            write_png(tmp_path / "in" / name, image) if name.endswith(".png") else write_tiff(tmp_path / "in" / name,
                                                                                              image)
    count, folders = images_left_in_subfolders([tmp_path / "in"], exclude=[tmp_path / "in" / "pred"])
    assert count == 2 and folders == [tmp_path / "in" / "sub", tmp_path / "in" / "sub" / "deeper"]
    assert images_left_in_subfolders([tmp_path / "in" / "top.png"]) == (0, [])  # files: nothing to leave aside
    assert images_left_in_subfolders([tmp_path / "in", tmp_path / "in" / "sub"],
                                     exclude=[tmp_path / "in" / "pred"])[0] == 1  # sub/ given too: only deeper/


def test_a_quoted_pattern_stands_for_the_files_it_matches(tmp_path):
    """``predict "images/*.png"`` (quoted, or from a script: no shell expanded it) was 'input not found'."""
    from unetkit.data.layouts import find_images
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "d", n_images=3, seed=1, shape=(32, 32))
    images = tmp_path / "d" / "images"
    assert find_images([str(images / "*.png")]) == sorted(images.glob("*.png"))
    assert [p.name for p in find_images([str(images / "synth_000[02].png")])] == ["synth_0000.png", "synth_0002.png"]
    with pytest.raises(FileNotFoundError, match="no file matches the pattern"):
        find_images([str(images / "*.jpg")])


def test_numpy_arrays_given_to_predict_are_sent_where_they_are_read(tmp_path):
    from unetkit.data.layouts import find_images

    np.save(tmp_path / "a.npy", np.zeros((8, 8), np.uint8))
    for inputs in ([tmp_path], [tmp_path / "a.npy"]):
        with pytest.raises(InputError, match="numpy arrays .* `unetkit predict-large`"):
            find_images(inputs)


def test_a_folder_contributes_its_ome_zarr_images(tmp_path):
    """An OME-Zarr image is a folder: a folder holding a.png and b.ome.zarr predicted a.png alone, and one holding
    only b.ome.zarr said 'no images found'."""
    from unetkit.data.io import write_png
    from unetkit.data.layouts import find_images

    folder = tmp_path / "in"
    (folder / "b.ome.zarr").mkdir(parents=True)
    (folder / "b.ome.zarr" / "zarr.json").write_text("{}")
    assert find_images([folder]) == [folder / "b.ome.zarr"]
    write_png(folder / "a.png", np.zeros((4, 4), np.uint8))
    (folder / "notes").mkdir()  # a plain sub-folder is no image
    assert find_images([folder]) == [folder / "a.png", folder / "b.ome.zarr"]


def test_a_link_to_a_missing_image_is_named(tmp_path):
    """A broken link among the images was left out without a word by predict, and reported by train as a mask
    without an image."""
    import os

    from unetkit.data.layouts import find_images, find_samples
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "d", n_images=2, seed=0, shape=(32, 32))
    image = next((tmp_path / "d" / "images").iterdir())
    image.unlink()
    os.symlink(tmp_path / "gone.png", image)
    for call in (lambda: find_images([tmp_path / "d" / "images"]), lambda: find_samples(tmp_path / "d")):
        with pytest.raises(InputError, match=f"{image.name}: a link to .*gone.png, which does not exist"):
            call()
