"""The user journey through the CLI: synth -> train -> predict -> evaluate, plus info and demo."""

import json

import pytest

from unetkit.cli import build_parser, main

TINY = ["--set", "model.depth=3", "--set", "model.base_channels=8", "--set", "data.patch_size=64",
        "--set", "data.samples_per_epoch=16", "--set", "train.batch_size=8", "--set", "inference.tile_size=64"]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_info_json_paper_configuration(capsys):
    argv = ["info", "--model", "unet", "--padding", "valid", "--in-channels", "1", "--classes", "2",
            "--input-size", "572", "--json"]
    assert main(argv) == 0
    info = last_json(capsys)
    assert info["input_size"] == [572, 572] and info["output_size"] == [388, 388]
    assert info["parameters"] == 31_030_658
    assert info["gflops"] > 0 and info["receptive_field"] == [204, 204]


def test_info_table_and_invalid_size(capsys):
    assert main(["info", "--input-size", "256", "--padding", "same", "--depth", "4"]) == 0
    assert "parameters" in capsys.readouterr().out
    assert main(["info", "--input-size", "570"]) == 2
    assert "use 556 or 572" in capsys.readouterr().err
    # each of these was a traceback (exit 1) from deep inside the model or the option parsing
    for argv, words in ((["--depth", "0"], "model.depth=0: expected an integer in [1, 10]"),
                        (["--depth", "30"], "model.depth=30"), (["--in-channels", "0"], "model.in_channels=0"),
                        (["--pool-sizes", "a,b"], "--pool-sizes 'a,b': expected integer factors"),
                        (["--input-size", "5", "6", "7"], "input size needs 2 values")):
        assert main(["info", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_every_subcommand_is_registered():
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    expected = {"info", "synth", "train", "predict", "evaluate", "demo", "weights", "submit", "tune-postprocess"}
    assert expected <= commands


def test_synth_train_predict_evaluate(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--n-train", "4", "--n-val", "2", "--n-test", "2", "--seed", "3"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(data / "train"), "--val", str(data / "val"), "--out", str(run),
                 "--epochs", "2", "--quiet", "--precision", "fp32", *TINY]) == 0
    assert (run / "best.pt").is_file() and (run / "curves.png").is_file()
    assert json.loads((run / "summary.json").read_text())["precision"] == "fp32"
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run), str(data / "test" / "images"), "--out", str(pred), "--quiet",
                 "--instances"]) == 0
    for sub in ("masks", "probabilities", "overlays", "labels", "instances", "objects"):
        assert len(list((pred / sub).iterdir())) == 2, sub
    capsys.readouterr()
    assert main(["evaluate", "--task", "binary", "--truth", str(data / "test" / "masks"), "--pred",
                 str(pred / "masks"), "--json"]) == 0
    summary = last_json(capsys)
    assert summary["images"] == 2 and 0 <= summary["dice"] <= 1 and "rand_error" in summary
    assert main(["evaluate", "--task", "instances", "--truth", str(data / "test" / "masks"), "--pred",
                 str(pred / "labels"), "--json"]) == 0
    assert 0 <= last_json(capsys)["dsb_score"] <= 1
    # resume: continue the same run for one more epoch (precision is a speed setting a resume may change)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--quiet", "--precision", "bf16"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["precision"] == "bfloat16"


@pytest.mark.parametrize("argv,message", [
    (["train", "--data", "{tmp}/empty", "--out", "{tmp}/r"], "empty"),
    (["train", "--data", "{tmp}/missing", "--out", "{tmp}/r"], "missing"),
    (["predict", "--model", "{tmp}/nothing.pt", "{tmp}", "--out", "{tmp}/p"], "nothing.pt"),
    (["train", "--data", "{tmp}/empty", "--out", "{tmp}/r", "--set", "train.lr=fast"], "expects a number"),
])
def test_bad_input_gives_one_clear_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_demo_runs_end_to_end_quickly(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--time-budget", "4", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_images"] == 6 and 0 <= metrics["dice"] <= 1
    assert (out / "curves.png").is_file() and list((out / "test" / "overlays").glob("*.png"))
    assert "Demo finished" in capsys.readouterr().out

    # again into the same folder: options checked before anything is touched, and nothing it did not write removed
    (out / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--time-budget", "-1", "--quiet"]) == 2
    assert (out / "notes.txt").is_file() and (out / "best.pt").is_file()
    assert "time_budget_s" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--seed", "-1", "--quiet"]) == 2
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--time-budget", "1", "--quiet"]) == 2
    assert "holds files the demo did not write (e.g. notes.txt)" in capsys.readouterr().err
    (out / "notes.txt").unlink()
    added = next((out / "data").rglob("*.png")).with_name("mine.png")
    added.write_bytes(b"x")
    assert main(["demo", "--out", str(out), "--time-budget", "1", "--quiet"]) == 2
    assert "mine.png" in capsys.readouterr().err and added.is_file()
    added.unlink()
    for mine in (out / "test" / "my_notes.txt", out / "test" / "hand_corrected" / "synth_0000.tif",
                 out / "overlays" / "figure.png"):  # under the demo's own folders: they were deleted with them
        mine.parent.mkdir(exist_ok=True)
        mine.write_text("mine")
        assert main(["demo", "--out", str(out), "--time-budget", "1", "--quiet"]) == 2
        assert str(mine.relative_to(out)) in capsys.readouterr().err and mine.is_file()
        mine.unlink()
    assert main(["demo", "--out", str(out), "--time-budget", "1", "--quiet"]) == 0  # its own files: replaced


def test_instances_task_and_tune_postprocess(tmp_path, capsys):
    from unetkit.checkpoint import config_of, load_checkpoint
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", n_images=3, seed=5, shape=(64, 64))
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data"), "--val", str(tmp_path / "data"), "--out", str(run),
                 "--task", "instances", "--epochs", "1", "--quiet", *TINY]) == 0
    assert config_of(load_checkpoint(run / "best.pt")).model.out_channels == 3  # background/interior/boundary
    capsys.readouterr()
    grid = ["--grid", '{"threshold": [0.3, 0.5], "min_size": [1, 50]}']
    assert main(["tune-postprocess", "--model", str(run), "--data", str(tmp_path / "data"), "--update", *grid]) == 2
    assert "13 truth objects, fewer than 100" in capsys.readouterr().err  # a choice on a few objects is noise
    assert main(["tune-postprocess", "--model", str(run), "--data", str(tmp_path / "data"), "--update", *grid,
                 "--min-objects", "10", "--json"]) == 0
    out = capsys.readouterr().out
    best = json.loads(out.strip().splitlines()[-1])["best"]
    # the line names what the grid tuned, not the other postprocess keys
    assert f"stored in the checkpoint: threshold={best['threshold']}, min_size={best['min_size']}\n" in out
    stored = config_of(load_checkpoint(run / "best.pt")).postprocess
    assert (stored.threshold, stored.min_size) == (best["threshold"], best["min_size"])
    # the object filter was fitted again for the new values and stored beside them
    assert (stored.object_weights, stored.min_object_score) == (best["object_weights"], best["min_object_score"])
    assert main(["tune-postprocess", "--model", str(run), "--data", str(tmp_path / "data"), "--grid", "{bad"]) == 2


