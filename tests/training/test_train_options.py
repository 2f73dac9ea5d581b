"""`train` options a user gets wrong: each is one line (exit 2) or a note, and nothing is written over an input."""

import hashlib

import pytest

from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, load_config
from unetkit.data.synthetic import write_synthetic_dataset

TINY = ["--epochs", "1", "--quiet", "--set", "model.depth=2", "--set", "model.base_channels=4", "--set",
        "data.patch_size=32", "--set", "data.samples_per_epoch=8", "--set", "train.batch_size=4"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_options") / "d"
    write_synthetic_dataset(root, n_images=3, seed=1, shape=(48, 48))
    return root


def _refused(capsys, argv, *words) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_and_config_inside_the_run_folder_are_never_written_over(data, tmp_path, capsys):
    """`--out r --init-weights r/best.pt` replaced the input checkpoint; `--config r/config.yaml` the config."""
    base = ["train", "--data", str(data), *TINY]
    assert main([*base, "--out", str(tmp_path / "first")]) == 0
    (tmp_path / "iw").mkdir()
    weights = (tmp_path / "iw" / "best.pt")
    weights.write_bytes((tmp_path / "first" / "best.pt").read_bytes())
    before = _sha(weights)
    _refused(capsys, [*base, "--out", str(tmp_path / "iw"), "--init-weights", str(weights)], "holds the input")
    assert _sha(weights) == before
    (tmp_path / "cin").mkdir()
    config = tmp_path / "cin" / "config.yaml"
    config.write_text("train:\n  lr: 0.002\n# my comment\n")
    _refused(capsys, [*base, "--out", str(tmp_path / "cin"), "--config", str(config)], "holds the input")
    assert "# my comment" in config.read_text()


def test_numbers_in_exponent_notation_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-4 as a string: `--set train.lr=1e-4`, a config file and a float from Python were refused."""
    assert apply_overrides(RunConfig(), ["train.lr=1e-4"]).train.lr == pytest.approx(1e-4)
    assert apply_overrides(RunConfig(), {"train.lr": "1e-05"}).train.lr == pytest.approx(1e-5)
    (tmp_path / "c.yaml").write_text("train:\n  lr: 2e-4\n  weight_decay: 1E-2\n")
    config = load_config(tmp_path / "c.yaml")
    assert (config.train.lr, config.train.weight_decay) == (pytest.approx(2e-4), pytest.approx(1e-2))
    assert apply_overrides(RunConfig(), ["data.image_dir=e5"]).data.image_dir == "e5"  # a word stays a word


@pytest.mark.parametrize(("extra", "words"), [
    (["--set", "train.seed=-1"], ["train.seed=-1"]),
    (["--set", "model.pool_sizes=[2,2]"], ["model.pool_sizes", "[[1, 2, 2]"]),
    (["--set", "task=instances"], ["give it as --task instances"]),
    (["--set", "recipe=paper"], ["give it as --recipe paper"]),
    (["--device", "mps"], ["train.device='mps'"]),
    (["--set", "train.epochs=3"], ["train.epochs is given twice"]),
    (["--val-fraction", "0.5", "--val", "VAL"], ["--val-fraction", "give one or the other"]),
    (["--model", "ternaus11"], ["model.base_channels=4, model.depth=2: ternaus11's VGG11 encoder fixes"]),
])
def test_bad_options_are_one_line(data, tmp_path, capsys, extra, words):
    extra = [str(data) if item == "VAL" else item for item in extra]
    _refused(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY, *extra], *words)


def test_config_files_that_are_no_yaml_text_are_one_line(data, tmp_path, capsys):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00bad")
    base = ["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]
    _refused(capsys, [*base, "--config", str(tmp_path / "binary.yaml")], "binary.yaml: not a text file")
    _refused(capsys, [*base, "--config", str(tmp_path)], "is a folder; give a YAML file")


def test_resume_keeps_the_config_and_a_finished_run_keeps_its_records(data, tmp_path, capsys):
    """--config and --recipe were dropped without a word on --resume; resuming a finished run trained nothing and
    rewrote config.yaml and summary.json with the options given."""
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TINY]) == 0
    records = {name: (run / name).read_bytes() for name in ("config.yaml", "summary.json")}
    (tmp_path / "c.yaml").write_text("train:\n  lr: 0.002\n")
    _refused(capsys, ["train", "--out", str(run), "--resume", "--config", str(tmp_path / "c.yaml")],
             "leave out --config")
    _refused(capsys, ["train", "--out", str(run), "--resume", "--recipe", "paper"], "leave out --recipe")
    assert main(["train", "--out", str(run), "--resume", "--precision", "fp32"]) == 0  # a script resuming blindly
    assert "has finished its 1 epochs: nothing to train" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in records} == records
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0


def test_samples_per_epoch_that_is_no_multiple_of_the_batch_is_noted(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY,
                 "--set", "data.samples_per_epoch=10"]) == 0
    assert "each epoch trains 8 patches (whole batches)" in capsys.readouterr().err


def test_a_network_chosen_beside_init_weights_is_refused_not_replaced(data, tmp_path, capsys):
    """`--init-weights nuclei --model unet3d` (or model.base_channels=32) trained the checkpoint's net instead,
    printing only which one it took; a choice that agrees with the checkpoint is kept."""
    base = ["train", "--data", str(data), "--init-weights", "nuclei", "--epochs", "1", "--quiet"]
    _refused(capsys, [*base, "--out", str(tmp_path / "a"), "--model", "unet3d"],
             "model.name=unet3d", "holds model.name=unet")
    _refused(capsys, [*base, "--out", str(tmp_path / "b"), "--set", "model.base_channels=32"],
             "model.base_channels=32", "holds model.base_channels=16")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    from unetkit.recipes import resolve_config

    agreed = resolve_config(overrides=["train.init_weights=nuclei", "model.name=unet", "model.base_channels=16"])
    assert agreed.model.name == "unet"


def test_masks_without_background_and_a_run_without_checkpoint_are_named(tmp_path, capsys):
    """Masks of {1, 2} (background saved as 1) trained a net that finds everything; predicting from a run folder
    still in its first epoch said it was not a run folder."""
    import numpy as np

    from unetkit.data.io import write_png

    rng = np.random.default_rng(0)
    for index in range(2):
        write_png(tmp_path / "d" / "images" / f"{index}.png", rng.integers(0, 255, (48, 48)).astype(np.uint8))
        mask = np.ones((48, 48), np.uint8)
        mask[10:20, 10:20] = 2
        write_png(tmp_path / "d" / "masks" / f"{index}.png", mask)
    _refused(capsys, ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), *TINY],
             "training masks is an object (no label pixel is 0")
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.yaml").write_text("task: binary\n")
    _refused(capsys, ["predict", "--model", str(tmp_path / "early"), str(tmp_path / "d" / "images"), "--out",
                      str(tmp_path / "p")], "a training run without a checkpoint yet")
