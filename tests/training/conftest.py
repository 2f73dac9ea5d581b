"""Tiny synthetic datasets shared by the training tests."""

import pytest

from unetkit.data.synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_synthetic_dataset(root / "train", n_images=4, seed=1, sizes=[(64, 64), (72, 80), (64, 96), (81, 67)])
    write_synthetic_dataset(root / "val", n_images=2, seed=2, sizes=[(70, 70), (64, 64)])
    return root
