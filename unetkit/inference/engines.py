"""Inference engines: the same overlap-tile code runs a PyTorch checkpoint, an ONNX file through
onnxruntime, or a TorchScript file.

Every engine yields an ``nn.Module``-like network (B, C, *S) -> logits (B, K, *S_out) plus the run
config it was trained with, so ``TorchPredictor`` (batching, softmax, flip TTA) and ``predict_tiled``
stay one code path. Measured on a 2-core AVX2 CPU (U-Net base 32, four 256x256 tiles per call):
onnxruntime 1.3 s, PyTorch channels_last 1.9 s, PyTorch default layout 3.1 s. On CPU the torch engine
also runs the wide 3x3 convs (>= 256 input channels) as Winograd F(4x4, 3x3) convolutions
(``inference.winograd``; see ``unetkit.inference.winograd``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from unetkit.config import RunConfig
from unetkit.errors import InputError
from unetkit.inference.exported import SOURCE_KEY, SUFFIXES, exported_config, exported_metadata, load_exported
from unetkit.inference.winograd import accelerate_convs
from unetkit.models.layout import to_channels_last

ENGINES = ("torch", "onnxruntime", "torchscript")
EXPORTED_SUFFIX = {"onnxruntime": SUFFIXES["onnx"], "torchscript": SUFFIXES["torchscript"]}  # export's endings


def _check_current(exported: Path, source: str | None, run: Path, engine: str) -> None:
    """Refuse a run folder's export made from another checkpoint (sha256 ``source``) than the run's ``best.pt`` now
    (the run went on, or resumed, after ``unetkit export``): its predictions would silently be the older network's."""
    from unetkit.checkpoint import resolve_path
    from unetkit.pretrained import sha256_of

    checkpoint = resolve_path(run)
    if source is not None and checkpoint.is_file() and sha256_of(checkpoint) != source:
        raise InputError(f"{exported} was exported from an earlier {checkpoint.name} of this run; export it again "
                         f"(unetkit export --model {run} --format {'onnx' if engine == 'onnxruntime' else engine}) "
                         "or predict with --engine torch")


def _exported_path(path: Path, engine: str) -> Path:
    """The exported file for ``engine``: ``path`` itself, or ``model<suffix>`` inside a run folder."""
    suffix = EXPORTED_SUFFIX[engine]
    if path.is_dir():
        candidate = path / f"model{suffix}"
        if candidate.is_file():
            return candidate
        raise FileNotFoundError(
            f"{path}: no {candidate.name} for --engine {engine}; create it with "
            f"`unetkit export --model {path} --format {'onnx' if engine == 'onnxruntime' else engine} "
            f"--out {candidate}`")
    if path.suffix.lower() == ".pt":
        raise InputError(
            f"{path} is a PyTorch checkpoint; --engine {engine} needs an exported {suffix} file: run "
            f"`unetkit export --model {path} --format {'onnx' if engine == 'onnxruntime' else engine}` first")
    other = next((name for name, ending in EXPORTED_SUFFIX.items() if name != engine and
                  path.suffix.lower() == ending), None)
    if other:  # it would load by its ending anyway, under an engine the user did not ask for
        raise InputError(f"{path} is for --engine {other}; --engine {engine} reads {suffix} files")
    return path


def load_engine_model(path: str | Path, engine: str = "torch", device: str | torch.device = "cpu",
                      winograd: bool | None = None, autotune: bool | None = None) -> tuple[torch.nn.Module, RunConfig]:
    """(network in eval mode, run config) for prediction with ``engine`` (torch | onnxruntime | torchscript).

    ``torch`` takes a checkpoint or run folder; the others take an exported file (or a run folder that
    holds ``model.onnx`` / ``model.ts``), written by ``unetkit export``. ``winograd`` (None: the
    checkpoint's ``inference.winograd``) runs a 2D torch model's wide 3x3 convs as Winograd on CPU;
    ``autotune`` (None: ``inference.autotune``) keeps Winograd only where it measured faster here.
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; got '{engine}'")
    if engine == "torch":
        from unetkit.checkpoint import load_model
        from unetkit.models.registry import model_spatial_dims

        if Path(path).suffix.lower() in (".onnx", ".ts"):
            engine_name = "onnxruntime" if Path(path).suffix.lower() == ".onnx" else "torchscript"
            raise InputError(f"{path} is an exported model; predict with it using --engine {engine_name}")

        model, config = load_model(path, device)
        dims = model_spatial_dims(config.model)
        model = to_channels_last(model, dims)  # faster oneDNN convs (models/layout.py)
        if winograd is None:
            winograd = config.inference.winograd
        if dims == 2 and torch.device(device).type == "cpu" and winograd:
            accelerate_convs(model, autotune=config.inference.autotune if autotune is None else autotune)
        return model, config
    exported = _exported_path(Path(path), engine)
    metadata = exported_metadata(exported)  # the config and the checkpoint it was made from, read once
    if Path(path).is_dir():
        _check_current(exported, metadata.get(SOURCE_KEY), Path(path), engine)
    return load_exported(exported, device), exported_config(exported, metadata)
