"""Checkpoints: written atomically, loadable alone to rebuild a model, complete enough to resume.

A checkpoint holds the resolved run config (model constructor arguments, normalisation percentiles,
class names, task), the weights, and for resuming the optimizer, scheduler, epoch, best score,
history and RNG states. Loading never executes code from the file (``torch.load(weights_only=True)``).
This module needs nothing from training: prediction loads models through it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetkit.config import RunConfig, from_dict
from unetkit.errors import InputError
from unetkit.pretrained import list_models, model_card, resolve_model
from unetkit.safety.atomic import atomic_path

FORMAT = "unetkit-checkpoint"
GZIP_MAGIC = b"\x1f\x8b"  # a compressed checkpoint (packaged models)
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any], compress: bool = False) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then rename.

    An interrupted write leaves the previous checkpoint intact, never a truncated one. ``compress``:
    gzip the file (packaged models, which live in the repository; ``load_checkpoint`` reads both).
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:  # on failure (disk full) the temporary file is removed
            content = {"format": FORMAT, "version": VERSION, **payload}
            if compress:
                buffer = io.BytesIO()
                torch.save(content, buffer)
                tmp.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
            else:
                torch.save(content, tmp)
    except (OSError, RuntimeError) as error:  # torch's zip writer reports a full disk as a RuntimeError
        kept = (f"the previous {path.name} is intact; free disk space, then continue with --resume" if path.exists()
                else f"no {path.name} was written; free disk space, then run it again")
        raise InputError(f"cannot write checkpoint {path} ({' '.join(str(error).split())[:200]}); {kept}") from error
    return path


def resolve_path(name_or_path: str | Path) -> Path:
    """The checkpoint file meant by ``name_or_path``: a packaged model's name such as ``nuclei`` (its
    sha256-checked weights), a ``.pt`` file, or a run folder's ``best.pt`` (``last.pt`` when no best
    exists). The one place model names and paths are resolved."""
    path = resolve_model(name_or_path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
    return path


# file signatures of what people give by mistake where a checkpoint belongs
FOREIGN_MAGIC = ((b"\x89PNG", "a PNG image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
                 (b"II+\x00", "a TIFF image"), (b"MM\x00+", "a TIFF image"), (b"\xff\xd8\xff", "a JPEG image"),
                 (b"\x93NUMPY", "a NumPy array"))


def _is_bioimageio_package(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "rdf.yaml" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _exported_kind(path: Path) -> str | None:
    """"ONNX" / "TorchScript" for a model that ``unetkit export`` writes (by its ending, or the code a TorchScript
    archive holds), else None."""
    import zipfile

    if path.suffix.lower() == ".onnx":
        return "ONNX"
    try:
        with zipfile.ZipFile(path) as archive:
            return "TorchScript" if any("/code/" in name for name in archive.namelist()) else None
    except (OSError, zipfile.BadZipFile):
        return "TorchScript" if path.suffix.lower() == ".ts" else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a unetkit checkpoint; clear errors for missing, foreign or corrupt files."""
    path = resolve_path(path)
    if path.is_dir() and (path / "config.yaml").is_file():  # a run folder before its first checkpoint
        raise InputError(f"{path}: a training run without a checkpoint yet (best.pt and last.pt are written at the "
                         "end of its first epoch); wait for it, or give another model")
    if not path.is_file():
        names = [card.name for card in list_models()]
        if path.is_dir() and str(path) in names:  # a folder of that name here hides the packaged model
            raise InputError(f"{path}: a folder here without best.pt or last.pt, which hides the packaged model "
                             f"'{path}'; to use the packaged model give its file: {model_card(str(path)).weights}")
        raise FileNotFoundError(f"checkpoint not found: {path} (give a .pt file, a run folder or a packaged "
                                f"model: {', '.join(names) or 'none installed'})")
    with open(path, "rb") as handle:
        head = handle.read(8)
    foreign = next((kind for magic, kind in FOREIGN_MAGIC if head.startswith(magic)), None)
    if head.startswith(b"PK") and _is_bioimageio_package(path):
        raise InputError(f"{path}: a bioimage.io package, not a checkpoint; predict from the checkpoint it was "
                         "exported from, or unzip it and give its weights.onnx with --engine onnxruntime")
    exported = _exported_kind(path)
    if exported:  # an exported network has no training state: export and fine-tuning read the checkpoint
        engine = "onnxruntime" if exported == "ONNX" else "torchscript"
        raise InputError(f"{path}: an exported {exported} model, not a checkpoint; give the checkpoint (.pt), run "
                         f"folder or packaged model it was exported from (predict runs it with --engine {engine})")
    if foreign:  # weights_only's "holds Python objects" would mislead: the file is no checkpoint at all
        raise InputError(f"{path}: not a checkpoint but {foreign}; give a .pt file written by unetkit train, a run "
                         "folder or a packaged model name")
    try:
        zipped = head[:2] == GZIP_MAGIC
        source = io.BytesIO(gzip.decompress(path.read_bytes())) if zipped else path
        payload = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt/foreign files
        if "weights_only" in str(error):  # it holds code or objects: never unpickled, and no advice to do so
            raise InputError(f"{path}: not a unetkit checkpoint, or an untrusted one: it holds Python objects "
                             "that unetkit does not load (only tensors and plain values)") from error
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}); the file is corrupt, "
                         "truncated or of another format") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a unetkit checkpoint (no '{FORMAT}' marker)")
    return _dequantized(payload)


