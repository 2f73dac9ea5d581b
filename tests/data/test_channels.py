"""Channels matched to a network: colours averaged or replicated, anything else named."""

from __future__ import annotations

import numpy as np
import tifffile
from PIL import Image

from unetkit import notes
from unetkit.data.channels import match_channels
from unetkit.data.io import holds_colour, read_image


def test_three_gray_planes_given_to_an_rgb_model_are_noted_once(tmp_path, capsys, monkeypatch):
    """Three gray TIFF pages (or DAPI/GFP/RFP) were fed to an RGB model as R, G, B without a word (a gray model
    refuses them)."""
    monkeypatch.setattr(notes, "_SAID", set())
    planes = np.random.default_rng(0).integers(0, 255, (3, 20, 20)).astype(np.uint8)
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(tmp_path / name, planes, photometric="minisblack")
    Image.fromarray(np.moveaxis(planes, 0, -1)).save(tmp_path / "c.bmp")
    assert holds_colour(tmp_path / "c.bmp") is True and holds_colour(tmp_path / "a.tif") is False
    for name in ("c.bmp", "a.tif", "b.tif"):
        image = read_image(tmp_path / name)
        np.testing.assert_array_equal(match_channels(image, 3, tmp_path / name), image)
    err = capsys.readouterr().err
    assert err.count("its 3 channels are not RGB colours") == 1 and "a.tif" in err


def test_an_array_files_three_channels_are_colour_when_last_and_not_said_to_be_other_than_colours_when_first(tmp_path):
    """An RGB .npy given to a gray model was refused as "not RGB colours (gray pages or a channel axis)" and told to
    be saved "as gray or RGB": (H, W, 3) is the layout of an RGB array, averaged as the API averages the same array
    in memory; a (3, H, W) .npy says nothing of its channels, so the message says that."""
    import pytest

    from unetkit.errors import InputError

    rgb = np.random.default_rng(1).integers(0, 255, (3, 16, 16)).astype(np.uint8)
    np.save(tmp_path / "rgb.npy", np.moveaxis(rgb, 0, -1))
    np.testing.assert_array_equal(match_channels(rgb, 1, tmp_path / "rgb.npy"),
                                  rgb.mean(axis=0, keepdims=True).astype(np.uint8))
    np.save(tmp_path / "planes.npy", rgb)
    with pytest.raises(InputError, match=r"planes.npy: its 3 channels carry no colour tag \(a \.npy array") as told:
        match_channels(rgb, 1, tmp_path / "planes.npy")
    assert "not RGB colours" not in str(told.value) and "RGB PNG / TIFF" in str(told.value)


def test_a_gray_image_is_not_copied_into_every_channel_of_a_marker_model():
    """A gray image given to a 5-channel (or 2-channel) model filled every marker channel with itself, unsaid; only
    a colour model takes gray as its R, G, B."""
    import pytest

    from unetkit.errors import InputError

    gray = np.ones((1, 8, 8), np.float32)
    assert match_channels(gray, 3).shape == (3, 8, 8)
    for channels in (2, 5):
        with pytest.raises(InputError, match=f"a gray image .1 channel. but the model expects {channels} channels;"
                                             f".*--channel {','.join(['0'] * channels)}"):
            match_channels(gray, channels, "g.tif")
