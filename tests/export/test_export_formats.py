"""Export to ONNX / TorchScript: outputs match PyTorch, the config travels in the file, and the
onnxruntime engine predicts like the PyTorch engine through the same tiling code."""

import json

import numpy as np
import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.errors import InputError
from unetkit.export import export_model
from unetkit.inference.engines import load_engine_model
from unetkit.inference.exported import load_exported, load_exported_config
from unetkit.inference.predict import TorchPredictor, predict_tiled
from unetkit.inference.tile_plan import NetGeometry
from unetkit.models.registry import build_model

pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra: pip install 'unetkit[export]'")


def _checkpoint(path, **overrides):
    config = apply_overrides(RunConfig(), {"model.depth": 3, "model.base_channels": 4, "model.norm": "batch",
                                           "inference.tile_size": 64, **overrides})
    torch.manual_seed(0)
    model = build_model(config.model)
    with torch.no_grad():  # non-trivial batch-norm statistics so that eval mode matters
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    ckpt.save_checkpoint(path, {"config": to_dict(config), "model": model.state_dict()})
    return model.eval(), config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model, config = _checkpoint(root / "best.pt")
    onnx_result = export_model(root / "best.pt", root / "model.onnx", "onnx")
    ts_result = export_model(root / "best.pt", root / "model.ts", "torchscript")
    return root, model, config, onnx_result, ts_result


def test_exports_match_pytorch_at_other_sizes_and_carry_the_config(exported):
    root, model, config, onnx_result, ts_result = exported
    assert onnx_result.max_abs_diff < 1e-4 and ts_result.max_abs_diff < 1e-4
    assert onnx_result.input_shapes == [(2, 1, 64, 64), (1, 1, 68, 68)]
    x = torch.rand(3, 1, 40, 72)  # batch, height and width unlike the export example
    with torch.inference_mode():
        expected = model(x)
        for name in ("model.onnx", "model.ts"):
            got = load_exported(root / name)(x)
            assert got.shape == (3, 2, 40, 72)
            assert torch.allclose(got, expected, atol=1e-4), name
    for name in ("model.onnx", "model.ts"):
        assert load_exported_config(root / name).model.base_channels == 4


def test_onnxruntime_engine_predicts_like_torch_through_the_tiling_code(exported):
    root, _, config, _, _ = exported
    image = np.random.default_rng(0).random((1, 150, 130), dtype=np.float32)
    geometry = NetGeometry.from_config(config.model)
    outputs = []
    for engine, path in (("torch", root / "best.pt"), ("onnxruntime", root / "model.onnx"),
                         ("torchscript", root), ):
        if engine == "torchscript":
            path = root / "model.ts"
        network, loaded = load_engine_model(path, engine)
        assert loaded.model.depth == 3
        predictor = TorchPredictor(network, "cpu", activation="softmax", tta=True)
        outputs.append(predict_tiled(image, predictor, geometry, 2, 64, 0.25, 3))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)
    np.testing.assert_allclose(outputs[2], outputs[0], atol=1e-5)
    np.testing.assert_allclose(outputs[0].sum(0), 1.0, atol=1e-5)


def test_engine_errors_name_the_fix(exported, tmp_path):
    root = exported[0]
    with pytest.raises(InputError, match="unetkit export"):
        load_engine_model(root / "best.pt", "onnxruntime")
    with pytest.raises(InputError, match="--engine onnxruntime"):
        load_engine_model(root / "model.onnx", "torch")
    with pytest.raises(FileNotFoundError, match="model.onnx"):
        load_engine_model(tmp_path, "onnxruntime")
    with pytest.raises(InputError, match="engine must be one of"):
        load_engine_model(root / "best.pt", "tensorrt")
    # an export of the other format loaded by its ending, under the engine the user did not ask for
    with pytest.raises(InputError, match="model.ts is for --engine torchscript; --engine onnxruntime reads .onnx"):
        load_engine_model(root / "model.ts", "onnxruntime")
    with pytest.raises(InputError, match="model.onnx is for --engine onnxruntime; --engine torchscript reads .ts"):
        load_engine_model(root / "model.onnx", "torchscript")
    # an export where a checkpoint belongs (export --model, --init-weights) is named, not "holds Python objects"
    from unetkit.checkpoint import load_checkpoint

    renamed = tmp_path / "model.pt"
    renamed.write_bytes((root / "model.ts").read_bytes())  # a TorchScript archive by content, whatever its name
    for path, kind in ((root / "model.onnx", "ONNX"), (root / "model.ts", "TorchScript"), (renamed, "TorchScript")):
        with pytest.raises(InputError, match=f"an exported {kind} model, not a checkpoint"):
            load_checkpoint(path)


def test_cli_export_prints_the_difference_and_json(exported, tmp_path, capsys):
    root = exported[0]
    code = main(["export", "--model", str(root / "best.pt"), "--format", "torchscript", "--out",
                 str(tmp_path / "m.ts"), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and "max abs diff vs PyTorch" in lines[0]
    summary = json.loads(lines[-1])
    assert summary["format"] == "torchscript" and summary["max_abs_diff"] < 1e-4
    assert (tmp_path / "m.ts").is_file()


def test_an_export_that_fails_verification_leaves_no_file(exported, tmp_path, monkeypatch):
    """An interrupted or failed export left an unverified model under its final name."""
    import unetkit.export.formats as export

    root = exported[0]

    def broken(path, device):
        raise RuntimeError("interrupted while verifying")

    monkeypatch.setattr(export, "load_exported", broken)
    with pytest.raises(RuntimeError, match="interrupted while verifying"):
        export.export_model(root / "best.pt", tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_torchscript_export_on_a_full_disk_is_one_line_and_leaves_no_file(exported, tmp_path, monkeypatch, capsys):
    """torch's own file writer aborted the whole process (a C++ abort, no message) when the disk filled up; the
    model is now serialised in memory and written by Python, whose ENOSPC is named."""
    import errno
    import pathlib

    root = exported[0]
    real = pathlib.Path.write_bytes

    def full(self, data):
        if self.parent == tmp_path:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    code = main(["export", "--model", str(root / "best.pt"), "--format", "torchscript", "--out",
                 str(tmp_path / "m.ts")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "m.ts" in err[0] and "free disk space" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_run_folders_export_of_an_earlier_checkpoint_is_refused(exported, tmp_path):
    """predict --engine onnxruntime --model RUN used a model.onnx exported before the run went on (0.49 apart)."""
    import shutil

    from unetkit.inference.engines import load_engine_model

    root = exported[0]
    run = tmp_path / "run"
    shutil.copytree(root, run)
    for engine in ("onnxruntime", "torchscript"):
        load_engine_model(run, engine)  # exported from this best.pt: taken
    payload = ckpt.load_checkpoint(run / "best.pt")
    payload["epoch"] = 2  # the run went on: another best.pt
    ckpt.save_checkpoint(run / "best.pt", payload)
    for engine, name in (("onnxruntime", "model.onnx"), ("torchscript", "model.ts")):
        with pytest.raises(InputError, match=f"{name} was exported from an earlier best.pt of this run"):
            load_engine_model(run, engine)
