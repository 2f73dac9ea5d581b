"""benchmarks/pretrain.py: --oversample (the training split with an image type's samples linked N times,
links not copies, the validation split untouched; on a tiny dsb-layout dataset of two image types) and
the ensemble that ``--weights A B`` scores (the mean of the networks' probabilities)."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import pretrain  # noqa: E402

from unetkit.data.io import write_png  # noqa: E402
from unetkit.data.layouts import find_samples  # noqa: E402


def make_dsb(root: Path, count: int) -> dict[str, str]:
    """``count`` dsb-layout samples, every third a light gray image (brightfield), the rest dark
    (fluorescence); returns name -> the type it was drawn as."""
    kinds = {}
    for i in range(count):
        name = f"s{i:02d}"
        light = i % 3 == 0
        image = np.full((32, 32, 3), 200 if light else 10, dtype=np.uint8)
        image[8:16, 8:16] = 60 if light else 240  # one nucleus, dark on light or bright on dark
        mask = np.zeros((32, 32), dtype=np.uint8)
        mask[8:16, 8:16] = 255
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir()
        write_png(root / name / "images" / f"{name}.png", image)
        write_png(root / name / "masks" / "m0.png", mask)
        kinds[name] = "brightfield" if light else "fluorescence"
    return kinds


def test_oversampled_split_links_each_training_image_of_a_type_n_times(tmp_path, monkeypatch):
    kinds = make_dsb(tmp_path / "data", 20)
    monkeypatch.setitem(pretrain.MODELS["nuclei"], "data", tmp_path / "data")
    run = tmp_path / "runs" / "nuclei"
    train_samples, val_samples = pretrain.split("nuclei", run)
    train_dir, val_dir = pretrain.oversampled_split("nuclei", run, {"brightfield": 3})

    linked = find_samples(train_dir)
    expected = sum(3 if kinds[s.name] == "brightfield" else 1 for s in train_samples)
    assert len(linked) == expected > len(train_samples)
    assert {s.name for s in find_samples(val_dir)} == {s.name for s in val_samples}
    copies = [s for s in linked if s.name.endswith("-copy3")]
    assert copies and all(kinds[s.name.split("-copy")[0]] == "brightfield" for s in copies)
    for folder in train_dir.iterdir():  # links into the data, never copies of it
        assert folder.is_symlink() and folder.resolve().parent == (tmp_path / "data").resolve()
    # a second call (a resume) finds the same folders and adds nothing
    assert pretrain.oversampled_split("nuclei", run, {"brightfield": 3}) == (train_dir, val_dir)
    assert len(find_samples(train_dir)) == expected


def test_probability_mean_gives_the_mean_of_the_networks_softmax_through_a_softmax():
    torch.manual_seed(0)
    nets = [torch.nn.Conv2d(1, 3, 3, padding=1) for _ in range(3)]
    x = torch.randn(2, 1, 8, 8)
    expected = torch.stack([net(x).softmax(1) for net in nets]).mean(0)
    with torch.no_grad():
        got = pretrain.ProbabilityMean(nets)(x).softmax(1)  # what the predictor applies
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, nets[0](x).softmax(1), atol=1e-3)  # not one network's alone


def test_stage_postprocess_takes_post_processing_values_only(tmp_path, capsys):
    for overrides in ([], ["train.lr=0.1"], ["postprocess.threshold=0.2", "model.depth=3"]):
        assert pretrain.set_postprocess("em-membranes", tmp_path, overrides, 2, "", 0, False) == 2
    assert "postprocess.KEY=VALUE" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_stage_object_filter_refuses_a_model_without_three_class_output(capsys):
    assert pretrain.object_filter("em-membranes", pretrain.PACKAGE, 9, 0, False) == 2
    assert "no three-class instances model" in capsys.readouterr().err


def test_packaged_cards_say_what_pretrain_says_of_use_and_limits():
    import yaml

    for name, spec in pretrain.MODELS.items():  # a stage that rewrites a card must renew both
        card = yaml.safe_load((Path(__file__).resolve().parents[2] / "unetkit" / "pretrained" / name / "card.yaml")
                              .read_text())
        assert (card["use"], card["limits"]) == (spec["use"], spec["limits"]), name


def test_stage_validation_renews_only_the_cards_scores(tmp_path, monkeypatch, capsys):
    import shutil

    import yaml

    source = Path(pretrain.PACKAGE) / "em-membranes"
    folder = tmp_path / "em-membranes"
    shutil.copytree(source, folder)
    before = yaml.safe_load((folder / "card.yaml").read_text())
    weights = (folder / "weights.pt").read_bytes()
    scored = []

    class Stage:
        def score(self, path, samples, tta=False):
            scored.append((Path(path), len(samples), tta))
            return {"summary": {"images": len(samples), "dice": 0.5 if tta else 0.4, "dice_ci95": [0.3, 0.6],
                                "by_type": {}}}

    monkeypatch.setitem(pretrain.FINISH, "binary", Stage)
    monkeypatch.setattr(pretrain, "split", lambda name, run: ([], ["a", "b", "c"]))
    assert pretrain.renew_validation("em-membranes", tmp_path, 0, True) == 0
    after = yaml.safe_load((folder / "card.yaml").read_text())
    assert scored == [(folder / "weights.pt", 3, True), (folder / "weights.pt", 3, False)]
    assert after["validation"]["dice"] == 0.5 and after["validation"]["tta"] is True
    assert after["validation"]["isbi"] == before["validation"]["isbi"]  # keys the scoring does not give stay
    keys = list(after["validation"])
    assert keys.index("dice_ci95") == keys.index("dice") + 1  # an interval beside its mean, as scored
    assert keys[-2:] == ["tta", "no_tta"]
    assert {k: v for k, v in after.items() if k != "validation"} == {k: v for k, v in before.items()
                                                                      if k != "validation"}
    assert (folder / "weights.pt").read_bytes() == weights

    (folder / "weights.pt").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))  # not the card's file
    assert pretrain.renew_validation("em-membranes", tmp_path, 0, True) == 1
    assert "not the file its card describes" in capsys.readouterr().err


def test_instances_scores_carry_rounded_intervals_from_ten_images():
    rows = [{"dsb_score": v, "ap50": 1.0} for v in np.linspace(0.3, 0.9, 10)]
    summary = pretrain.rounded_intervals({}, rows, ("dsb_score", "ap50"))
    low, high = summary["dsb_score_ci95"]
    assert low < 0.6 < high and round(low, 4) == low and summary["ap50_ci95"] == [1.0, 1.0]
    assert pretrain.rounded_intervals({}, rows[:9], ("dsb_score",)) == {}


def test_stage_score_takes_post_processing_overrides_for_instances_models_only(capsys):
    weights = [Path(pretrain.PACKAGE) / "em-membranes" / "weights.pt"]
    run = Path(pretrain.ROOT) / "benchmarks" / "out" / "never-written"
    assert pretrain.score_run("em-membranes", run, 1, False, weights, ["postprocess.threshold=0.3"]) == 2
    nuclei = [Path(pretrain.PACKAGE) / "nuclei" / "weights.pt"]
    assert pretrain.score_run("nuclei", run, 1, False, nuclei, ["train.lr=0.1"]) == 2
    assert "postprocess.KEY=VALUE items, for instances models only" in capsys.readouterr().err
    assert not run.exists()
