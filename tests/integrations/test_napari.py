"""The napari widgets run headless (Qt offscreen): layers at the image's scale, a screenshot with the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.synthetic import make_nuclei_image
from unetkit.errors import InputError
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


def test_segment_widget_reads_full_resolution_replaces_its_layers_and_shows_classes(make_napari_viewer, qtbot,
                                                                                   run_dir):
    """A multiscale layer was segmented at its smallest level and drawn at full scale; each run piled up new
    layers; a multiclass model lost its class map; rotation and units were dropped."""
    viewer = make_napari_viewer()
    nuclei, _ = make_nuclei_image(np.random.default_rng(2), (64, 80), bit_depth=8)
    pyramid = viewer.add_image([nuclei, nuclei[::2, ::2]], multiscale=True, name="slide", scale=(0.5, 0.5),
                               rotate=30)
    widget = widgets.segment_widget()
    for _ in range(2):  # a second run on the same image replaces its layers
        widget(viewer=viewer, image=pyramid, checkpoint=str(run_dir), channel=-1, tile=0, tta=False, instances=True)
        qtbot.waitUntil(lambda: "slide instances" in viewer.layers, timeout=120_000)
    qtbot.wait(500)
    assert [layer.name for layer in viewer.layers] == ["slide", "slide foreground", "slide instances"]
    result = viewer.layers["slide instances"]
    assert result.data.shape == nuclei.shape  # level 0, not the 32 x 40 level
    assert widgets._layer_data(pyramid) is pyramid.data[0]  # not read into memory in the GUI thread
    np.testing.assert_allclose(result.scale, (0.5, 0.5))
    np.testing.assert_allclose(result.rotate, pyramid.rotate)
    organelles = viewer.add_image(nuclei[:48, :48], name="em")
    widget(viewer=viewer, image=organelles, checkpoint="em-organelles", channel=-1, tile=0, tta=False,
           instances=True)
    qtbot.waitUntil(lambda: "em classes" in viewer.layers, timeout=120_000)
    assert viewer.layers["em classes"].data.max() < 7 and "mitochondrion" in viewer.status
    stacked = viewer.add_image(np.stack([nuclei, nuclei], axis=-1), name="two channels last")
    with pytest.raises(InputError, match="looks like channels"):
        widget(viewer=viewer, image=stacked, checkpoint="nuclei", channel=0, tile=0, tta=False, instances=True)
    with pytest.raises(InputError, match="no image layer"):
        widget(viewer=viewer, image=None, checkpoint="nuclei", channel=-1, tile=0, tta=False, instances=True)


def test_segment_widget_segments_a_z_stack_plane_by_plane(make_napari_viewer, qtbot, run_dir):
    """A z-stack or time series was refused; a 2D model now segments it plane by plane, each object with its own
    id, at the layer's scale."""
    viewer = make_napari_viewer()
    planes = [make_nuclei_image(np.random.default_rng(seed), (48, 56), bit_depth=8)[0] for seed in range(3)]
    stack = viewer.add_image(np.stack(planes), name="zstack", scale=(2.0, 0.5, 0.5))
    widget = widgets.segment_widget()
    widget(viewer=viewer, image=stack, checkpoint=str(run_dir), channel=-1, tile=0, tta=False, instances=True)
    qtbot.waitUntil(lambda: "zstack instances" in viewer.layers, timeout=120_000)
    labels = viewer.layers["zstack instances"]
    assert labels.data.shape == (3, 48, 56)
    np.testing.assert_allclose(labels.scale, (2.0, 0.5, 0.5))
    for index, plane in enumerate(planes):
        alone = segment_array(run_dir, plane[None], device="cpu")
        np.testing.assert_array_equal(labels.data[index] > 0, alone.labels > 0)
        np.testing.assert_allclose(viewer.layers["zstack foreground"].data[index], alone.foreground, atol=1e-5)
    ids = [set(np.unique(plane[plane > 0])) for plane in labels.data]
    assert sum(len(i) for i in ids) == len(set().union(*ids))


def test_the_stop_button_ends_a_stack_after_its_current_plane(make_napari_viewer, qtbot, run_dir):
    """A long segmentation could not be stopped from the viewer; Stop ends it after the current plane, adding no
    layers."""
    viewer = make_napari_viewer()
    planes = [make_nuclei_image(np.random.default_rng(seed), (48, 56), bit_depth=8)[0] for seed in range(6)]
    stack = viewer.add_image(np.stack(planes), name="long")
    widget = widgets.segment_widget()
    worker = widget(viewer=viewer, image=stack, checkpoint=str(run_dir), channel=-1, tile=0, tta=False,
                    instances=True)
    widget.stop.changed.emit(True)  # as a click does
    qtbot.waitUntil(lambda: not worker.is_running, timeout=120_000)
    qtbot.wait(200)
    assert "long instances" not in viewer.layers and "stopped" in viewer.status


def test_train_widget_trains_from_an_image_and_labels_layer(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import tempfile

    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where the widget stages the pair
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
    assert not list(staging.iterdir())  # the pair staged for the run is removed
