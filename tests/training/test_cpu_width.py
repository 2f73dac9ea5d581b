"""A CPU run that chose no width trains a CPU-sized U-Net; a chosen width (recipe, file, --set) is kept."""

import pytest

from unetkit.config import RunConfig, apply_overrides
from unetkit.recipes import CPU_BASE_CHANNELS, machine_network, resolve_config


@pytest.mark.parametrize(("device", "chosen", "model", "expected"), [
    ("cpu", set(), "unet", CPU_BASE_CHANNELS),  # nobody chose: CPU-sized
    ("cpu", set(), "unet3d", CPU_BASE_CHANNELS),  # 3D nets too
    ("cpu", {"model.base_channels"}, "unet", 64),  # chosen (even the default value): kept
    ("cuda", set(), "unet", 64),  # a GPU keeps the paper's width
    ("cpu", set(), "ternaus11", 64),  # VGG11's encoder width is fixed
])
def test_machine_network_picks_the_width_only_when_unchosen(device, chosen, model, expected):
    config = apply_overrides(RunConfig(), {"model.name": model})
    resolved, note = machine_network(config, chosen, device)
    assert resolved.model.base_channels == expected
    assert (f"model.base_channels={CPU_BASE_CHANNELS}" in note) == (expected == CPU_BASE_CHANNELS)


def test_a_width_other_than_the_default_counts_as_chosen():
    config = apply_overrides(RunConfig(), {"model.base_channels": 32})
    assert machine_network(config, set(), "cpu")[0].model.base_channels == 32


def test_resolve_config_on_a_cpu_says_what_it_picked(capsys):
    config = resolve_config("default", overrides=["train.device=cpu"])
    assert config.model.base_channels == CPU_BASE_CHANNELS
    assert "CPU training: model.base_channels=16" in capsys.readouterr().out
    assert resolve_config("default", overrides=["train.device=cpu", "model.base_channels=48"]
                          ).model.base_channels == 48
    assert resolve_config("paper", overrides=["train.device=cpu"]).model.base_channels == 64  # the recipe's own
    assert "CPU training" not in capsys.readouterr().out


def test_a_width_set_in_a_config_file_is_kept(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  base_channels: 64\ntrain:\n  device: cpu\n")
    assert resolve_config("default", str(path)).model.base_channels == 64
    path.write_text("train:\n  device: cpu\n")
    assert resolve_config("default", str(path)).model.base_channels == CPU_BASE_CHANNELS
