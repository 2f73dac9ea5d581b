"""benchmarks/soup_checkpoints.py and ``pretrain.py --stage soup``: the weight mean of checkpoints of one
network (checked on hand values and on the saved file), refusals (other networks, an existing output), and a
soup run folder whose post-processing is tuned on training images only."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import pretrain  # noqa: E402
import soup_checkpoints  # noqa: E402
from test_pretrain import make_dsb  # noqa: E402

from unetkit import checkpoint as ckpt  # noqa: E402
from unetkit.config import RunConfig, apply_overrides, to_dict  # noqa: E402
from unetkit.inference.postprocess import DEFAULT_GRID  # noqa: E402
from unetkit.models.registry import build_model  # noqa: E402

TINY = {"task": "instances", "model.depth": 2, "model.base_channels": 4, "model.norm": "batch",
        "model.in_channels": 3, "model.out_channels": 3, "inference.tile_size": 32, "postprocess.tune_images": 4}


def tiny_checkpoint(path: Path, seed: int, **overrides) -> Path:
    config = apply_overrides(RunConfig(), {**TINY, **overrides})
    torch.manual_seed(seed)
    model = build_model(config.model)
    return ckpt.save_checkpoint(path, {"config": to_dict(config), "model": model.state_dict(),
                                       "optimizer": {"state": 1}, "history": [{"epoch": 1}], "epoch": 1})


def test_soup_state_is_the_mean_of_float_tensors_and_keeps_the_first_counters():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(7)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    c = {"w": torch.tensor([2.0, 1.0]), "n": torch.tensor(1)}
    soup = soup_checkpoints.soup_state([a, b, c])
    assert torch.equal(soup["w"], torch.tensor([2.0, 3.0]))
    assert int(soup["n"]) == 7 and soup["w"].dtype == torch.float32


def test_soup_state_names_the_first_key_that_differs():
    with pytest.raises(ValueError, match="w has shape"):
        soup_checkpoints.soup_state([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="e.g. v"):
        soup_checkpoints.soup_state([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}])


def test_soup_file_holds_the_mean_weights_and_where_they_came_from(tmp_path, monkeypatch, capsys):
    a, b = tiny_checkpoint(tmp_path / "a.pt", 0), tiny_checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "soup.pt"
    monkeypatch.setattr(sys, "argv", ["soup_checkpoints.py", str(out), str(a), str(b)])
    assert soup_checkpoints.main() == 0
    model, _ = ckpt.load_model(out)  # loads as a network of the same architecture
    first, second = ckpt.load_checkpoint(a)["model"], ckpt.load_checkpoint(b)["model"]
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (first[key] + second[key]) / 2, rtol=0, atol=1e-7 * max(
                1.0, float(first[key].abs().max())))
    payload = ckpt.load_checkpoint(out)
    assert "optimizer" not in payload and payload["history"] == [{"epoch": 1}]
    assert [entry["sha256"] for entry in payload["soup_of"]] == [soup_checkpoints.sha256(p) for p in (a, b)]
    # a second run never writes over the soup (or any existing file)
    before = out.read_bytes()
    assert soup_checkpoints.main() == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before


def test_checkpoints_of_different_networks_make_no_soup(tmp_path, monkeypatch, capsys):
    a = tiny_checkpoint(tmp_path / "a.pt", 0)
    b = tiny_checkpoint(tmp_path / "b.pt", 0, **{"model.base_channels": 8})
    monkeypatch.setattr(sys, "argv", ["soup_checkpoints.py", str(tmp_path / "soup.pt"), str(a), str(b)])
    assert soup_checkpoints.main() == 2
    assert "different networks" in capsys.readouterr().err
    assert not (tmp_path / "soup.pt").exists()


def test_pretrain_soup_stage_tunes_the_post_processing_on_training_images(tmp_path, monkeypatch, capsys):
    from unetkit.inference.object_filter import FEATURES

    make_dsb(tmp_path / "data", 12)
    monkeypatch.setitem(pretrain.MODELS["nuclei"], "data", tmp_path / "data")
    first_filter = [0.5] * (len(FEATURES) + 1)  # the first member's object filter: fitted for another network
    a = tiny_checkpoint(tmp_path / "a.pt", 0, **{"postprocess.threshold": 0.123,  # not a grid point
                                                 "postprocess.tune_min_objects": 0,  # tune on a few nuclei
                                                 "postprocess.object_weights": first_filter,
                                                 "postprocess.min_object_score": 0.9})
    b = tiny_checkpoint(tmp_path / "b.pt", 1)
    run = tmp_path / "runs" / "nuclei"
    assert pretrain.soup("nuclei", run, [a, b]) == 0
    config = ckpt.config_of(ckpt.load_checkpoint(run / "last.pt"))
    assert config.postprocess.threshold in DEFAULT_GRID["threshold"]  # tuned, not the first's 0.123
    # the filter is the soup's own fit (4 tiny crops: too few wrong objects to fit one, so none), not the first's
    assert config.postprocess.object_weights != first_filter and config.postprocess.min_object_score == 0.0
    assert "tuned on 4 training images" in capsys.readouterr().out
    assert pretrain.soup("nuclei", run, [a, b]) == 2  # the run folder is never written over
    assert "exists" in capsys.readouterr().err
