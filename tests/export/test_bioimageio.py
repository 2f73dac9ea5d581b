"""A BioImage Model Zoo package that bioimageio.core's own model test accepts, for 2D and 3D U-Nets."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
import yaml

from unetkit import checkpoint as ckpt
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.models.registry import build_model

bioimageio_core = pytest.importorskip("bioimageio.core", reason="the test extra installs bioimageio.core")


def _checkpoint(folder, overrides):
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "inference.tile_size": 32,
                                           "data.normalize_low": 2.0, **overrides})
    torch.manual_seed(0)
    model = build_model(config.model)
    (folder / "metrics.json").write_text('{"best_epoch": 7, "val_dice": 0.91}')
    return ckpt.save_checkpoint(folder / "best.pt", {"config": to_dict(config), "model": model.state_dict()})


@pytest.mark.parametrize("overrides", [{}, {"model.padding": "valid"}], ids=["same", "valid"])
def test_package_passes_bioimageio_core_model_test(tmp_path, capsys, overrides):
    _checkpoint(tmp_path, overrides)
    out = tmp_path / "pkg" / "model.zip"
    assert main(["export", "--model", str(tmp_path), "--format", "bioimageio", "--out", str(out),
                 "--author", "Test Person", "--tile", "32"]) == 0
    assert "bioimage.io package" in capsys.readouterr().out
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        rdf = yaml.safe_load(package.read("rdf.yaml"))
        readme = package.read("README.md").decode()
    assert {"weights.onnx", "weights.ts", "cover.png", "test_input.npy", "test_output.npy"} <= names
    assert rdf["format_version"].startswith("0.5")
    (scale_range,) = [step for step in rdf["inputs"][0]["preprocessing"] if step["id"] == "scale_range"]
    assert scale_range["kwargs"]["min_percentile"] == 2.0 and scale_range["kwargs"]["max_percentile"] == 99.8
    assert "val_dice: 0.91" in readme and "watershed" in readme  # scores and what the spec cannot express
    summary = bioimageio_core.test_model(out)
    failed = [d.name for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed


def test_package_output_is_the_unetkit_prediction(tmp_path):
    """The package's expected output equals what unetkit's own tiled prediction gives for the tile."""
    from unetkit.checkpoint import load_model
    from unetkit.data.io import normalize_percentile
    from unetkit.export.bioimageio import export_bioimageio
    from unetkit.inference.predict import TorchPredictor, predict_tiled
    from unetkit.inference.tile_plan import NetGeometry

    _checkpoint(tmp_path, {})
    result = export_bioimageio(tmp_path, tmp_path / "m.zip", tile_size=32)
    with zipfile.ZipFile(result.path) as package:
        package.extract("test_input.npy", tmp_path)
        package.extract("test_output.npy", tmp_path)
    raw, expected = np.load(tmp_path / "test_input.npy"), np.load(tmp_path / "test_output.npy")
    model, config = load_model(tmp_path / "best.pt")
    ours = predict_tiled(normalize_percentile(raw[0], 2.0, 99.8), TorchPredictor(model, "cpu"),
                         NetGeometry.from_config(config.model), 2, 32, 0.25, 1)
    # scale_range adds eps = 1e-6 to the percentile span; on a uint16-range image that moves values ~1e-9
    np.testing.assert_allclose(expected[0], ours, atol=1e-5)


@pytest.mark.parametrize("area", [0.0, 100.0])
def test_package_says_it_predicts_images_of_small_objects_once(tmp_path, capsys, area):
    """The small-object rule (a second pass at 2x) is named in the package's README and by the CLI, not lost."""
    _checkpoint(tmp_path, {"task": "instances", "model.out_channels": 3, "postprocess.upscale_below_area": area})
    out = tmp_path / "model.zip"
    assert main(["export", "--model", str(tmp_path), "--format", "bioimageio", "--out", str(out), "--tile", "32"]) == 0
    with zipfile.ZipFile(out) as package:
        readme = package.read("README.md").decode()
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    if area:
        assert len(said) == 1 and "upscale_below_area" in said[0] and "under 100 px" in said[0]
        assert "upscale_below_area" in readme and "2x2 blocks" in readme
    else:
        assert said == [] and "upscale_below_area" not in readme


def test_a_packaged_model_is_named_and_scored_by_its_card_and_instances_channels_say_what_they_hold():
    """A package of `nuclei` was named 'unetkit unet ' with 'no validation scores', its channels class1/class2."""
    from unetkit.checkpoint import load_model, resolve_path
    from unetkit.config import RunConfig, apply_overrides
    from unetkit.export.bioimageio import _scores
    from unetkit.pretrained import model_card

    folder = resolve_path("nuclei").parent
    score = model_card("nuclei").fields["validation"]["dsb_score"]
    assert folder.name == "nuclei" and f"- dsb_score: {score:.4g}" in _scores(folder)
    _, config = load_model("nuclei", "cpu")
    from unetkit.tasks import get_task

    assert get_task(config).output_names(config) == ["background", "interior", "boundary"]
    binary = apply_overrides(RunConfig(), {"task": "binary", "model.out_channels": 2})
    assert get_task(binary).output_names(binary) == ["background", "foreground"]
