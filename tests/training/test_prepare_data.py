"""Training data that cannot teach anything is named before training: masks without a single object."""

import numpy as np
import pytest
import tifffile

from unetkit.config import RunConfig
from unetkit.data.synthetic import write_synthetic_dataset
from unetkit.errors import InputError
from unetkit.training.data import prepare_data


def _blank_masks(root, names):
    for name in names:
        path = root / "masks" / f"{name}.tif"
        tifffile.imwrite(path, np.zeros_like(tifffile.imread(path)))


def test_masks_without_any_object_are_refused_for_training_and_noted_for_validation(tmp_path, capsys):
    """All-blank masks trained a network to find nothing and reported 'best epoch 1: score 1.0000'."""
    write_synthetic_dataset(tmp_path / "train", n_images=2, seed=1, shape=(48, 48))
    write_synthetic_dataset(tmp_path / "val", n_images=2, seed=2, shape=(48, 48))
    _blank_masks(tmp_path / "train", ["synth_0000"])  # one blank mask among others is a legitimate empty image
    prepare_data(RunConfig(), tmp_path / "train", tmp_path / "val")
    assert "holds any object" not in capsys.readouterr().err
    _blank_masks(tmp_path / "val", ["synth_0000", "synth_0001"])
    prepare_data(RunConfig(), tmp_path / "train", tmp_path / "val")
    assert "note: no validation mask holds any object" in capsys.readouterr().err
    _blank_masks(tmp_path / "train", ["synth_0001"])
    with pytest.raises(InputError, match="no mask of the 2 training images holds any object"):
        prepare_data(RunConfig(), tmp_path / "train", tmp_path / "val")


def test_binary_masks_for_the_instances_task_are_noted(tmp_path, capsys):
    """Three-class targets from 0/255 masks learn no boundary where nuclei touch: each clump is one object."""
    from unetkit.config import apply_overrides

    config = apply_overrides(RunConfig(), {"task": "instances"})
    write_synthetic_dataset(tmp_path / "d", n_images=2, seed=1, shape=(48, 48))
    prepare_data(config, tmp_path / "d", tmp_path / "d")
    assert "hold one value for every object" not in capsys.readouterr().err
    for path in (tmp_path / "d" / "masks").iterdir():
        tifffile.imwrite(path, (tifffile.imread(path) > 0).astype(np.uint8) * 255)
    prepare_data(config, tmp_path / "d", tmp_path / "d")
    assert "note: the 2 training masks hold one value for every object (binary)" in capsys.readouterr().err
    prepare_data(RunConfig(), tmp_path / "d", tmp_path / "d")  # the binary task wants exactly that
    assert "hold one value for every object" not in capsys.readouterr().err


def _colour(path, gray_as_rgb=False):
    """Rewrite a gray PNG as RGB: real colours, or the gray repeated (as the DSB set stores gray images)."""
    from PIL import Image

    gray = np.asarray(Image.open(path))
    channels = [gray, gray, gray] if gray_as_rgb else [gray, gray // 2, 255 - gray]
    Image.fromarray(np.stack(channels, axis=-1)).save(path)


def test_colour_images_averaged_into_a_gray_model_are_noted_and_in_channels_keeps_them(tmp_path, capsys):
    """A folder whose first image is gray trained a gray model and averaged the rest's colour away, without a
    word; ``--set model.in_channels=3`` was overwritten by the first image's 1 channel."""
    from unetkit.config import apply_overrides
    from unetkit.training.loop import resolve_for_data

    root = tmp_path / "d"
    write_synthetic_dataset(root, n_images=4, seed=1, shape=(48, 48))
    _colour(root / "images" / "synth_0001.png")
    _colour(root / "images" / "synth_0002.png")
    _colour(root / "images" / "synth_0003.png", gray_as_rgb=True)  # no colour to lose

    config = resolve_for_data(RunConfig(), root, root)
    assert config.model.in_channels == 1
    train, _, _ = prepare_data(config, root, root)
    err = capsys.readouterr().err
    assert "note: 2 of 4 training images and 2 of 4 validation images are colour (e.g. synth_0001)" in err
    assert "first image (synth_0000)" in err and "--set model.in_channels=3" in err
    assert train.colour_averaged == ["synth_0001", "synth_0002"]

    config = resolve_for_data(apply_overrides(RunConfig(), {"model.in_channels": 3}), root, root)
    assert config.model.in_channels == 3
    train, _, _ = prepare_data(config, root, root)
    assert "are colour" not in capsys.readouterr().err
    assert [image.shape[0] for image in train.images] == [3, 3, 3, 3]
    first = train.images[0]
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[0], first[2])  # gray repeated
    assert not np.array_equal(train.images[1][0], train.images[1][2])  # colour kept


def test_is_colour_tells_colours_from_repeated_gray():
    from unetkit.data.channels import is_colour

    rng = np.random.default_rng(0)
    gray = rng.random((1, 32, 32)).astype(np.float32)
    assert not is_colour(np.repeat(gray, 3, axis=0))
    assert not is_colour(np.zeros((3, 8, 8), np.float32))
    noisy = np.repeat(gray, 3, axis=0) + rng.normal(0, 0.002, (3, 32, 32)).astype(np.float32)  # JPEG-like chroma
    assert not is_colour(noisy)
    assert is_colour(np.concatenate([gray, 1 - gray, gray / 2]))


def test_a_patch_size_the_network_cannot_take_is_noted(tmp_path, capsys):
    """data.patch_size=50 for a depth-3 padded net trained on 48 px patches, and config.yaml said 50."""
    from unetkit.cli import main

    write_synthetic_dataset(tmp_path / "d", n_images=2, seed=1, shape=(64, 64))
    tiny = ["--epochs", "1", "--quiet", "--set", "model.depth=3", "--set", "model.base_channels=4", "--set",
            "data.samples_per_epoch=4", "--set", "train.batch_size=4"]
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "a"), *tiny,
                 "--set", "data.patch_size=50"]) == 0
    assert "note: patches of 50 x 50 px do not fit this network's levels; 48 x 48 px are used" in \
        capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "b"), *tiny,
                 "--set", "data.patch_size=48"]) == 0
    assert "do not fit" not in capsys.readouterr().err
