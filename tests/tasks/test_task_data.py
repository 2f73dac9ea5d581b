"""Task data: every multiclass mask format reads to the same class map; configs resolve from the data."""

import numpy as np
import pytest

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.io import read_labels, write_png
from unetkit.data.masks import default_colors
from unetkit.data.synthetic_tasks import MASK_FORMATS, write_multiclass_dataset, write_regression_dataset
from unetkit.errors import InputError
from unetkit.tasks import get_task
from unetkit.tasks.multiclass import class_table, load_multiclass_sample
from unetkit.training.data import prepare_data

SIZES = [(40, 52), (37, 45)]


def _config(**values) -> RunConfig:
    return apply_overrides(RunConfig(), {"task": "multiclass", **values})


@pytest.mark.parametrize("mask_format", [f for f in MASK_FORMATS if f != "index"])
def test_every_mask_format_gives_the_index_masks_class_map(tmp_path, mask_format):
    write_multiclass_dataset(tmp_path / "index", 2, seed=4, sizes=SIZES, mask_format="index")
    write_multiclass_dataset(tmp_path / mask_format, 2, seed=4, sizes=SIZES, mask_format=mask_format)
    extra = {"data.class_colors": default_colors(3).tolist()} if mask_format == "rgb" else {}
    config = _resolve(_config(**extra), tmp_path / mask_format)
    assert config.model.out_channels == 3
    table = class_table(config)
    for sample in get_task(config).find_samples(tmp_path / mask_format, config):
        image, labels = load_multiclass_sample(sample, config, table)
        expected = read_labels(tmp_path / "index" / "masks" / f"{sample.name}.png")
        assert image.shape == (1, *expected.shape)
        assert np.array_equal(labels, expected), sample.name


def test_index_masks_resolve_classes_up_to_the_largest_id_leaving_the_ignore_label_out(tmp_path):
    write_multiclass_dataset(tmp_path, 2, seed=1, sizes=SIZES)
    mask = read_labels(tmp_path / "masks" / "cells_0000.png")
    mask[:5, :5] = 255  # unlabelled corner
    write_png(tmp_path / "masks" / "cells_0000.png", mask.astype(np.uint8))
    config = _resolve(_config(**{"loss.auto_class_weights": True}), tmp_path, val_dir=tmp_path)
    assert config.data.class_names == ["background", "class1", "class2"]
    assert config.model.out_channels == 3 and config.model.in_channels == 1
    weights = config.loss.class_weights  # background most frequent, nucleus rarest
    assert len(weights) == 3 and weights[0] < 1 < weights[2]
    train, val, _ = prepare_data(config, tmp_path, tmp_path)
    assert train.targets[0].dtype == np.uint8 and (train.targets[0][:5, :5] == 255).all()


def test_class_ids_beyond_the_named_classes_are_refused_with_the_file_name(tmp_path):
    write_multiclass_dataset(tmp_path, 1, seed=1, sizes=SIZES[:1])
    config = _resolve(_config(**{"data.class_names": ["background", "cytoplasm"]}), tmp_path)
    with pytest.raises(InputError, match=r"cells_0000.png: class ids \[2\]"):
        prepare_data(config, tmp_path, tmp_path)
    with pytest.raises(InputError, match="leave data.target at auto"):
        _resolve(_config(**{"data.target": "binary"}), tmp_path)


def test_regression_resolves_channels_and_target_normalisation(tmp_path):
    write_regression_dataset(tmp_path, 2, sizes=SIZES)
    config = _resolve(apply_overrides(RunConfig(), {"task": "regression"}), tmp_path, val_dir=tmp_path)
    assert config.model.out_channels == 1 and config.model.in_channels == 1
    assert config.data.target_offset == [pytest.approx(100.0)] and config.data.target_scale[0] > 300
    train, _, _ = prepare_data(config, tmp_path, tmp_path)
    assert train.labels[0].min() == pytest.approx(100.0)  # stored units, for validation scores
    assert train.targets[0].dtype == np.float32 and abs(float(np.median(train.targets[0]))) < 0.05
    with pytest.raises(InputError, match="weight_map"):
        _resolve(apply_overrides(config, {"data.weight_map": True}), tmp_path)


