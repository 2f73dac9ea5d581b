"""Issue 15, cases 10 and 11: one labelling rule for binary masks in submit and evaluate; stray class
ids and unexpected channel counts are refused with a message instead of silently changing the result."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.cli import main
from unetkit.data.channels import match_channels
from unetkit.data.io import holds_colour, write_png
from unetkit.errors import InputError


def test_submit_splits_binary_masks_into_objects_like_evaluate(tmp_path, capsys):
    mask = np.zeros((32, 32), np.uint8)
    mask[2:8, 2:8] = 255
    mask[20:30, 15:25] = 255  # two separate nuclei in one 0/255 mask
    folder = tmp_path / "pred"
    folder.mkdir()
    Image.fromarray(mask).save(folder / "img.png")
    assert main(["submit", "--pred", str(folder), "--out", str(tmp_path / "s.csv"), "--json"]) == 0
    submitted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert submitted["objects"] == 2
    truth = tmp_path / "truth"
    truth.mkdir()
    labels = np.zeros((32, 32), np.uint16)
    labels[2:8, 2:8], labels[20:30, 15:25] = 1, 2
    tifffile.imwrite(truth / "img.tif", labels)
    assert main(["evaluate", "--task", "instances", "--truth", str(truth), "--pred", str(folder), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["images"] == 1 and evaluated.get("dsb_score", 1.0) == pytest.approx(1.0)


def _multiclass_dataset(root, stray: bool):
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for k in range(3):
        image = rng.integers(0, 255, (32, 32), dtype=np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        mask[4:12, 4:12], mask[16:28, 16:28] = 1, 2
        if stray and k == 1:
            mask[0, 0] = 7
        Image.fromarray(image).save(root / "images" / f"m{k}.png")
        Image.fromarray(mask).save(root / "masks" / f"m{k}.png")


def test_a_stray_class_id_is_refused_not_made_into_classes(tmp_path, capsys, tiny):
    data = tmp_path / "mc"
    _multiclass_dataset(data, stray=True)
    code = main(["train", "--task", "multiclass", "--data", str(data), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--quiet", *tiny])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err, err
    err = err.splitlines()[-1]  # (a progress bar of the class count may come before it)
    assert err.startswith("unetkit train: error: ")
    assert "never 3, 4, 5, 6" in err and "7 in " in err and "m1.png" in err and "--class-names" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_contiguous_class_ids_still_train(tmp_path, tiny):
    data = tmp_path / "mc"
    _multiclass_dataset(data, stray=False)
    assert main(["train", "--task", "multiclass", "--data", str(data), "--val-fraction", "0", "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--quiet", *tiny]) == 0


def test_four_channels_are_not_averaged_into_one():
    image = np.ones((4, 8, 8), np.float32)
    with pytest.raises(InputError, match="x.tif: image has 4 channels but the model expects 1"):
        match_channels(image, 1, "x.tif")
    assert match_channels(np.ones((3, 8, 8), np.float32), 1).shape == (1, 8, 8)  # RGB -> gray stays


def test_two_channels_for_an_rgb_model_name_the_channel_option():
    with pytest.raises(InputError, match=r"2 channels but the model expects 3; choose channels with --channel N"):
        match_channels(np.ones((2, 8, 8), np.float32), 3, "two.tif")
    assert match_channels(np.ones((1, 8, 8), np.float32), 3).shape == (3, 8, 8)  # what --channel 1 leaves


def test_predict_refuses_a_four_channel_tiff_for_a_one_channel_model(run_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "four.tif", np.random.default_rng(0).random((4, 32, 32), dtype=np.float32),
                     photometric="minisblack")
    assert main(["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "four.tif" in err and "4 channels" in err


def test_three_gray_pages_are_not_averaged_but_rgb_is(tmp_path):
    rng = np.random.default_rng(0)
    pages, rgb_tiff, png = tmp_path / "pages.tif", tmp_path / "rgb.tif", tmp_path / "rgb.png"
    tifffile.imwrite(pages, rng.integers(0, 255, (3, 8, 8), dtype=np.uint8), photometric="minisblack")
    tifffile.imwrite(rgb_tiff, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), photometric="rgb")
    write_png(png, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    assert (holds_colour(pages), holds_colour(rgb_tiff), holds_colour(png)) == (False, True, True)
    assert holds_colour(tmp_path / "napari layer") is None  # an array's name, no file: the caller's colours
    three = np.stack([np.zeros((8, 8)), np.ones((8, 8)), 2 * np.ones((8, 8))]).astype(np.float32)
    with pytest.raises(InputError, match="pages.tif: its 3 channels are not RGB colours.*--channel N"):
        match_channels(three, 1, pages)
    for source in (rgb_tiff, png, None):
        assert np.array_equal(match_channels(three, 1, source), np.ones((1, 8, 8), np.float32))


def test_predict_refuses_a_three_page_stack_for_a_one_channel_model(run_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "z3.tif", np.random.default_rng(0).random((3, 32, 32), dtype=np.float32),
                     photometric="minisblack")
    out = tmp_path / "p"
    assert main(["predict", "--model", str(run_dir), str(folder), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "z3.tif" in err and "not RGB colours" in err and "--channel" in err
    assert main(["predict", "--model", str(run_dir), str(folder), "--out", str(out), "--quiet",
                 "--channel", "1"]) == 0


def test_predict_large_takes_the_channel_its_refusal_names_from_a_plain_array(run_dir, tmp_path, capsys):
    """A .npy of 3 channels first for a 1-channel model is refused with --channel as the fix, and --channel then
    works: it reads that channel (the same output as a .npy of that channel alone), where it used to be ignored.
    (An (H, W, 3) .npy is the layout of an RGB array: averaged, as the API averages it.)"""
    stack = np.random.default_rng(5).integers(0, 255, (3, 48, 40)).astype(np.uint8)
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "one.npy", stack[1])
    base = ["predict-large", "--model", str(run_dir), "--quiet"]
    assert main([*base, str(tmp_path / "stack.npy"), "--out", str(tmp_path / "a.npy")]) == 2
    assert "--channel N" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "stack.npy"), "--out", str(tmp_path / "a.npy"), "--channel", "1"]) == 0
    assert main([*base, str(tmp_path / "one.npy"), "--out", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
