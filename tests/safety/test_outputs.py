"""Issue 15, cases 1-3 and 6: outputs never overwrite inputs, never collide, never appear half-written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from unetkit.cli import main
from unetkit.safety.atomic import atomic_path, remove_stale_temporaries, temporary_path


def _exit_one_line(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_predict_into_the_dataset_folder_of_its_input_is_refused(dataset, run_dir, tmp_path, capsys, hashes):
    tree_hashes = hashes
    gt = tmp_path / "gt"
    shutil.copytree(dataset / "test", gt)
    before = tree_hashes(gt)
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(gt / "images"), "--out", str(gt),
                                  "--quiet"])
    assert "holds the input" in err and str(gt) in err
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(gt / "images"), "--out",
                                  str(gt / "images"), "--quiet"])
    assert "holds the input" in err
    # a dataset folder is refused even when the inputs come from elsewhere
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(dataset / "val" / "images"), "--out",
                                  str(gt), "--quiet"])
    assert "dataset folder" in err
    assert tree_hashes(gt) == before


def test_predict_out_that_is_a_file_is_refused(dataset, run_dir, tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(dataset / "test" / "images"),
                                  "--out", str(out), "--quiet"])
    assert "existing file" in err and out.read_text() == "keep me"


def test_stem_collisions_are_refused_before_predicting(dataset, run_dir, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        shutil.copy(next((dataset / "test" / "images").iterdir()), folder / "img_0.png")
    out = tmp_path / "pred"
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(a), str(b), "--out", str(out), "--quiet"])
    assert "img_0" in err and str(a / "img_0.png") in err and str(b / "img_0.png") in err
    assert not (out / "masks").exists()
    # x.png next to x.tif in one folder
    c = tmp_path / "c"
    c.mkdir()
    image = np.asarray(Image.open(a / "img_0.png"))
    Image.fromarray(image).save(c / "x.png")
    import tifffile

    tifffile.imwrite(c / "x.tif", image)
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(c), "--out", str(out), "--quiet"])
    assert "'x'" in err


def test_predict_writes_no_file_under_its_final_name_until_complete(dataset, run_dir, tmp_path, monkeypatch):
    """A failure while an output is written (here: the PNG encoder) leaves no file under the final name."""
    def broken(image, handle, filename):
        handle.write(b"\x89PNG\r\n")  # a few bytes, then the disk is full
        raise OSError(28, "No space left on device")

    Image.init()
    monkeypatch.setitem(Image.SAVE, "PNG", broken)
    out = tmp_path / "pred"
    code = main(["predict", "--model", str(run_dir), str(dataset / "test" / "images"), "--out", str(out),
                 "--quiet", "--no-probabilities"])
    assert code == 2
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.name != "prediction.json"]
    assert leftovers == [], leftovers  # the folder's record (model and settings) is whole; no output is


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".txt") and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".last.pt.{pid}.tmp.pt"  # what temporary_path makes
    stale.write_bytes(b"x")
    mine = temporary_path(tmp_path / "best.pt")
    mine.write_bytes(b"y")  # this process is alive: its temporary file stays
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert mine.exists() and not stale.exists()


def test_temporary_name_keeps_compound_suffixes(tmp_path):
    """x.nii.gz is written as .x.nii.gz.<pid>.tmp.nii.gz, so nibabel still sees a gzipped NIfTI."""
    import os

    assert temporary_path(tmp_path / "x.nii.gz").name == f".x.nii.gz.{os.getpid()}.tmp.nii.gz"
    assert temporary_path(tmp_path / "x.png").name == f".x.png.{os.getpid()}.tmp.png"
    dead = tmp_path / ".x.nii.gz.999999999.tmp.nii.gz"  # no such pid
    dead.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [dead]


def test_nifti_volumes_are_written_atomically(tmp_path, monkeypatch):
    import nibabel

    from unetkit.data.volumes import read_volume_file, write_volume

    volume = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = tmp_path / "v.nii.gz"
    seen = []
    real = nibabel.save

    def save(image, filename):
        seen.append(str(filename))
        assert not out.exists(), "nothing under the final name while writing"
        real(image, filename)

    monkeypatch.setattr(nibabel, "save", save)
    write_volume(out, volume)
    assert len(seen) == 1 and seen[0] != str(out) and seen[0].endswith(".tmp.nii.gz")
    np.testing.assert_array_equal(read_volume_file(out)[0][0], volume)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"]

    def killed(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"\x1f\x8b half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(nibabel, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        write_volume(out, volume + 1)
    np.testing.assert_array_equal(read_volume_file(out)[0][0], volume)  # the previous file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"]


def test_volume_stem_collisions_are_refused_before_predicting(tmp_path):
    """x.tif next to x.nii.gz would both be written as masks/x.*: refused for 3D models too."""
    from unetkit.config import RunConfig, apply_overrides
    from unetkit.data.volumes import write_volume
    from unetkit.errors import InputError
    from unetkit.inference.files import predict_with
    from unetkit.inference.predictor import Predictor
    from unetkit.models.registry import build_model

    config = apply_overrides(RunConfig(), {"model.name": "unet3d", "model.depth": 2, "model.base_channels": 2,
                                           "inference.tile_shape": [4, 16, 16]})
    predictor = Predictor(build_model(config.model), config, "cpu")
    assert predictor.spatial_dims == 3
    volume = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    inputs = tmp_path / "volumes"
    write_volume(inputs / "x.tif", volume)
    write_volume(inputs / "x.nii.gz", volume)
    out = tmp_path / "pred"
    with pytest.raises(InputError, match="'x'") as raised:
        predict_with(predictor, [inputs], out, progress=False)
    assert "x.tif" in str(raised.value) and "x.nii.gz" in str(raised.value)
    assert not out.exists() or not any(out.rglob("*.*"))


def test_ome_tiff_and_png_of_one_name_collide(dataset, run_dir, tmp_path, capsys):
    """cells.ome.tif is written as cells (the OME ending is not part of the name): it collides with cells.png."""
    import tifffile

    image = np.asarray(Image.open(next((dataset / "test" / "images").iterdir())))
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(image).save(folder / "cells.png")
    tifffile.imwrite(folder / "cells.ome.tif", image)
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "pred"),
                                  "--quiet"])
    assert "'cells'" in err


def test_single_file_outputs_never_replace_a_file_they_did_not_write(dataset, run_dir, tmp_path, capsys):
    """export, weights and predict-large wrote over whatever their --out named: a typo like
    ``--out images/a.png`` replaced an image with a model, ``--instances masks/a.tif`` a training mask. Now an
    export replaces only an earlier export of its format, the others nothing; every refusal leaves the file."""
    image = tmp_path / "a.png"
    shutil.copy(next((dataset / "test" / "images").iterdir()), image)
    mask = tmp_path / "a.tif"
    shutil.copy(next((dataset / "test" / "masks").iterdir()), mask)
    foreign = tmp_path / "foreign.ts"
    foreign.write_bytes(b"not ours")
    other_checkpoint = tmp_path / "other.ts"  # a checkpoint (a zip archive too, not a TorchScript one) named .ts
    shutil.copy(run_dir / "last.pt", other_checkpoint)
    before = {path: path.read_bytes() for path in (image, mask, foreign, other_checkpoint)}
    checkpoint = run_dir / "best.pt"
    kept = checkpoint.read_bytes()
    for argv, words in (
        (["export", "--model", str(run_dir), "--format", "torchscript", "--out", str(image)], "is named .ts"),
        (["export", "--model", str(run_dir), "--format", "torchscript", "--out", str(foreign)], "already exists"),
        (["export", "--model", str(run_dir), "--format", "torchscript", "--out", str(checkpoint)], "is named .ts"),
        (["export", "--model", str(other_checkpoint), "--format", "torchscript", "--out", str(other_checkpoint)],
         "is also an input"),
        (["export", "--model", str(run_dir), "--format", "torchscript", "--out", str(other_checkpoint)],
         "not an earlier unetkit TorchScript export"),
        (["export", "--model", str(run_dir), "--format", "bioimageio", "--out", str(image)], "is a .zip"),
        (["weights", "--labels", str(dataset / "test" / "masks" / "img_0.tif"), "--out", str(mask)], "already exists"),
    ):
        err = _exit_one_line(capsys, argv)
        assert words in err, (argv, err)
    assert checkpoint.read_bytes() == kept
    exported = tmp_path / "model.ts"
    for _ in range(2):  # an earlier export of the same format is replaced: exporting again after training
        assert main(["export", "--model", str(run_dir), "--format", "torchscript", "--out", str(exported)]) == 0
    array = tmp_path / "a.npy"
    np.save(array, np.asarray(Image.open(image)))
    err = _exit_one_line(capsys, ["predict-large", str(array), "--model", str(run_dir), "--out", str(foreign),
                                  "--quiet"])
    assert "--out" in err and "already exists" in err
    err = _exit_one_line(capsys, ["predict-large", str(array), "--model", str(run_dir), "--out",
                                  str(tmp_path / "p.npy"), "--instances", str(mask), "--quiet"])
    assert "--instances" in err and "already exists" in err and not (tmp_path / "p.npy").exists()
    assert {path: path.read_bytes() for path in before} == before


def test_only_a_unetkit_package_is_an_earlier_bioimageio_export(tmp_path):
    """A zip is replaced by ``export --format bioimageio`` only when it is one of ours: rdf.yaml tagged unetkit
    beside both weight files; another zip (someone's data, another tool's package) is never written over."""
    import zipfile

    from unetkit.export.bioimageio import is_unetkit_package

    def package(name: str, files: dict[str, str]):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for member, text in files.items():
                archive.writestr(member, text)
        return path

    ours = {"rdf.yaml": "tags: [unet, unetkit]\n", "weights.onnx": "x", "weights.ts": "x"}
    assert is_unetkit_package(package("ours.zip", ours))
    assert not is_unetkit_package(package("theirs.zip", {**ours, "rdf.yaml": "tags: [stardist]\n"}))
    assert not is_unetkit_package(package("data.zip", {"images/a.png": "x"}))
    (tmp_path / "plain.zip").write_text("not a zip")
    assert not is_unetkit_package(tmp_path / "plain.zip")
    assert not is_unetkit_package(tmp_path / "missing.zip")


def test_predictions_and_training_runs_keep_to_their_own_folders(dataset, run_dir, tmp_path, capsys, hashes):
    """Both write overlays/: predicting into a run folder replaced its validation overlays (another run's files),
    and training into a prediction folder would replace the predictions' overlays."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = hashes(run)
    err = _exit_one_line(capsys, ["predict", "--model", str(run), str(dataset / "val" / "images"), "--out", str(run),
                                  "--quiet"])
    assert "is a training run's folder (it holds last.pt)" in err and str(run / "predictions") in err
    assert hashes(run) == before
    predicted = tmp_path / "predicted"
    assert main(["predict", "--model", str(run), str(dataset / "test" / "images"), "--out", str(predicted),
                 "--quiet"]) == 0
    before = hashes(predicted)
    err = _exit_one_line(capsys, ["train", "--data", str(dataset / "train"), "--out", str(predicted), "--epochs", "1"])
    assert "holds predictions (prediction.json)" in err
    assert hashes(predicted) == before


def test_a_folder_of_masks_or_a_folder_inside_the_data_is_no_output_folder(dataset, run_dir, tmp_path, capsys, hashes):
    """`train --out data/train/images` replaced an image called curves.png with the loss plot and left the run's
    files among the images; `predict --out data/test/masks` wrote predictions among the truth masks."""
    tiny = ["--set", "model.depth=2", "--set", "model.base_channels=4", "--set", "data.patch_size=32",
            "--set", "data.samples_per_epoch=8", "--set", "train.batch_size=4"]
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    shutil.copy(data / "train" / "images" / "synth_0000.png", data / "train" / "images" / "curves.png")
    shutil.copy(data / "train" / "masks" / "synth_0000.tif", data / "train" / "masks" / "curves.tif")
    before = hashes(data)
    for inside in ("images", "masks"):
        err = _exit_one_line(capsys, ["train", "--data", str(data / "train"), "--val", str(data / "val"), "--out",
                                      str(data / "train" / inside), "--epochs", "1", "--quiet", *tiny])
        assert "lies inside the data folder" in err
    err = _exit_one_line(capsys, ["predict", "--model", str(run_dir), str(data / "test" / "images"), "--out",
                                  str(data / "test" / "masks"), "--quiet"])
    assert "holds images that no unetkit command wrote (e.g. synth_0000.tif)" in err
    assert hashes(data) == before
    # the command's own folders stay usable: a prediction folder again, a run resumed
    out = tmp_path / "pred"
    for _ in range(2):
        assert main(["predict", "--model", str(run_dir), str(data / "test" / "images"), "--out", str(out),
                     "--quiet"]) == 0
    assert (out / "masks").is_dir()


def test_the_summary_line_names_only_the_folders_written(dataset, run_dir, tmp_path, capsys):
    """--no-probabilities still listed probabilities/ among the outputs."""
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(run_dir), str(dataset / "test" / "images"), "--out", str(out),
                 "--quiet", "--no-probabilities"]) == 0
    line = capsys.readouterr().out
    assert "(masks/, overlays/)" in line and not (out / "probabilities").exists()


def test_an_output_folder_linked_to_nowhere_is_named_before_anything_is_written(tmp_path, capsys):
    """--out whose masks/ was a dangling link failed with "File exists" after the probabilities were written."""
    import os

    import numpy as np

    from unetkit.cli import main
    from unetkit.data.io import write_png

    write_png(tmp_path / "in" / "a.png", np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8))
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "out" / "masks")
    assert main(["predict", "--model", "nuclei", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 2
    assert "masks/ is a link to" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["masks"]
