"""Fast paths are chosen by timing, only when they win in every round, and cached per machine."""

import json
import time

import pytest
import torch

from unetkit.cli import main
from unetkit.cpu import autotune


def _sleeper(seconds: float):
    return lambda: time.sleep(seconds)


@pytest.fixture
def tuning_on(monkeypatch):
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "1")


def test_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert autotune.cache_path() == tmp_path / "c" / "unetkit" / "cpu-autotune.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert autotune.cache_path() == tmp_path / "home" / ".cache" / "unetkit" / "cpu-autotune.json"


def test_machine_key_names_cpu_torch_and_threads():
    key = autotune.machine_key()
    assert torch.__version__ in key and f"{torch.get_num_threads()} threads" in key


def test_a_clearly_faster_path_is_chosen_and_remembered(tuning_on):
    calls = []

    def prepare():
        calls.append(1)
        return _sleeper(0.001), _sleeper(0.004), None

    assert autotune.choose("toy C1", prepare) is True
    stored = autotune.load_table()[autotune.machine_key()]["toy C1"]
    assert stored["fast"] and stored["speedup"] > autotune.MARGIN and stored["plain_ms"] > stored["fast_ms"]
    autotune._decided.clear()  # a new process: the file answers, nothing is timed again
    assert autotune.choose("toy C1", prepare) is True
    assert len(calls) == 1


def test_a_slower_or_tied_fast_path_falls_back_to_plain(tuning_on):
    assert autotune.choose("slower", lambda: (_sleeper(0.004), _sleeper(0.001), None)) is False
    assert autotune.choose("tied", lambda: (_sleeper(0.002), _sleeper(0.002), None)) is False


def test_an_inaccurate_fast_path_is_never_chosen(tuning_on):
    assert autotune.choose("wrong", lambda: (_sleeper(0.001), _sleeper(0.004), lambda: False)) is False
    assert autotune.load_table()[autotune.machine_key()]["wrong"]["note"] == "less accurate"


def test_clear_removes_the_cache(tuning_on):
    autotune.choose("a", lambda: (_sleeper(0.001), _sleeper(0.003), None))
    assert autotune.clear() == 1
    assert not autotune.cache_path().exists() and autotune.load_table() == {}


def test_an_unreadable_cache_is_measured_again(tuning_on):
    autotune.cache_path().parent.mkdir(parents=True)
    autotune.cache_path().write_text("{not json")
    assert autotune.choose("b", lambda: (_sleeper(0.001), _sleeper(0.004), None)) is True
    assert "b" in json.loads(autotune.cache_path().read_text())[autotune.machine_key()]


def test_measured_slices_cap_the_pixels():
    assert autotune.measured_slice(64, 64) == (64, 64)
    assert autotune.measured_slice(512, 512) == (64, 256)  # 2**14 pixels, rows of at most 256
    assert autotune.measured_slice(2, 9000) == (2, 256)


def test_cli_tunes_a_small_net_shows_and_clears(tuning_on, capsys):
    overrides = ["--set", "model.base_channels=16", "--set", "model.depth=2", "--set", "data.patch_size=32",
                 "--set", "inference.tile_size=32"]
    assert main(["tune-cpu", *overrides]) == 0
    out = capsys.readouterr().out
    assert "conv3x3-weight-grad C16 K16 pad1 32x32" in out and "upconv2x2 C32 K16 pad0 16x16" in out
    assert main(["tune-cpu", "--show"]) == 0
    assert "conv3x3-weight-grad C16 K16 pad1 32x32" in capsys.readouterr().out
    assert main(["tune-cpu", "--clear"]) == 0
    assert "removed 5 cached decision(s)" in capsys.readouterr().out
    assert main(["tune-cpu", "--show"]) == 0
    assert "no decisions cached" in capsys.readouterr().out


def test_cli_times_nothing_when_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "0")
    assert main(["tune-cpu", "--set", "model.base_channels=16", "--set", "model.depth=2"]) == 0
    assert "UNETKIT_AUTOTUNE=0" in capsys.readouterr().out
    assert not autotune.cache_path().exists()
