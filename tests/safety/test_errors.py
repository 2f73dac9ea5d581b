"""Issue 15, errors: bad files, paths and disks give one line and exit code 2, never a traceback;
--debug (or UNETKIT_DEBUG=1) shows the traceback."""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
import pytest
import torch

from unetkit.cli import main


def one_line(capsys, argv, *words) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def _png_claiming(path, width: int, height: int) -> None:
    """A valid-looking PNG header that claims width x height pixels (1 KB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_png_is_one_line(run_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _png_claiming(folder / "bomb.png", 100_000, 100_000)
    one_line(capsys, ["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "p"), "--quiet"],
             "bomb.png", "predict-large")


def test_tiff_claiming_more_memory_than_the_machine_is_one_line(run_dir, tmp_path, capsys, monkeypatch):
    import tifffile

    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "big.tif", np.zeros((64, 64), np.float32))
    monkeypatch.setattr("unetkit.safety.memory.physical_memory_bytes", lambda: 16 * 1024)  # a 16 KiB machine
    one_line(capsys, ["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "p"), "--quiet"],
             "big.tif", "GiB", "predict-large")


def test_an_image_that_reads_but_cannot_be_predicted_whole_is_sent_to_predict_large(run_dir, tmp_path, capsys,
                                                                                      monkeypatch):
    """The raw pixels fit (a 3600 MP uint8 TIFF is 3.4 GiB) while prediction holds ~78 bytes per pixel: the
    process was killed by the system after minutes. Now the header decides, before anything is read."""
    import tifffile

    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "wide.tif", np.zeros((2000, 2000), np.uint8))  # 4 MiB of pixels, ~0.1 GiB to predict
    monkeypatch.setattr("unetkit.safety.memory.physical_memory_bytes", lambda: 64 * 2**20)  # a 64 MiB machine
    from unetkit.safety.memory import predict_bytes

    need = predict_bytes(2000 * 2000, channels=1, classes=2)  # the run's network: gray in, two classes out
    one_line(capsys, ["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "p"), "--quiet"],
             "wide.tif", f"4 MP image whole needs about {need / 2**30:.1f} GiB", "predict-large")
    assert not (tmp_path / "p" / "masks").exists()


def test_out_that_is_a_file_or_a_folder_of_the_wrong_kind(dataset, run_dir, tmp_path, capsys):
    afile = tmp_path / "taken.txt"
    afile.write_text("x")
    one_line(capsys, ["train", "--data", str(dataset / "train"), "--out", str(afile)], "existing file")
    one_line(capsys, ["train", "--data", str(dataset / "train"), "--out", str(dataset / "train")], "holds the input")
    labels = next((dataset / "test" / "masks").iterdir())
    one_line(capsys, ["weights", "--labels", str(labels), "--out", str(tmp_path)], "existing folder")
    one_line(capsys, ["weights", "--labels", str(labels), "--out", str(afile / "w.tif")], "is a file, not a folder")
    one_line(capsys, ["submit", "--pred", str(dataset / "test" / "masks"), "--out", str(tmp_path)], "existing folder")
    one_line(capsys, ["export", "--model", str(run_dir), "--out", str(afile / "m.onnx")], "is a file, not a folder")
    assert afile.read_text() == "x"


def test_read_only_and_proc_paths(dataset, tmp_path, capsys):
    labels = next((dataset / "test" / "masks").iterdir())
    one_line(capsys, ["weights", "--labels", str(labels), "--out", "/proc/unetkit_weights.tif"])
    one_line(capsys, ["synth", "--out", "/proc/unetkit_synth", "--n", "1", "--size", "32", "32"])


def test_demo_into_an_existing_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    one_line(capsys, ["demo", "--out", str(tmp_path)], "not a demo folder")
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(dataset, run_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = (run / "last.pt").read_bytes()
    real_save = torch.save

    def full(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1234 vs 1200")

    monkeypatch.setattr(torch, "save", full)
    err = one_line(capsys, ["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"],
                   "last.pt", "intact", "--resume")
    assert "unexpected pos" in err
    monkeypatch.setattr(torch, "save", real_save)
    assert (run / "last.pt").read_bytes() == before
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


def test_corrupt_onnx_is_one_line(dataset, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07garbage" * 20)
    one_line(capsys, ["predict", "--engine", "onnxruntime", "--model", str(model), str(dataset / "test" / "images"),
                      "--out", str(tmp_path / "p"), "--quiet"], "model.onnx", "ONNX")


def test_damaged_checkpoints_are_one_line(dataset, run_dir, tmp_path, capsys):
    payload = torch.load(run_dir / "best.pt", weights_only=True)
    images = str(dataset / "test" / "images")
    no_config = tmp_path / "no_config.pt"
    torch.save({k: v for k, v in payload.items() if k != "config"}, no_config)
    one_line(capsys, ["predict", "--model", str(no_config), images, "--out", str(tmp_path / "a"), "--quiet"],
             "no run config")
    partial = tmp_path / "partial.pt"
    weights = dict(payload["model"])
    weights.pop(next(iter(weights)))
    torch.save({**payload, "model": weights}, partial)
    one_line(capsys, ["predict", "--model", str(partial), images, "--out", str(tmp_path / "b"), "--quiet"],
             "partial.pt", "do not match")
    huge = tmp_path / "huge.pt"
    torch.save({**payload, "config": {**payload["config"], "model": {**payload["config"]["model"],
                                                                      "base_channels": 100000}}}, huge)
    one_line(capsys, ["predict", "--model", str(huge), images, "--out", str(tmp_path / "c"), "--quiet"],
             "model.base_channels=100000")


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_foreign_checkpoint_message_gives_no_weights_only_advice(dataset, tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "unetkit-checkpoint", "x": _Payload()}, evil)
    err = one_line(capsys, ["predict", "--model", str(evil), str(dataset / "test" / "images"), "--out",
                            str(tmp_path / "p"), "--quiet"], "not a unetkit checkpoint")
    assert "weights_only" not in err and "code ran" not in capsys.readouterr().out


def test_train_with_base_channels_100000_is_refused_before_allocating(dataset, tmp_path, capsys):
    one_line(capsys, ["train", "--data", str(dataset / "train"), "--out", str(tmp_path / "r"),
                      "--set", "model.base_channels=100000"], "model.base_channels=100000", "[1, 1024]")


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        main(["--debug", "demo", "--out", str(tmp_path)])
    with pytest.raises(FileExistsError):
        main(["demo", "--out", str(tmp_path), "--debug"])
    monkeypatch.setenv("UNETKIT_DEBUG", "1")
    with pytest.raises(FileExistsError):
        main(["demo", "--out", str(tmp_path)])


def test_images_without_pixels_are_one_line(run_dir, tmp_path, capsys):
    """A 0 x 10 TIFF or a (0, 5) .npy ended in numpy's 'zero-size array to reduction operation' traceback."""
    import tifffile

    folder = tmp_path / "in"
    folder.mkdir()
    with pytest.warns(UserWarning):
        tifffile.imwrite(folder / "empty.tif", np.zeros((0, 10), np.uint8))
    one_line(capsys, ["predict", "--model", str(run_dir), str(folder), "--out", str(tmp_path / "p"), "--quiet"],
             "empty.tif", "no pixels")
    np.save(tmp_path / "empty.npy", np.zeros((0, 5), np.float32))
    one_line(capsys, ["predict-large", str(tmp_path / "empty.npy"), "--model", str(run_dir), "--out",
                      str(tmp_path / "o.npy"), "--quiet"], "empty.npy", "no pixels")


