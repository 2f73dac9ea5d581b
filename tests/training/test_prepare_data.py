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
