"""Exported networks read back: ONNX (onnxruntime) and TorchScript files written by ``unetkit.export``.

Prediction reads them here, so inference never imports the exporters. Each file carries its run config
(ONNX metadata key ``unetkit_config`` / TorchScript extra file ``unetkit_config.json``) and the sha256 of
the checkpoint it was made from, so an exported file alone is enough for ``unetkit predict``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from unetkit.config import RunConfig, from_dict
from unetkit.errors import InputError

CONFIG_KEY = "unetkit_config"  # ONNX metadata key holding the run config as JSON
CONFIG_FILE = "unetkit_config.json"  # TorchScript extra file holding the run config
SOURCE_KEY = "unetkit_source_sha256"  # ONNX metadata key / TorchScript extra file: the checkpoint exported
# the ending an exported file must have: predict picks the engine's loader by it, and .pt is a checkpoint's
SUFFIXES = {"onnx": ".onnx", "torchscript": ".ts"}


def require_onnx() -> None:
    """Refuse ONNX work in one line when its optional packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise InputError(
            f"ONNX export needs the optional packages onnx, onnxscript and onnxruntime ({error.name} is "
            "missing); install them with: pip install 'unetkit[export]'"
        ) from error


class OnnxModule(torch.nn.Module):
    """An onnxruntime session behind the ``nn.Module`` interface: (B, C, *S) -> logits (B, K, *S_out).

    Lets the exported graph run through the same tile predictor (``TorchPredictor``: batching,
    activation, flip TTA) and the same overlap-tile code as the PyTorch network.
    """

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", threads: int = 0):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # 0 = onnxruntime's default (one thread per physical core); PyTorch's setting is honoured
        options.intra_op_num_threads = threads or torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = onnx_session(path, options, providers)
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        (logits,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(logits).to(x.device)


def _check_exported(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path} (create it with `unetkit export`)")
    return path


def onnx_session(path: Path, options, providers: list):
    """An onnxruntime session of ``path``; a corrupt or foreign file is one InputError naming it."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable ONNX model ({first}); export it again with `unetkit export`") \
            from error


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The exported network at ``path`` (.onnx -> ``OnnxModule``, else a TorchScript module), eval mode."""
    path = _check_exported(Path(path))
    if path.suffix.lower() == ".onnx":
        require_onnx()
        return OnnxModule(path, device).eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as error:  # torch raises RuntimeError subclasses for foreign files
        raise InputError(f"{path}: not a TorchScript file ({type(error).__name__}); export one with "
                         "`unetkit export --format torchscript`") from error
    return module.eval()


def exported_metadata(path: str | Path) -> dict[str, str]:
    """What an exported .onnx or TorchScript file records beside the network, read once: its run config
    (``CONFIG_KEY``) and the sha256 of the checkpoint it was made from (``SOURCE_KEY``; absent in older exports)."""
    path = _check_exported(Path(path))
    if path.suffix.lower() == ".onnx":
        require_onnx()
        stored = onnx_session(path, None, ["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        return {key: stored[key] for key in (CONFIG_KEY, SOURCE_KEY) if stored.get(key)}
    extra = {CONFIG_FILE: "", SOURCE_KEY: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise InputError(f"{path}: not a TorchScript file ({type(error).__name__})") from error
    texts = {CONFIG_KEY: extra[CONFIG_FILE], SOURCE_KEY: extra[SOURCE_KEY]}  # extra files come back as bytes
    return {key: value.decode() if isinstance(value, bytes) else value for key, value in texts.items() if value}


def exported_config(path: str | Path, metadata: dict[str, str]) -> RunConfig:
    """The run config in an exported file's ``metadata`` (``exported_metadata``)."""
    if CONFIG_KEY not in metadata:
        raise InputError(f"{path}: holds no unetkit config; export it with `unetkit export` from a checkpoint")
    return from_dict(json.loads(metadata[CONFIG_KEY]))


def load_exported_config(path: str | Path) -> RunConfig:
    """The run config stored inside an exported .onnx or TorchScript file."""
    return exported_config(path, exported_metadata(path))
