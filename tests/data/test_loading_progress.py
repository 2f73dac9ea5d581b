"""Loading a dataset shows progress in a log too (after a delay), and says nothing for a short load."""

import time

from unetkit.data import splits


def test_a_long_load_shows_its_bar_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    """The bar was off whenever stderr was not a terminal, so a cluster job's log showed nothing while thousands
    of images loaded."""
    monkeypatch.setattr(splits, "LOAD_BAR_DELAY_S", 0.0)
    out = splits.map_samples(list(range(6)), lambda i: time.sleep(0.03) or i * 2, "loading train")
    assert out == [0, 2, 4, 6, 8, 10]
    assert "loading train" in capsys.readouterr().err


def test_a_short_load_prints_nothing(capsys):
    assert splits.map_samples([1, 2, 3], lambda i: i + 1, "loading val") == [2, 3, 4]
    assert capsys.readouterr().err == ""