def test_predict_large_names_an_output_it_cannot_write_before_predicting(run_dir, tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((32, 32), np.float32))
    err = one_line(capsys, ["predict-large", str(tmp_path / "a.npy"), "--model", str(run_dir), "--out",
                            str(tmp_path / "x.png")], "--out", "x.png", ".npy, .tif/.tiff or .zarr")
    assert "unfinished" not in err
    assert not list(tmp_path.glob("x*"))


def test_tune_postprocess_refuses_a_negative_limit(dataset, run_dir, tmp_path, capsys):
    """--limit -1 tuned on all images but the last, and --limit -5 said '0 maps and 0 truths'."""
    one_line(capsys, ["tune-postprocess", "--model", str(run_dir), "--data", str(dataset / "val"), "--limit", "-1"],
             "--limit -1", ">= 0")


def test_api_mistakes_are_named():
    import unetkit
    from unetkit.devices import select_device
    from unetkit.errors import InputError

    with pytest.raises(InputError, match="device 'gpu' is not a torch device; use auto, cpu, cuda or cuda:N"):
        select_device("gpu")
    with pytest.raises(InputError, match="unknown option tille_size; valid options: .*tile_size"):
        unetkit.predict_files("nuclei", ["a.png"], "out", tille_size=3)


def test_predict_files_takes_one_path_as_well_as_a_list(run_dir, dataset, tmp_path):
    """A single path was iterated character by character ('input not found: f') after claiming the folder."""
    import unetkit

    rows = unetkit.predict_files(run_dir, str(dataset / "test" / "images"), tmp_path / "p", progress=False,
                                 device="cpu")
    assert len(rows) == len(list((dataset / "test" / "images").iterdir()))