def test_info_describes_the_network_of_a_checkpoint_or_packaged_model(capsys):
    from unetkit import checkpoint as ckpt

    assert main(["info", "--model", "nuclei", "--json"]) == 0  # the packaged model, at its prediction tile
    info = last_json(capsys)
    model, config = ckpt.load_model("nuclei")
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["in_channels"] == config.model.in_channels == 3 and info["base_channels"] == 16
    assert info["input_size"] == [config.inference.tile_size] * 2
    assert main(["info", "--model", "unte"]) == 2  # neither a network nor a model: both kinds named
    err = capsys.readouterr().err
    assert "not a network (unet, unet3d, ternaus11)" in err and "nuclei" in err


def test_info_of_a_paper_run_shows_the_tile_prediction_takes(tmp_path, capsys):
    """A paper run stores tile 256, which its valid net cannot take: info refused it, predict rounds it to 252."""
    from unetkit import checkpoint as ckpt
    from unetkit.config import RunConfig, apply_overrides, to_dict
    from unetkit.models.registry import build_model

    config = apply_overrides(RunConfig(), {"model.padding": "valid", "model.base_channels": 2,
                                           "inference.tile_size": 256})
    ckpt.save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": build_model(config.model)
                                                .state_dict()})
    assert main(["info", "--model", str(tmp_path), "--json"]) == 0
    info = last_json(capsys)
    assert info["input_size"] == [252, 252] and info["output_size"] == [68, 68]


def test_tune_postprocess_keeps_configured_values_that_tie(tmp_path, capsys, monkeypatch):
    """An untrained net scores 0 at every grid point; --update stored the first grid point (0.4 / 0.5 / 5) over the
    configured values. As at the end of training, a tie keeps them."""
    from unetkit.checkpoint import config_of, load_checkpoint
    from unetkit.data.synthetic import write_synthetic_dataset
    from unetkit.inference import tuning

    write_synthetic_dataset(tmp_path / "data", n_images=3, seed=5, shape=(64, 64))
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data"), "--val", str(tmp_path / "data"), "--out", str(run),
                 "--task", "instances", "--epochs", "1", "--quiet", *TINY,
                 "--set", "postprocess.tune_after_training=false"]) == 0
    before = config_of(load_checkpoint(run / "best.pt")).postprocess
    real = tuning.tune_postprocess

    def all_tied(*args, **kwargs):  # every grid point scores the same, and another than the configured comes first
        import dataclasses

        best, rows = real(*args, **kwargs)
        rows = sorted(({**row, "score": 0.25} for row in rows), key=lambda row: (row["threshold"], row["min_size"]))
        return dataclasses.replace(best, threshold=rows[0]["threshold"], min_size=rows[0]["min_size"]), rows

    monkeypatch.setattr(tuning, "tune_postprocess", all_tied)
    grid = json.dumps({"threshold": [0.3, before.threshold], "min_size": [1, before.min_size]})
    assert main(["tune-postprocess", "--model", str(run), "--data", str(tmp_path / "data"), "--update",
                 "--min-objects", "0", "--grid", grid]) == 0
    after = config_of(load_checkpoint(run / "best.pt")).postprocess
    assert (after.threshold, after.min_size) == (before.threshold, before.min_size)
    assert f"stored in the checkpoint: threshold={before.threshold}, min_size={before.min_size}" in \
        capsys.readouterr().out


def test_an_interrupted_synth_leaves_no_dataset(tmp_path, monkeypatch, capsys):
    """Ctrl-C during synth left 2 of 40 images under the final name; train then used them without a word."""
    import unetkit.data.synthetic as synthetic

    def interrupted(folder, **options):
        (folder / "train" / "images").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_synthetic_splits", interrupted)
    assert main(["synth", "--out", str(tmp_path / "s")]) != 0
    assert "interrupted" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert main(["synth", "--out", str(tmp_path / "s"), "--n-train", "2", "--n-val", "1", "--n-test", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["test", "train", "val"]


def test_synth_into_the_current_folder(tmp_path, monkeypatch):
    """`synth --out . --n 1` in an empty folder ended in "PosixPath('.') has an empty name"."""
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--out", ".", "--n", "1", "--size", "32", "32"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "masks"]
