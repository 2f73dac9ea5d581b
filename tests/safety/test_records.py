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


def test_a_run_refused_before_its_first_output_leaves_no_record(tmp_path, capsys):
    """A refused predict left prediction.json (and its folder) behind, claiming a folder that held nothing."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.tif").write_text("not a tiff")
    out = tmp_path / "pred"
    assert main(["predict", "--model", "nuclei", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 2
    assert "x.tif" in capsys.readouterr().err
    assert not out.exists()
    import numpy as np

    from unetkit.data.io import write_png

    (tmp_path / "good").mkdir()
    write_png(tmp_path / "good" / "y.png", np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8))
    assert main(["predict", "--model", "nuclei", str(tmp_path / "good"), "--out", str(out), "--quiet"]) == 0
    assert main(["predict", "--model", "nuclei", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 2
    assert (out / RECORD_NAME).is_file()  # a folder with outputs keeps the record that names them


def test_the_record_holds_only_the_output_options_the_task_reads(tmp_path):
    """A multiclass predict recorded save_probabilities: true though it wrote no probability maps."""
    import numpy as np

    import unetkit
    from unetkit.data.io import write_png

    write_png(tmp_path / "in" / "x.png", np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8))
    for model, kept, left in (("em-organelles", "class_probabilities", "save_probabilities"),
                              ("nuclei", "save_probabilities", "class_probabilities")):
        unetkit.predict_files(model, tmp_path / "in", tmp_path / model, progress=False, device="cpu")
        settings = json.loads((tmp_path / model / RECORD_NAME).read_text())["settings"]
        assert kept in settings and left not in settings, (model, settings)
    assert not (tmp_path / "em-organelles" / "probabilities").exists()


def test_a_record_of_another_version_with_one_setting_more_is_the_same_settings(tmp_path):
    """Folders predicted before the record held only the options a task reads were refused to the same model and
    settings ("class_probabilities differs")."""
    model = tmp_path / "m.pt"
    model.write_bytes(b"model")
    out = tmp_path / "pred"
    claim_prediction_folder(out, model, {"tta": False, "save_probabilities": True, "class_probabilities": False})
    (out / "masks").mkdir()
    (out / "masks" / "x.png").write_bytes(b"mask")
    claim_prediction_folder(out, model, {"tta": False, "save_probabilities": True})  # accepted
    with pytest.raises(InputError, match="tta differs"):
        claim_prediction_folder(out, model, {"tta": True, "save_probabilities": True})