def test_regression_targets_may_have_several_channels(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(tmp_path / "images" / f"{name}.png", rng.integers(0, 255, (20, 24), dtype=np.uint8))
        (tmp_path / "targets").mkdir(exist_ok=True)
        target = np.stack([rng.random((20, 24)), 1000 + 10 * rng.random((20, 24))]).astype(np.float32)
        tifffile.imwrite(tmp_path / "targets" / f"{name}.tif", target)  # (2, H, W): two stains
    config = _resolve(apply_overrides(RunConfig(), {"task": "regression"}), tmp_path, val_dir=tmp_path)
    assert config.model.out_channels == 2 and len(config.data.target_offset) == 2
    assert config.data.target_offset[1] > 999 and config.data.target_scale[1] < 11
    train, _, _ = prepare_data(config, tmp_path, tmp_path)
    assert train.targets[0].shape == (2, 20, 24)
    assert -0.1 < train.targets[0].min() and train.targets[0].max() < 1.1


def _resolve(config, train_dir, val_dir=None):
    """What training fills in from the data: the task's ``resolve``."""
    return get_task(config).resolve(config, train_dir, val_dir)


def test_instances_weight_maps_emphasise_where_nuclei_touch(tmp_path):
    """The instances task (three-class target) puts the border term on the boundary pixels between two
    nuclei that touch; ``data.weight_balance=false`` leaves the class balance out (1 elsewhere)."""
    labels = np.zeros((32, 48), np.uint8)
    labels[8:20, 6:18] = 5
    labels[8:20, 18:30] = 9  # touches nucleus 5 along column 17 | 18
    labels[24:30, 38:44] = 12
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    write_png(tmp_path / "images" / "a.png", image)
    write_png(tmp_path / "masks" / "a.png", labels)
    config = apply_overrides(RunConfig(), {"task": "instances", "data.weight_map": True,
                                          "data.weight_balance": False, "data.val_fraction": 0.0})
    train, _, _ = prepare_data(_resolve(config, tmp_path), tmp_path, tmp_path)
    weights = train.weights[0]
    assert weights[14, 17] > 9 and weights[14, 18] > 9  # contact: 1 + 10 * exp(-1 / 50) = 10.8
    assert weights[14, 12] == pytest.approx(1.0)  # interior
    assert weights[29, 43] < 1.05  # lone nucleus, boundary 17 px from the next one: 1 + 10 * exp(-296 / 50)
    small = apply_overrides(config, {"data.small_object_area": 144})  # the 36 px nucleus weighs sqrt(144 / 36)
    train, _, _ = prepare_data(_resolve(small, tmp_path), tmp_path, tmp_path)
    assert train.weights[0][27, 41] == pytest.approx(2.0) and train.weights[0][14, 12] == pytest.approx(1.0)


def test_multiclass_weight_maps_weigh_small_regions_too(tmp_path):
    """``data.small_object_area`` reaches the multiclass task as well: there the objects are connected
    foreground regions, so a 16 px region under an area of 64 weighs sqrt(64 / 16) = 2 times its class weight."""
    labels = np.zeros((32, 40), np.uint8)
    labels[4:20, 4:20] = 1  # 256 px region
    labels[26:30, 30:34] = 2  # 16 px region
    write_png(tmp_path / "images" / "a.png", np.where(labels > 0, 200, 20).astype(np.uint8))
    write_png(tmp_path / "masks" / "a.png", labels)
    base = _config(**{"data.weight_map": True, "data.w0": 0.0, "data.val_fraction": 0.0})
    plain, _, _ = prepare_data(_resolve(base, tmp_path), tmp_path, tmp_path)
    small = apply_overrides(base, {"data.small_object_area": 64})
    weighted, _, _ = prepare_data(_resolve(small, tmp_path), tmp_path, tmp_path)
    ratio = weighted.weights[0] / plain.weights[0]
    assert ratio[28, 32] == pytest.approx(2.0) and ratio[10, 10] == pytest.approx(1.0) and ratio[0, 0] == 1.0
