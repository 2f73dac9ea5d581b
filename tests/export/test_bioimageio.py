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
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ") and "2x" in line]
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


def _package_files(path, *names):
    with zipfile.ZipFile(path) as package:
        rdf = yaml.safe_load(package.read("rdf.yaml"))
        readme = package.read("README.md").decode()
        arrays = [np.load(package.open(name)) for name in names]
    return rdf, readme, arrays


def test_sparse_images_are_named_as_a_limit_and_the_advised_workaround_gives_unetkits_answer(tmp_path):
    """Where p2 == p99.8 unetkit scales by min/max but scale_range divides by 1e-6: the package's README and
    notes say so, and their workaround (min/max scaling, pre-processing skipped) reproduces unetkit."""
    from unetkit.checkpoint import load_model
    from unetkit.data.io import normalize_percentile
    from unetkit.export.bioimageio import export_bioimageio

    _checkpoint(tmp_path, {})
    result = export_bioimageio(tmp_path, tmp_path / "m.zip", tile_size=32, authors=["Test Person"])
    (note,) = [n for n in result.left_out if n.startswith("normalisation:")]
    assert "percentiles 2 and 99.8 are equal" in note and "min and max" in note and "skip_preprocessing=True" in note
    _, readme, _ = _package_files(result.path)
    assert note in readme
    image = np.zeros((1, 64, 64), np.float32)
    image[0, 30:32, 30:33] = 200.0  # 6 of 4096 px bright: under 0.2 %, so p2 == p99.8 == 0
    assert np.percentile(image, 2.0) == np.percentile(image, 99.8)
    model, _ = load_model(tmp_path / "best.pt")
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(normalize_percentile(image, 2.0, 99.8)[None])), 1).numpy()
    scaled = (image - image.min()) / (image.max() - image.min())  # the workaround the note gives
    package = bioimageio_core.predict(model=result.path, inputs={"raw": scaled[None]}, skip_preprocessing=True)
    # bioimageio.core mirrors the image by the halo (8 px here) before predicting it, where unetkit's net zero-pads:
    # pixels within the receptive-field radius (8) of the edges differ for that reason alone (README, Input)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(np.asarray(package.members["probabilities"].data)[inner], ours[inner], atol=1e-5)


