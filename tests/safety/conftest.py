"""Shared tiny data and a tiny trained run for the safety tests (seconds on 2 CPU cores)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from unetkit.cli import main

TINY = ["--set", "model.depth=2", "--set", "model.base_channels=4", "--set", "data.patch_size=32",
        "--set", "data.samples_per_epoch=8", "--set", "train.batch_size=4", "--set", "inference.tile_size=32",
        "--set", "train.overlays=0"]


def tree_hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots (a file root counts itself)."""
    hashes = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """synth train/val/test with 3/2/2 images of 64 x 64."""
    root = tmp_path_factory.mktemp("safety_data")
    from unetkit.data.synthetic import write_synthetic_dataset

    for seed, (name, count) in enumerate((("train", 3), ("val", 2), ("test", 2))):
        write_synthetic_dataset(root / name, count, seed=seed, shape=(64, 64))
    return root


@pytest.fixture(scope="session")
def run_dir(dataset, tmp_path_factory) -> Path:
    """A finished one-epoch run of a depth-2, 4-channel U-Net."""
    run = tmp_path_factory.mktemp("safety_run") / "run"
    code = main(["train", "--data", str(dataset / "train"), "--val", str(dataset / "val"), "--out", str(run),
                 "--epochs", "1", "--quiet", *TINY])
    assert code == 0
    return run


@pytest.fixture
def hashes():
    """``tree_hashes`` as a fixture (test modules here are not importable as a package)."""
    return tree_hashes


@pytest.fixture
def tiny() -> list[str]:
    """--set options of the tiny network and patches used by these tests."""
    return list(TINY)
