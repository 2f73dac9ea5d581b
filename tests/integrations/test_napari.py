"""The napari widgets run headless (Qt offscreen): layers at the image's scale, a screenshot with the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.synthetic import make_nuclei_image
from unetkit.inference.segment import segment_array
from unetkit.models.registry import build_model

pytestmark = pytest.mark.napari
widgets = pytest.importorskip("unetkit.integrations.napari.widgets", reason="needs the napari extra",
                              exc_type=ImportError)


@pytest.fixture
def run_dir(tmp_path):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 32})
    torch.manual_seed(0)
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config),
                                                "model": build_model(config.model).state_dict()})
    return tmp_path


def test_segment_widget_adds_layers_at_the_image_scale_and_shows_them(make_napari_viewer, qtbot, run_dir):
    viewer = make_napari_viewer(show=True)  # a shown window draws (Xvfb in `make test-napari`)
    nuclei, _ = make_nuclei_image(np.random.default_rng(0), (64, 80), bit_depth=16)
    image = viewer.add_image(nuclei, name="cells", scale=(0.325, 0.325), translate=(10.0, 5.0))
    widget = widgets.segment_widget()
    worker = widget(viewer=viewer, image=image, checkpoint=run_dir, channel=-1, tile=0, tta=False, instances=True)
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=120_000)
    assert worker is not None
    foreground, labels = viewer.layers["cells foreground"], viewer.layers["cells instances"]
    for layer in (foreground, labels):
        np.testing.assert_allclose(layer.scale, (0.325, 0.325))
        np.testing.assert_allclose(layer.translate, (10.0, 5.0))
    expected = segment_array(run_dir, nuclei[None], device="cpu")
    np.testing.assert_allclose(foreground.data, expected.foreground, atol=1e-5)
    np.testing.assert_array_equal(labels.data, expected.labels)
    viewer.reset_view()
    for layer in (foreground, labels):
        layer.visible = False
    before = viewer.screenshot(canvas_only=True, flash=False)
    assert before[..., :3].max() > 0  # the image is drawn
    for layer in (foreground, labels):
        layer.visible = True
    after = viewer.screenshot(canvas_only=True, flash=False)
    from PIL import Image

    Image.fromarray(after).save(run_dir / "napari_screenshot.png")  # kept in pytest's tmp folder to look at
    assert after.shape == before.shape and after.shape[-1] == 4
    assert np.abs(after.astype(int) - before.astype(int)).sum() > 0  # the result is drawn over the image


def test_train_widget_trains_from_an_image_and_labels_layer(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    nuclei, truth = make_nuclei_image(np.random.default_rng(1), (64, 64), bit_depth=8)
    image = viewer.add_image(nuclei, name="cells")
    labels = viewer.add_labels(truth.astype(np.int32), name="truth")
    widget = widgets.train_widget()
    widget(viewer=viewer, image=image, labels=labels, out_dir=tmp_path / "run", epochs=1, patch=32,
           task="instances", depth=2, base_channels=4, samples_per_epoch=8)
    qtbot.waitUntil(lambda: "unetkit training curves" in viewer.layers, timeout=300_000)
    assert (tmp_path / "run" / "best.pt").is_file()
    assert "best epoch 1" in viewer.status
