"""A run can be repeated from what it records, and a resume does what the run's own limits say."""

from __future__ import annotations

import json

import pytest
import torch

from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides
from unetkit.safety.runs import data_fingerprint, same_data
from unetkit.training.loop import resume_schedule


def _train(dataset, run, tiny, *extra):
    return main(["train", "--data", str(dataset / "train"), "--val", str(dataset / "val"), "--out", str(run),
                 "--quiet", *tiny, *extra])


def test_a_run_stopped_by_its_budget_has_nothing_left_to_train(dataset, tmp_path, tiny, capsys):
    """Each resume of a budget-stopped run trained one more step and validated again, changing last.pt every time
    (a "resume until done" loop never ended)."""
    run = tmp_path / "run"
    assert _train(dataset, run, tiny, "--epochs", "500", "--time-budget", "2") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by_time_budget"] and summary["epochs_run"] < 500
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()
    for _ in range(2):
        assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
        assert "has spent its time budget" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == before
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + summary["epochs_run"]


def test_a_budget_given_or_taken_away_on_resume_changes_the_schedule_with_it(capsys):
    """--time-budget on the resume of an epoch run did not anneal (the schedule stayed epoch cosine), and a budget run
    could not drop its budget (cosine-time needs one, and the schedule could not be changed on resume)."""
    epochs = RunConfig()
    assert epochs.train.scheduler == "cosine"
    budgeted = resume_schedule(epochs, apply_overrides(epochs, {"train.time_budget_s": 60}))
    assert budgeted.train.scheduler == "cosine-time" and "anneals over the 60 s budget" in capsys.readouterr().err
    timed = apply_overrides(epochs, {"train.time_budget_s": 60, "train.scheduler": "cosine-time"})
    assert resume_schedule(timed, apply_overrides(timed, {"train.time_budget_s": 0})).train.scheduler == "cosine"
    assert resume_schedule(timed, apply_overrides(timed, {"train.time_budget_s": 90})).train.scheduler == \
        "cosine-time"  # a longer budget keeps its schedule
    assert resume_schedule(epochs, epochs) == epochs


def test_the_data_fingerprint_sees_a_mask_corrected_in_place(tmp_path):
    """Only file names were hashed: masks corrected in place (same names) were trained on without a word."""
    (tmp_path / "masks").mkdir()
    mask = tmp_path / "masks" / "a.png"
    mask.write_bytes(b"\x00" * 100)
    stored = data_fingerprint(tmp_path)
    mask.write_bytes(b"\x00" * 99 + b"\x01")  # same name, same size, another pixel
    found = data_fingerprint(tmp_path)
    assert found["names_sha256"] == stored["names_sha256"] and not same_data(stored, found)
    older = {key: stored[key] for key in ("files", "names_sha256")}  # a record of an earlier unetkit
    assert same_data(older, found)


def test_summary_records_what_repeats_the_run(dataset, tmp_path, tiny):
    """The run kept no versions, command, split or resumes; the lr column showed the rate after each epoch."""
    run = tmp_path / "run"
    assert main(["train", "--data", str(dataset / "train"), "--val-fraction", "0.4", "--out", str(run), "--quiet",
                 *tiny, "--epochs", "2", "--set", "train.warmup_epochs=1"]) == 0
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    environment = summary["environment"]
    assert environment["torch"] == torch.__version__ and environment["precision"] in ("fp32", "bfloat16")
    assert environment["command"] and environment["cpu"]  # this process's argv (pytest's here)
    assert summary["resumes"] == [{"after_epoch": 2, "changed": {"train.epochs": "3"}}]
    assert len(summary["validation_images"]) == 1  # 40 % of 3 images, by name
    import csv

    lrs = [float(row["lr"]) for row in csv.DictReader((run / "metrics.csv").open())]
    assert len(lrs) == 3 and lrs[0] < lrs[1]  # the warm-up epoch's first step is at a fraction of the peak


