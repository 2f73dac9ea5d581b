"""Packaged pretrained models: name resolution, sha256 check, 8-bit weights, `unetkit models`, predict by name."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
import torch
import yaml

import unetkit.pretrained as pretrained
from unetkit import checkpoint as ckpt
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.data.io import write_png
from unetkit.errors import InputError
from unetkit.models.registry import build_model
from unetkit.pretrained.build import write_packaged_model

CARD = {"version": 2, "task": "binary", "summary": "a tiny test model",
        "validation": {"dice": 0.5, "dice_ci95": [0.25, 0.75], "by_type": {"fluorescence": {"images": 3}}},
        "limits": ["tiny"]}


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """A package folder with one model 'tiny' (depth 2, 4 base channels) built from a full checkpoint."""
    config = apply_overrides(RunConfig(), {"model.depth": 2, "model.base_channels": 4, "model.norm": "batch",
                                           "inference.tile_size": 32})
    torch.manual_seed(0)
    model = build_model(config.model)
    source = ckpt.save_checkpoint(tmp_path / "run" / "best.pt", {"config": to_dict(config), "model": model.state_dict(),
                                                                  "optimizer": {"unused": 1}})
    root = tmp_path / "pretrained"
    write_packaged_model(source, root / "tiny", CARD)
    monkeypatch.setattr(pretrained, "ROOT", root)
    monkeypatch.chdir(tmp_path)
    return root, model


def test_name_resolves_to_8bit_weights_that_load_as_the_source_model(registry):
    root, source_model = registry
    path = pretrained.resolve_model("tiny")
    assert path == root / "tiny" / "weights.pt"
    stored = torch.load(io.BytesIO(gzip.decompress(path.read_bytes())), weights_only=True)  # as packaged
    assert {v.dtype for v in stored["model_int8"].values()} == {torch.int8}
    assert {v.dtype for v in stored["model"].values() if v.is_floating_point()} == {torch.float16}
    payload = ckpt.load_checkpoint("tiny")
    assert "optimizer" not in payload and "model_int8" not in payload
    model, _ = ckpt.load_model("tiny")
    for (name, theirs), mine in zip(source_model.state_dict().items(), model.state_dict().values(), strict=True):
        if not theirs.is_floating_point():
            continue
        if theirs.ndim >= 2:  # int8 per output channel: within half a step, max|w| / 254, of each weight
            step = theirs.abs().flatten(1).amax(1).view(-1, *[1] * (theirs.ndim - 1)) / 127
            assert torch.all((mine - theirs).abs() <= step / 2 * (1 + 2.0**-20) + 1e-12), name
        else:  # fp16 storage: relative rounding 2^-11
            torch.testing.assert_close(mine, theirs, rtol=2.0**-10, atol=1e-7, msg=name)


def test_packaging_a_packaged_model_again_keeps_its_8bit_weights(registry, tmp_path):
    """What ``benchmarks/pretrain.py --stage postprocess`` relies on: int8 * scale quantizes back to the same
    integers, so a model packaged again with other post-processing values has the weights it had."""
    root, _ = registry
    stored = lambda: torch.load(io.BytesIO(gzip.decompress((root / "tiny" / "weights.pt").read_bytes())),  # noqa: E731
                                weights_only=True)
    before = stored()
    payload = ckpt.load_checkpoint("tiny")
    config = apply_overrides(ckpt.config_of(payload), {"postprocess.method": "watershed"})
    source = ckpt.save_checkpoint(tmp_path / "again.pt", {"config": to_dict(config), "model": payload["model"]})
    write_packaged_model(source, root / "tiny", {**CARD, "version": 3})
    after = stored()
    assert after["config"]["postprocess"]["method"] == "watershed" and after["pretrained"]["version"] == 3
    assert before["model_int8"].keys() == after["model_int8"].keys()
    for key, weight in before["model_int8"].items():
        assert torch.equal(weight, after["model_int8"][key]), key
        # the scale recomputed from int8 * scale: within a few float32 roundings (2^-24 each) of the stored one
        torch.testing.assert_close(before["model_int8_scale"][key], after["model_int8_scale"][key],
                                   rtol=2.0**-22, atol=0)
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key


def test_existing_paths_win_and_unknown_names_pass_through(registry, tmp_path):
    (tmp_path / "tiny").mkdir()  # a run folder named like the model
    assert pretrained.resolve_model("tiny") == pretrained.Path("tiny")
    assert pretrained.resolve_model("no-such-model") == pretrained.Path("no-such-model")
    with pytest.raises(InputError, match="no packaged model 'nope'; available: tiny"):
        pretrained.model_card("nope")


def test_a_folder_that_hides_a_packaged_name_says_how_to_reach_the_model(registry, tmp_path):
    """With a folder 'tiny' (a dataset) here, --model tiny said "checkpoint not found: tiny (give ... a packaged
    model: tiny)", which contradicts itself, and left no way to the packaged model."""
    root, model = registry
    (tmp_path / "tiny").mkdir()
    with pytest.raises(InputError, match="hides the packaged model 'tiny'; .* give its file: ") as refused:
        ckpt.load_checkpoint("tiny")
    weights = str(refused.value).rsplit("give its file: ", 1)[1]
    loaded, _ = ckpt.load_model(weights)
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_a_mistyped_name_is_answered_with_the_packaged_names(registry, tmp_path, capsys):
    write_png(tmp_path / "images" / "a.png", np.zeros((40, 50), np.uint8))
    assert main(["predict", "--model", "tinny", str(tmp_path / "images"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "checkpoint not found: tinny" in err and "packaged model: tiny" in err


def test_changed_weights_are_refused(registry):
    root, _ = registry
    card = yaml.safe_load((root / "tiny" / "card.yaml").read_text())
    assert card["sha256"] == pretrained.sha256_of(root / "tiny" / "weights.pt")
    with open(root / "tiny" / "weights.pt", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(InputError, match="differs from its card"):
        ckpt.load_checkpoint("tiny")


def test_models_command_lists_and_shows_cards(registry, capsys):
    assert main(["models", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "v2" in out and "a tiny test model" in out
    assert "weights of all 1 models verified" in out
    assert main(["models", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "fluorescence:" in out and "- tiny" in out and "sha256" in out
    assert "  dice_ci95: [0.25, 0.75]\n" in out  # an interval on its key's line
    assert main(["models", "nope"]) == 2
    capsys.readouterr()
    assert main(["models", "--json", "--verify"]) == 0  # for scripts: every card, whole
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"]
    assert [card["name"] for card in listed] == ["tiny"] and listed[0]["version"] == 2
    assert main(["models", "tiny", "--json"]) == 0
    card = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert card["sha256"] == pretrained.sha256_of(pretrained.Path(card["weights"]))


def test_predict_and_tune_by_name(registry, tmp_path):
    image = (np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)
    write_png(tmp_path / "images" / "a.png", image)
    args = ["predict", "--model", "tiny", str(tmp_path / "images"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    assert (tmp_path / "out" / "masks" / "a.png").is_file()
    from unetkit.inference.tuning import tune_checkpoint

    with pytest.raises(InputError, match="packaged model"):
        tune_checkpoint("tiny", tmp_path / "images", update=True)


def test_shipped_models_match_their_cards():
    for card in pretrained.list_models():  # the real package: every shipped model loads and is small
        assert card.weights.stat().st_size < 2_000_000  # large files stay out of the repository
        model, config = ckpt.load_model(card.name)
        assert config.task == card.task


def membrane_crop(size: int = 96, cells: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, cell interiors) drawn like an ssTEM slice: Voronoi cells of mid-gray textured cytoplasm
    parted by dark membranes 3 px wide, slightly blurred."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    seeds = np.zeros((size, size), bool)
    seeds[tuple(rng.integers(0, size, (2, cells)))] = True
    _, (rows, cols) = ndimage.distance_transform_edt(~seeds, return_indices=True)
    cell = rows * size + cols
    border = (np.diff(cell, axis=0, prepend=cell[:1]) != 0) | (np.diff(cell, axis=1, prepend=cell[:, :1]) != 0)
    border = ndimage.binary_dilation(border)
    image = ndimage.gaussian_filter(np.where(border, 50.0, 170.0) + rng.normal(0, 12, border.shape), 1.0)
    return np.clip(image, 0, 255).astype(np.uint8), ~border


def test_shipped_em_membranes_model_finds_membranes():
    import unetkit

    card = pretrained.model_card("em-membranes")
    assert card.task == "binary" and card.sha256 == pretrained.sha256_of(card.weights)
    assert ckpt.load_checkpoint("em-membranes")["pretrained"]["name"] == "em-membranes"  # sha256 checked
    image, interiors = membrane_crop()
    result = unetkit.load("em-membranes", device="cpu", tile_size=128).predict(image)
    assert result.mask.shape == image.shape
    membranes = ~interiors
    # measured 0.82 / 0.98 / 0.80 (ISBI membranes are drawn thicker than these 3 px ones)
    assert result.mask[interiors].mean() > 0.7  # most cell interior pixels are foreground
    assert (~result.mask[membranes]).mean() > 0.9  # membrane pixels are background
    assert result.foreground[interiors].mean() - result.foreground[membranes].mean() > 0.5


def test_shipped_em_membranes_model_gives_one_label_per_cell_with_instances():
    """Its card's post-processing (a seeded watershed with one-pixel lines) turns the membrane map into cells."""
    from scipy import ndimage

    import unetkit

    assert ckpt.config_of(ckpt.load_checkpoint("em-membranes")).postprocess.method == "watershed"
    image, interiors = membrane_crop()
    labels = unetkit.load("em-membranes", device="cpu", tile_size=128).predict(image, instances=True).labels
    cells, count = ndimage.label(interiors)
    owners = []
    for cell in range(1, count + 1):  # measured: 12 cells, 12 labels, each cell one label
        ids, sizes = np.unique(labels[cells == cell], return_counts=True)
        assert ids[np.argmax(sizes)] > 0 and sizes.max() > 0.9 * sizes.sum(), cell  # one label covers it
        owners.append(ids[np.argmax(sizes)])
    assert len(set(owners)) == count == labels.max()  # a label of its own for each cell, none spare


def test_cli_fine_tunes_the_shipped_nuclei_model_on_gray_images(tmp_path, capsys):
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", 4, seed=3, shape=(96, 96))
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "data"), "--val", str(tmp_path / "data"), "--out", str(out),
                 "--task", "instances", "--init-weights", "nuclei", "--epochs", "1", "--quiet", "--no-autotune",
                 "--set", "data.patch_size=64", "--set", "data.samples_per_epoch=4", "--set", "train.batch_size=2",
                 "--set", "train.overlays=0", "--set", "inference.tile_size=96"])
    assert code == 0
    assert "fine-tuning from nuclei: network and normalisation taken from it" in capsys.readouterr().out
    config = ckpt.config_of(ckpt.load_checkpoint(out / "last.pt"))
    shipped = ckpt.config_of(ckpt.load_checkpoint("nuclei"))
    assert config.model == shipped.model  # in_channels 3: the gray images were repeated to RGB, as in prediction
    assert config.train.init_weights == "nuclei"


def test_shipped_em_organelles_model_finds_membranes_and_names_its_classes():
    import unetkit

    card = pretrained.model_card("em-organelles")
    assert card.task == "multiclass" and card.sha256 == pretrained.sha256_of(card.weights)
    _, config = ckpt.load_model("em-organelles")
    assert card.fields["classes"] == list(config.data.class_names) == [
        "background", "membranes", "mitochondrion", "mitochondrial boundaries", "PSD", "vesicles", "axon"]
    image, interiors = membrane_crop()
    result = unetkit.load("em-organelles", device="cpu", tile_size=128).predict(image)
    assert result.probabilities.shape == (7, *image.shape)
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, atol=1e-4)
    # measured 1.00 / 0.96 on three such crops: dark 3 px lines are membranes, cytoplasm background
    assert (result.mask[~interiors] == 1).mean() > 0.9
    assert (result.mask[interiors] == 0).mean() > 0.85


def test_packaged_weights_are_gzipped_and_a_damaged_file_is_named(registry):
    root, _ = registry
    weights = root / "tiny" / "weights.pt"
    assert weights.read_bytes()[:2] == ckpt.GZIP_MAGIC
    damaged = root / "damaged.pt"
    damaged.write_bytes(weights.read_bytes()[:200])  # truncated
    with pytest.raises(InputError, match="damaged.pt: not a readable PyTorch checkpoint"):
        ckpt.load_checkpoint(damaged)