def test_class_probabilities_of_a_model_without_classes_is_refused(run_dir, dataset, tmp_path, capsys):
    """--class-probabilities on a binary or regression model was accepted and wrote nothing."""
    one_line(capsys, ["predict", str(dataset / "test" / "images"), "--model", str(run_dir), "--out",
                      str(tmp_path / "p"), "--class-probabilities", "--quiet"], "multiclass model", "binary model")


def test_small_commands_name_their_bad_options(run_dir, tmp_path, capsys):
    """synth --seed -5 and a bioimage.io --license that is no SPDX id were tracebacks; --tile 100000 asked torch
    for 80 GB; a multi-page label TIFF given to weights pointed at options weights does not have."""
    import tifffile

    one_line(capsys, ["synth", "--out", str(tmp_path / "s"), "--n", "2", "--seed", "-5"], "--seed -5", ">= 0")
    one_line(capsys, ["export", "--model", str(run_dir), "--format", "onnx", "--tile", "100000", "--out",
                      str(tmp_path / "big.onnx")], "--tile 100000", "smaller --tile")
    assert not (tmp_path / "big.onnx").exists()
    tifffile.imwrite(tmp_path / "vol.tif", np.zeros((9, 20, 20), np.uint16), photometric="minisblack")
    one_line(capsys, ["weights", "--labels", str(tmp_path / "vol.tif"), "--out", str(tmp_path / "w.tif")],
             "a volume of 9 pages", "--volume")


def test_bioimageio_export_names_a_bad_license_and_prints_json(run_dir, tmp_path, capsys):
    pytest.importorskip("bioimageio.spec")
    one_line(capsys, ["export", "--model", str(run_dir), "--format", "bioimageio", "--out", str(tmp_path / "a.zip"),
                      "--license", "NOT-A-LICENSE"], "--license NOT-A-LICENSE", "SPDX")
    assert main(["export", "--model", str(run_dir), "--format", "bioimageio", "--out", str(tmp_path / "b.zip"),
                 "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["format"] == "bioimageio" and summary["path"].endswith("b.zip")


def test_torch_options_with_another_engine_are_refused():
    """--precision bf16 with onnxruntime was accepted, did nothing, and was recorded in prediction.json."""
    from unetkit.errors import InputError
    from unetkit.inference.files import PredictOptions, load_predictor

    for options, named in ((PredictOptions(engine="onnxruntime", precision="bf16"), "--precision applies"),
                           (PredictOptions(engine="torchscript", compile="inductor", winograd=False),
                            "--compile, --no-winograd apply")):
        with pytest.raises(InputError, match=named):
            load_predictor("model.onnx", options)


def test_export_tile_below_one_is_named_and_the_version_is_shown(run_dir, tmp_path, capsys):
    """--tile 0 took the default tile without a word and --tile -5 was named as data.patch_size."""
    for tile in ("0", "-5"):
        one_line(capsys, ["export", "--model", str(run_dir), "--format", "onnx", "--tile", tile, "--out",
                          str(tmp_path / "m.onnx")], f"--tile {tile}", ">= 1")
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("unetkit ")


def test_the_models_table_keeps_its_columns(capsys):
    assert main(["models"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("details")]
    columns = {line.index(" " + line.split()[2] + " ") for line in rows}  # where each row's task begins
    assert len(rows) >= 3 and len(columns) == 1, rows  # v10 pushed nuclei's task one space out of line


def test_a_full_disk_met_through_a_file_handle_names_the_file(tmp_path):
    """tifffile's short write ("262144 requested and 184252 written") was a traceback, and ENOSPC from a file handle
    did not say which file."""
    import errno

    from unetkit.safety.atomic import atomic_path
    from unetkit.safety.errors import user_error_message

    for raised in (OSError("262144 requested and 184252 written"), OSError(errno.ENOSPC, "No space left on device")):
        with pytest.raises(OSError) as caught, atomic_path(tmp_path / "out" / "mask.tif"):
            raise raised
        message = user_error_message(caught.value)
        assert message is not None and message.startswith(f"{tmp_path / 'out' / 'mask.tif'}: "), message
        assert "free disk space" in message
        assert not list((tmp_path / "out").iterdir())
