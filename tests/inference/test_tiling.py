"""Overlap-tile prediction: tile plans, exact stitching, full coverage."""

import numpy as np
import pytest
import torch

from unetkit.config import ModelConfig
from unetkit.data.regions import read_region
from unetkit.inference import tiling
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.tile_plan import NetGeometry, plan_tiles
from unetkit.models import sizes
from unetkit.models.unet import UNet


def test_tile_starts_worked_examples():
    assert tiling.valid_tile_starts(1000, 388, 16) == [0, 384, 624]
    assert tiling.valid_tile_starts(300, 388, 16) == [0]
    assert tiling.overlapping_tile_starts(1000, 256, 0.25) == [0, 186, 372, 558, 744]
    assert tiling.overlapping_tile_starts(200, 256, 0.25) == [0]


def _whole_image_valid(net, image, depth):
    """Reference: one pass over the image mirrored by the margin and padded to a valid size."""
    margin = sizes.valid_margin(depth)[0]
    need = [sizes.valid_input_for_output(n, depth) for n in image.shape[1:]]
    full = read_region(image, [-margin, -margin], need)
    with torch.no_grad():
        out = torch.softmax(net(torch.from_numpy(full)[None]), 1)[0].numpy()
    return out[:, : image.shape[1], : image.shape[2]]


@pytest.mark.parametrize("tile", [44, 76, 92])
def test_valid_tiling_equals_whole_image_pass(tile):
    torch.manual_seed(0)
    depth = 3
    net = UNet(1, 2, depth=depth, base_channels=4, padding="valid").eval()
    image = np.random.default_rng(1).random((1, 157, 203)).astype(np.float32)  # odd sizes
    geometry = NetGeometry.from_config(ModelConfig(depth=depth, padding="valid"))
    output = np.full((2, 157, 203), np.nan, dtype=np.float32)  # poisoned: every pixel must be written
    predict_tiled(image, TorchPredictor(net), geometry, 2, tile_size=tile, batch_size=3, output=output)
    assert not np.isnan(output).any()
    assert np.abs(output - _whole_image_valid(net, image, depth)).max() < 1e-5


def test_valid_tiling_of_an_image_smaller_than_a_tile():
    net = UNet(1, 2, depth=2, base_channels=4, padding="valid").eval()
    image = np.random.default_rng(2).random((1, 7, 5)).astype(np.float32)
    geometry = NetGeometry.from_config(ModelConfig(depth=2, padding="valid"))
    out = predict_tiled(image, TorchPredictor(net), geometry, 2, tile_size=64)
    assert out.shape == (2, 7, 5)
    assert np.abs(out - _whole_image_valid(net, image, 2)).max() < 1e-5


def test_same_tiling_is_close_to_whole_image_and_blends():
    torch.manual_seed(0)
    net = UNet(1, 2, depth=3, base_channels=4, padding="same", norm="none").eval()
    image = np.random.default_rng(3).random((1, 150, 190)).astype(np.float32)
    geometry = NetGeometry.from_config(ModelConfig(depth=3, padding="same"))
    output = np.full((2, 150, 190), np.nan, dtype=np.float32)
    predict_tiled(image, TorchPredictor(net), geometry, 2, tile_size=64, overlap=0.5, output=output)
    assert not np.isnan(output).any()
    with torch.no_grad():
        whole = torch.softmax(net(torch.from_numpy(read_region(image, (0, 0), (152, 192)))[None]), 1)
    whole = whole[0, :, :150, :190].numpy()
    # same-padded tiles see zero padding at their edges; the Gaussian window keeps the error small
    assert np.abs(output - whole).mean() < 0.01
    np.testing.assert_allclose(output.sum(0), 1.0, atol=1e-5)  # blended probabilities stay normalised