def _dequantized(payload: dict[str, Any]) -> dict[str, Any]:
    """A packaged model's int8 weights (``unetkit.pretrained.build.quantize_state``) back in ``model`` as
    float32 ``int8 * scale`` per output channel; other checkpoints are returned as they are."""
    if "model_int8" not in payload:
        return payload
    model = dict(payload["model"])
    for key, weight in payload["model_int8"].items():
        scale = payload["model_int8_scale"][key]
        model[key] = weight.float() * scale.view(-1, *[1] * (weight.ndim - 1))
    rest = {key: value for key, value in payload.items() if key not in ("model_int8", "model_int8_scale")}
    return {**rest, "model": model}


def config_of(payload: dict[str, Any]) -> RunConfig:
    """The RunConfig stored in a checkpoint."""
    if not isinstance(payload.get("config"), dict):
        raise InputError("checkpoint holds no run config; it was not written by unetkit train (or is damaged)")
    return from_dict(payload["config"])


TRAINED_CONFIG = "trained_config"  # a checkpoint's config as its epochs ran, before tuning rewrote postprocess


def trained_config(payload: dict[str, Any]) -> RunConfig:
    """The config a checkpoint's epochs ran with: tuning (a run's end, ``tune-postprocess --update``) rewrites its
    ``postprocess``, which predict reads, and a resume must go on validating with the values the run started
    with."""
    kept = payload.get(TRAINED_CONFIG)
    return from_dict(kept) if isinstance(kept, dict) else config_of(payload)


def store_postprocess(path: str | Path, values: dict[str, Any]) -> RunConfig:
    """Rewrite checkpoint ``path`` (atomically) with ``values`` as its ``postprocess.*``, the config it had kept as
    its ``trained_config``; returns the new config."""
    from unetkit.config import apply_overrides, to_dict

    payload = load_checkpoint(path)
    config = apply_overrides(config_of(payload), {f"postprocess.{k}": v for k, v in values.items()})
    payload.setdefault(TRAINED_CONFIG, payload["config"])
    payload["config"] = to_dict(config)
    payload.pop("format", None)  # written again by save_checkpoint
    payload.pop("version", None)
    save_checkpoint(path, payload)
    return config


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """Rebuild the network of a checkpoint with its weights, in eval mode."""
    from unetkit.models.registry import build_model

    payload = load_checkpoint(path)
    config = config_of(payload)
    with callers_random_state():  # the initial weights, replaced below, drew from torch's global generator
        model = build_model(config.model)
    if not isinstance(payload.get("model"), dict):
        raise InputError(f"{path}: checkpoint holds no model weights")
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:  # missing / unexpected keys, wrong shapes
        raise InputError(f"{path}: the weights do not match the network its config describes "
                         f"({str(error).splitlines()[0]}); the checkpoint is damaged or edited") from error
    return model.to(device).eval(), config


@contextlib.contextmanager
def callers_random_state() -> Iterator[None]:
    """Leave the global generators of Python, numpy and torch as the caller had them: a library that seeds them
    (training) or draws from them (a network's initial weights) would change the caller's random streams."""
    python, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)


def rng_state() -> dict[str, Any]:
    """RNG states that training consumes (dropout, weight init; patches use their own seeds)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
