"""A time budget anneals the learning rate over the budget (or the epochs, whichever ends the run first)."""

import math

import pytest

from unetkit.recipes import resolve_config
from unetkit.training.optim import lr_lambda


def cosine(progress: float) -> float:
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


def test_cosine_time_follows_the_larger_share_of_budget_and_epochs():
    elapsed = {"share": 0.5}
    factor = lr_lambda(100, 0, "cosine-time", lambda: elapsed["share"])
    assert factor(10) == pytest.approx(cosine(0.5))  # the budget is further along than the steps
    elapsed["share"] = 0.1
    assert factor(80) == pytest.approx(cosine(0.8))  # the epochs will end the run first
    assert factor(100) == pytest.approx(0.01)
    elapsed["share"] = 3.0
    assert factor(1) == pytest.approx(0.01)  # past the budget: annealed, never beyond


@pytest.mark.parametrize(("recipe", "overrides", "expected"), [
    ("default", ["train.time_budget_s=600"], "cosine-time"),  # budget, no schedule chosen
    ("default", [], "cosine"),  # no budget: epochs
    ("default", ["train.time_budget_s=600", "train.scheduler=cosine"], "cosine"),  # chosen explicitly
    ("paper", ["train.time_budget_s=600"], "constant"),  # the recipe's own choice
])
def test_a_budget_switches_the_default_schedule_only(recipe, overrides, expected):
    assert resolve_config(recipe, overrides=overrides).train.scheduler == expected


def test_a_config_file_choice_is_kept(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  scheduler: cosine\n  time_budget_s: 60\n")
    assert resolve_config("default", str(path)).train.scheduler == "cosine"
    path.write_text("train:\n  time_budget_s: 60\n")
    assert resolve_config("default", str(path)).train.scheduler == "cosine-time"
