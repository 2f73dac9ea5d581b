"""benchmarks/nuclei_scales.py: each factor's output comes back at the image's own size, and the cache is reused."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import nuclei_scales  # noqa: E402

from unetkit.config import RunConfig, apply_overrides  # noqa: E402


class ThresholdNetwork:
    """Stands in for a predictor: interior where the image is bright, background elsewhere (three classes)."""

    def __init__(self):
        self.shapes = []

    def single_pass(self, image: np.ndarray) -> np.ndarray:
        self.shapes.append(image.shape)
        inside = image[0] > 0.5
        return np.stack([~inside, inside, np.zeros_like(inside)]).astype(np.float32)


def test_small_objects_are_predicted_at_every_factor_and_come_back_at_their_own_size(tmp_path):
    config = apply_overrides(RunConfig(), {"task": "instances", "model.out_channels": 3, "postprocess.min_size": 0})
    image = np.zeros((1, 48, 40), dtype=np.float32)
    for top in range(4, 40, 12):
        for left in range(4, 36, 12):
            image[0, top:top + 6, left:left + 6] = 1.0  # 12 squares of 36 px: under the 150 px of the cache
    network = ThresholdNetwork()
    found = nuclei_scales.cached_outputs(network, image, tmp_path / "im.npz", config, "three-class")
    assert float(found["med"]) == 36
    assert network.shapes == [(1, 48, 40), (1, 96, 80), (1, 144, 120), (1, 192, 160)]
    for key in ("p1", "p2", "p3", "p4"):
        assert found[key].shape == (3, 48, 40)
        np.testing.assert_allclose(found[key].sum(axis=0), 1.0, atol=1e-6)  # block means of probabilities
    # the squares' inside survives enlarging and the block means: the same 432 pixels are mostly interior
    assert all(((found[key][1] > 0.5) == (image[0] > 0.5)).mean() > 0.97 for key in ("p2", "p3", "p4"))
    again = nuclei_scales.cached_outputs(network, image, tmp_path / "im.npz", config, "three-class")
    assert len(network.shapes) == 4 and set(again) == set(found)  # read from the cache, not predicted again
    assert not list(tmp_path.glob(".*tmp*"))  # written under a temporary name, then renamed