def test_valid_tiling_in_3d_is_exact():
    torch.manual_seed(0)
    net = UNet(1, 2, spatial_dims=3, depth=2, base_channels=2, padding="valid").eval()
    volume = np.random.default_rng(4).random((1, 11, 23, 19)).astype(np.float32)
    geometry = NetGeometry.from_config(ModelConfig(depth=2, padding="valid", spatial_dims=3))
    out = predict_tiled(volume, TorchPredictor(net), geometry, 2, tile_size=28)
    margin = sizes.valid_margin(2, 3)[0]
    need = [sizes.valid_input_for_output(n, 2) for n in volume.shape[1:]]
    with torch.no_grad():
        full = read_region(volume, [-margin] * 3, need)
        ref = torch.softmax(net(torch.from_numpy(full)[None]), 1)[0].numpy()[:, :11, :23, :19]
    assert np.abs(out - ref).max() < 1e-5


def test_tta_averages_the_four_flips_mapped_back():
    torch.manual_seed(0)
    net = UNet(1, 2, depth=2, base_channels=4, padding="valid").eval()
    tiles = np.random.default_rng(5).random((2, 1, 40, 40)).astype(np.float32)
    x = torch.from_numpy(tiles)
    with torch.no_grad():
        expected = sum(torch.flip(torch.softmax(net(torch.flip(x, dims)), 1), dims) if dims else
                       torch.softmax(net(x), 1) for dims in ([], [2], [3], [2, 3])) / 4
    np.testing.assert_allclose(TorchPredictor(net, tta=True)(tiles), expected.numpy(), atol=1e-6)


def test_plan_tiles_rounds_to_valid_sizes():
    geometry = NetGeometry.from_config(ModelConfig(depth=5, padding="valid"))
    tile_in, tile_out, starts = plan_tiles((1000, 1000), geometry, 580)
    assert tile_in == (572, 572) and tile_out == (388, 388)
    assert starts[0] == [0, 384, 624]


def test_tiling_options_the_net_takes_otherwise_are_named():
    """`--tile 17` was rounded and `--overlap` ignored by a valid net without a word."""
    from unetkit.inference.tile_plan import tiling_notes

    same = NetGeometry.from_config(ModelConfig(depth=5, padding="same"))
    assert tiling_notes(same, 256, 0.5) == []  # a multiple of 2**4, and overlap is used
    assert tiling_notes(same, 17, None) == ["tile 17 taken as 16 (a multiple of 16, this net's pooling)"]
    assert tiling_notes(same, 8, None)[0].startswith("tile 8 taken as 16")  # never below one pooling step
    valid = NetGeometry.from_config(ModelConfig(depth=5, padding="valid"))
    paper = tiling_notes(valid, 572, None)
    assert paper == []  # the paper's 572 -> 388 tile is valid
    below, _ = sizes.nearest_valid_sizes(580, 5)
    assert tiling_notes(valid, 580, None) == [f"tile 580 taken as {below} (the valid input sizes of this unpadded "
                                              "net of depth 5)"]
    overlap = tiling_notes(valid, None, 0.5)
    assert len(overlap) == 1 and overlap[0].startswith("overlap 0.5 not used")
    from unetkit.inference.tile_plan import tile_taken  # what prediction.json records beside the tile asked for

    assert tile_taken(valid, 580) == [below] and tile_taken(same, 17) == [16] and tile_taken(same, 256) == [256]


@pytest.mark.parametrize("depth", [4, 5])
def test_valid_nets_never_take_tiles_narrower_than_their_pooling_grid(depth):
    """At the smallest valid input (a 4 px output tile) aligned starts left most pixels unwritten, or crashed past
    the image's end; every requested tile now gives the whole-image pass."""
    torch.manual_seed(depth)
    net = UNet(1, 2, depth=depth, base_channels=2, padding="valid").eval()
    geometry = NetGeometry.from_config(ModelConfig(depth=depth, padding="valid"))
    image = np.random.default_rng(depth).random((1, 245, 131)).astype(np.float32)
    predictor = TorchPredictor(net, "cpu")
    whole = predict_tiled(image, predictor, geometry, 2, 2000)
    smallest = sizes.nearest_valid_sizes(1, depth)[1]
    for tile in (2 ** (depth - 1), smallest, smallest + 2 ** (depth - 1)):
        _, out_tile, _ = plan_tiles(image.shape[1:], geometry, tile)
        assert min(out_tile) >= geometry.align[0]
        np.testing.assert_allclose(predict_tiled(image, predictor, geometry, 2, tile), whole, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="narrower than the pooling grid"):
        tiling.valid_tile_starts(245, 4, 16)