@pytest.mark.parametrize(("depth", "tile", "padding", "halo"), [
    (5, (128, 128), "same", (32, 32)),  # receptive-field radius 92, capped at a quarter of the tile
    (5, (256, 256), "same", (64, 64)),
    (2, (32, 32), "same", (8, 8)),  # the whole radius fits: tiles are exact
    (4, (16, 64, 64), "same", (4, 16, 16)),  # 3D, no z pooling at level 1: z radius 24, step 4, a quarter of 16
    (5, (188, 188), "valid", (0, 0)),  # the net crops its own margin (the output's offset)
])
def test_output_halo_is_the_receptive_field_radius_capped_at_a_quarter_tile(depth, tile, padding, halo):
    from unetkit.export.bioimageio import output_halo

    overrides = {"model.depth": depth, "model.padding": padding}
    if len(tile) == 3:
        overrides |= {"model.name": "unet3d", "model.pool_sizes": [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
    assert output_halo(apply_overrides(RunConfig(), overrides), tile) == halo


def test_tiled_prediction_of_the_package_equals_its_whole_image_prediction(tmp_path):
    """The declared halo makes bioimageio.core's tile-by-tile prediction match its whole-image one (without a
    halo the tiles' zero-padded edges changed probabilities by 0.006 on this small net, 0.87 on `nuclei`)."""
    _checkpoint(tmp_path, {})
    out = tmp_path / "m.zip"
    assert main(["export", "--model", str(tmp_path), "--format", "bioimageio", "--out", str(out), "--tile", "32"]) == 0
    rdf, _, _ = _package_files(out)
    assert [axis.get("halo") for axis in rdf["outputs"][0]["axes"][2:]] == [8, 8]
    image = np.random.default_rng(1).gamma(2.0, 50.0, (1, 1, 96, 96)).astype(np.float32)
    whole = bioimageio_core.predict(model=out, inputs={"raw": image})
    tiled = bioimageio_core.predict(model=out, inputs={"raw": image}, blocksize_parameter=0)
    # exact in real arithmetic (halo 8 covers this depth-2 net's whole receptive field); in float32 the tiles'
    # convolutions run on other input sizes, so other kernels sum in other orders (4e-5 measured): 1e-4 keeps the
    # check 60x below the 6.3e-3 that a missing halo leaves
    np.testing.assert_allclose(np.asarray(tiled.members["probabilities"].data),
                               np.asarray(whole.members["probabilities"].data), atol=1e-4)


def test_an_em_package_is_tested_on_synthetic_membranes_and_carries_its_card_version(tmp_path, capsys):
    """em-membranes was tested (and pictured) on synthetic nuclei, unversioned, by 'unetkit user' unsaid."""
    from unetkit.pretrained import model_card

    out = tmp_path / "em.zip"
    assert main(["export", "--model", "em-membranes", "--format", "bioimageio", "--out", str(out),
                 "--tile", "64"]) == 0
    said = capsys.readouterr().err
    rdf, readme, (raw, expected) = _package_files(out, "test_input.npy", "test_output.npy")
    assert rdf["version"] == str(model_card("em-membranes").version)
    assert "synthetic gray EM-like cells" in readme and "synthetic fluorescent nuclei" not in readme
    membrane = expected[0].argmax(0) == 0  # background = membrane for this model
    assert 0.1 < membrane.mean() < 0.4  # thin dark lines between cells (on synthetic nuclei: 78 % "membrane")
    assert raw[0, 0][membrane].mean() < raw[0, 0][~membrane].mean()  # and they are the dark pixels
    assert rdf["authors"] == [{"name": "unetkit user"}] and "no --author given" in said and "--author" in readme
    assert rdf["inputs"][0]["axes"][1]["channel_names"] == ["gray"]
    assert [c.get("doi") for c in rdf["cite"]] == ["10.1007/978-3-319-24574-4_28"]  # 2D: not the 3D U-Net paper


@pytest.mark.parametrize(("overrides", "names"), [
    ({"model.in_channels": 3}, ["R", "G", "B"]),
    ({"model.in_channels": 2, "data.channels": ["DAPI", "GFP-1"]}, ["DAPI", "GFP_1"]),
    ({"model.in_channels": 2, "data.channels": [0, 2]}, ["channel0", "channel2"]),
    ({"model.in_channels": 1}, ["gray"]),
    ({"model.in_channels": 1, "data.channels": [-1]}, ["channel_last1"]),  # "channel-1": pydantic's traceback
    ({"model.in_channels": 2, "data.channels": ["GFP-1", "GFP_1"]}, ["GFP_1", "GFP_1_1"]),  # one identifier twice
    ({"model.in_channels": 3, "data.channels": ["GFP-1", "GFP_1", "GFP_1_1"]}, ["GFP_1", "GFP_1_1", "GFP_1_1_1"]),
])
def test_input_channels_are_named_as_the_config_knows_them(overrides, names):
    from bioimageio.spec.model import v0_5 as spec

    from unetkit.export.bioimageio import channel_names

    assert channel_names(apply_overrides(RunConfig(), overrides)) == names
    assert [spec.Identifier(name) for name in names] == names  # the spec takes them


def test_the_3d_unet_paper_is_cited_for_3d_models_only(tmp_path):
    """A 3D package keeps both U-Net papers (the 2D case is checked on em-membranes above), and no author note
    is made when --author was given."""
    from unetkit.export.bioimageio import export_bioimageio

    _checkpoint(tmp_path, {"model.name": "unet3d", "inference.tile_shape": [16, 32, 32]})
    result = export_bioimageio(tmp_path, tmp_path / "m.zip", tile_size=16, authors=["Test Person"])
    rdf, _, _ = _package_files(result.path)
    assert [c.get("doi") for c in rdf["cite"]] == ["10.1007/978-3-319-24574-4_28", "10.1007/978-3-319-46723-8_49"]
    assert not any("--author" in note for note in result.left_out)
    assert [axis["halo"] for axis in rdf["outputs"][0]["axes"][2:]] == [4, 4, 4]  # radius 8, a quarter of 16
    assert bioimageio_core.test_model(result.path).status == "passed"


def test_only_models_with_instances_describe_the_watershed_the_package_leaves_out(tmp_path):
    """Every package's README said unetkit separates touching objects with a watershed, a class map's too."""
    for task, channels, told in (("multiclass", 3, False), ("binary", 2, True)):
        folder = tmp_path / task
        folder.mkdir()
        _checkpoint(folder, {"task": task, "model.out_channels": channels})
        out = folder / "model.zip"
        assert main(["export", "--model", str(folder), "--format", "bioimageio", "--out", str(out), "--author",
                     "Test Person", "--tile", "32"]) == 0
        with zipfile.ZipFile(out) as package:
            assert ("watershed" in package.read("README.md").decode()) is told, task