def test_a_run_that_finished_its_epochs_within_its_budget_trains_on_when_extended(dataset, tmp_path, tiny, capsys):
    """A run with a budget that ended by its epochs was called 'spent' on resume with more epochs (and an epoch run
    resumed with a budget trained nothing)."""
    run = tmp_path / "run"
    assert _train(dataset, run, tiny, "--epochs", "1", "--time-budget", "3600") == 0
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert "spent its time budget" not in capsys.readouterr().err
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 1 + 2
    epochs = tmp_path / "epochs"
    assert _train(dataset, epochs, tiny, "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["train", "--out", str(epochs), "--resume", "--epochs", "2", "--time-budget", "3600", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "anneals over the 3600 s budget" in err and "nothing to train" not in err
    assert len((epochs / "metrics.csv").read_text().strip().splitlines()) == 1 + 2


def test_the_starting_weights_are_hashed_when_loaded_and_same_values_may_be_given_on_resume(dataset, tmp_path, tiny):
    """init_weights_sha256 was computed when summary.json was written (a file changed since named weights the run
    never started from); --resume --set model.depth=2 on a depth-2 run was refused as a change."""
    import hashlib

    source, run = tmp_path / "source", tmp_path / "run"
    assert _train(dataset, source, tiny, "--epochs", "1") == 0
    started = hashlib.sha256((source / "best.pt").read_bytes()).hexdigest()
    assert _train(dataset, run, tiny, "--epochs", "1", "--init-weights", str(source / "best.pt")) == 0
    assert json.loads((run / "summary.json").read_text())["init_weights_sha256"] == started
    with (source / "best.pt").open("ab") as handle:  # the source changes after the run loaded it
        handle.write(b"later")
    depth = [item for item in tiny if item.startswith("model.depth=")]
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet", "--set", depth[0]]) == 0
    assert json.loads((run / "summary.json").read_text())["init_weights_sha256"] == started


def test_an_older_prediction_record_gains_what_this_version_keeps(tmp_path):
    """A folder predicted before class names were recorded kept a record without them, and evaluate went on matching
    classes to folders sorted."""
    from unetkit.safety.records import claim_prediction_folder

    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    out = tmp_path / "pred"
    claim_prediction_folder(out, model, {"tta": False}, "multiclass")  # as an earlier version wrote it
    (out / "masks").mkdir()
    (out / "masks" / "a.png").write_bytes(b"x")
    claim_prediction_folder(out, model, {"tta": False}, "multiclass", {"class_names": ["bg", "a"]})
    assert json.loads((out / "prediction.json").read_text())["class_names"] == ["bg", "a"]


def test_a_budget_spent_while_an_unvalidated_epoch_was_saved_still_validates_it(dataset, tmp_path, tiny, monkeypatch):
    """With train.val_every=2, a budget that ran out while epoch 3 (no validation epoch) was saved ended the run with
    its final weights never validated: best.pt and the summary ignored them."""
    from unetkit.training import loop

    answers = iter([False] * 5 + [True])  # after epoch 1, top of 2, after 2, top of 3, after 3: spent at top of 4
    monkeypatch.setattr(loop, "budget_spent", lambda run: next(answers))
    run = tmp_path / "run"
    assert _train(dataset, run, tiny, "--epochs", "6", "--set", "train.val_every=2") == 0
    import csv

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert rows[-1]["val_dice"] not in ("", None)  # the last epoch was validated
    assert json.loads((run / "summary.json").read_text())["stopped_by_time_budget"]


def test_a_resume_with_more_epochs_starts_at_the_new_schedules_rate(dataset, tmp_path, tiny):
    """Extending --epochs on resume ran its first step at the old schedule's last rate (1 % of the peak): the
    optimiser's stored rate was kept until the first step moved the schedule on."""
    import csv

    extended, fresh = tmp_path / "extended", tmp_path / "fresh"
    assert _train(dataset, extended, tiny, "--epochs", "2") == 0
    assert main(["train", "--out", str(extended), "--resume", "--epochs", "4", "--quiet"]) == 0
    assert _train(dataset, fresh, tiny, "--epochs", "4") == 0
    rates = [[float(row["lr"]) for row in csv.DictReader((run / "metrics.csv").open())] for run in (extended, fresh)]
    assert rates[0][2] == pytest.approx(rates[1][2])  # the extended run's epoch 3 is the fresh 4-epoch run's
