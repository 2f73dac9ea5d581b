"""A prediction folder names its model and settings (prediction.json): a second predict with another model or
other settings is refused instead of mixing its files with the first one's."""

from __future__ import annotations

import json
import shutil

import pytest

from unetkit.cli import main
from unetkit.errors import InputError
from unetkit.safety.records import RECORD_NAME, claim_prediction_folder


def test_a_folder_is_refused_to_another_model_or_other_settings_and_kept_for_the_same(tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(b"model a")
    second.write_bytes(b"model b")
    out = tmp_path / "pred"
    settings = {"tta": None, "tile_size": 256}
    claim_prediction_folder(out, first, settings)
    (out / "masks").mkdir()
    (out / "masks" / "x.png").write_bytes(b"mask")
    stored = json.loads((out / RECORD_NAME).read_text())
    assert stored["model"] == str(first.resolve()) and stored["settings"] == settings
    assert claim_prediction_folder(out, first, dict(settings)) == out / RECORD_NAME  # the same again: allowed
    with pytest.raises(InputError, match=r"holds the predictions of another model \(.*a\.pt\)"):
        claim_prediction_folder(out, second, settings)
    with pytest.raises(InputError, match=r"other settings \(tile_size, tta differ\)"):
        claim_prediction_folder(out, first, {"tta": True, "tile_size": 512})
    assert json.loads((out / RECORD_NAME).read_text()) == stored  # refusals leave the record as it was


def test_a_record_beside_no_output_is_replaced_and_an_unreadable_one_is_named(tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(b"model a")
    second.write_bytes(b"model b")
    out = tmp_path / "pred"
    claim_prediction_folder(out, first, {})
    (out / ".unetkit.lock").write_text("1234")  # hidden files are no outputs
    claim_prediction_folder(out, second, {})  # a run refused before its first output claimed nothing
    assert json.loads((out / RECORD_NAME).read_text())["model"] == str(second.resolve())
    (out / "x.tif").write_bytes(b"output")
    (out / RECORD_NAME).write_text("{not json")
    with pytest.raises(InputError, match="prediction.json: unreadable prediction record"):
        claim_prediction_folder(out, second, {})


def test_predict_with_other_settings_into_a_prediction_folder_is_refused(dataset, run_dir, tmp_path, capsys,
                                                                         hashes):
    images, out = dataset / "test" / "images", tmp_path / "pred"
    assert main(["predict", "--model", str(run_dir), str(images), "--out", str(out), "--quiet"]) == 0
    before = hashes(out)
    assert main(["predict", "--model", str(run_dir), str(images), "--out", str(out), "--quiet", "--tta"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {out} holds predictions made with other settings (tta" in err
    other = tmp_path / "other"  # the same network in another file: the same sha256, so the same model
    shutil.copytree(run_dir, other)
    assert main(["predict", "--model", str(other), str(images), "--out", str(out), "--quiet"]) == 0
    assert hashes(out) == before  # refused: nothing touched; the same model and settings again: the same files


def test_evaluate_refuses_a_task_the_predicting_model_does_not_have(dataset, run_dir, tmp_path, capsys):
    """A folder of binary predictions scored as regression gave 'mae 10.26' (and multiclass maps as instances
    'dsb_score 0.0') without a word; prediction.json names the model's task."""
    import json

    from unetkit.cli import main

    out = tmp_path / "pred"
    assert main(["predict", "--model", str(run_dir), str(dataset / "test" / "images"), "--out", str(out),
                 "--quiet"]) == 0
    assert json.loads((out / "prediction.json").read_text())["task"] == "binary"
    truth = str(dataset / "test" / "masks")
    for pred in (out, out / "masks"):
        code = main(["evaluate", "--task", "regression", "--truth", truth, "--pred", str(pred)])
        err = capsys.readouterr().err
        assert code == 2 and "holds the predictions of a binary model" in err and "--task binary" in err, err
    assert main(["evaluate", "--task", "binary", "--truth", truth, "--pred", str(out / "masks")]) == 0
    assert main(["evaluate", "--task", "instances", "--truth", truth, "--pred", str(out / "masks")]) == 0
