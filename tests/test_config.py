"""Config dataclasses, overrides and recipes."""

import pytest

from unetkit.config import RunConfig, apply_overrides, from_dict, load_config, save_config, to_dict
from unetkit.errors import InputError
from unetkit.recipes import resolve_config


def test_overrides_coerce_types_and_reject_unknown_keys():
    config = apply_overrides(RunConfig(), ["train.lr=0.01", "train.epochs=3", "augment.elastic=true",
                                           "model.pool_sizes=[[1,2,2]]"])
    assert config.train.lr == 0.01 and config.train.epochs == 3 and config.augment.elastic is True
    assert config.model.pool_sizes == [[1, 2, 2]]
    with pytest.raises(InputError, match="unknown config key 'train.learning_rate'"):
        apply_overrides(RunConfig(), ["train.learning_rate=1"])
    with pytest.raises(InputError, match="expects a number"):
        apply_overrides(RunConfig(), ["train.lr=fast"])
    with pytest.raises(InputError, match="section.key=value"):
        apply_overrides(RunConfig(), ["train.lr"])


def test_yaml_round_trip(tmp_path):
    config = apply_overrides(RunConfig(), ["model.depth=3", "data.class_names=[bg, nucleus]"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert from_dict(to_dict(config)) == config


def test_paper_recipe_resolves_to_the_papers_values():
    config = resolve_config("paper")
    assert config.recipe == "paper"
    assert (config.model.padding, config.model.norm, config.model.upsample) == ("valid", "none", "transpose")
    assert config.model.dropout == 0.5 and config.model.init == "he"
    assert config.data.weight_map and (config.data.w0, config.data.sigma) == (10.0, 5.0)
    assert config.augment.elastic and config.augment.elastic_grid == 3 and config.augment.elastic_sigma == 10.0
    assert (config.train.optimizer, config.train.momentum, config.train.batch_size) == ("sgd", 0.99, 1)
    assert config.data.patch_size == 572 and config.loss.dice_weight == 0.0


def test_precedence_recipe_then_file_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  momentum: 0.95\n  epochs: 7\n")
    config = resolve_config("paper", str(tmp_path / "c.yaml"), ["train.epochs=9"])
    assert config.train.momentum == 0.95  # file beats recipe
    assert config.train.epochs == 9  # override beats file
    assert config.model.padding == "valid"  # recipe value untouched by the file
    with pytest.raises(InputError, match="unknown recipe"):
        resolve_config("nnunet")


def test_small_object_weights_need_the_weight_map():
    """``data.small_object_area`` scales the weight map; with the map off it would do nothing, so training
    refuses it by name."""
    from unetkit.config_rules import validate_training_config

    with pytest.raises(InputError, match="data.small_object_area"):
        apply_overrides(RunConfig(), {"data.small_object_area": -5})
    validate_training_config(apply_overrides(RunConfig(), {"data.small_object_area": 100, "data.weight_map": True}))
    with pytest.raises(InputError, match="data.small_object_area=100 .*data.weight_map=true"):
        validate_training_config(apply_overrides(RunConfig(), {"data.small_object_area": 100}))


def test_an_epoch_must_hold_one_batch():
    """The loader drops a short last batch, so fewer patches per epoch than one batch trained nothing at all
    (the run ended 'best epoch 1' with loss 0): training refuses it, naming both keys."""
    from unetkit.config_rules import validate_training_config

    validate_training_config(apply_overrides(RunConfig(), {"data.samples_per_epoch": 8, "train.batch_size": 8}))
    with pytest.raises(InputError, match="data.samples_per_epoch=4 is smaller than train.batch_size=8"):
        validate_training_config(apply_overrides(RunConfig(), {"data.samples_per_epoch": 4}))
