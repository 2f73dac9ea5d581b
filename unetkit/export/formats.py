"""Export a checkpoint's network to ONNX or TorchScript, verified against PyTorch on the same input.

The exported graph maps images (B, C, *S) to logits (B, K, *S_out) with batch and spatial sizes left
free, so the overlap-tile code can feed it any tile size the net accepts. The run config (model
geometry, normalisation percentiles, task) travels inside the file: ONNX metadata key
``unetkit_config`` / TorchScript extra file ``unetkit_config.json``; ``load_exported_config`` reads it
back (``unetkit.inference.exported``, the reading side), so an exported file alone is enough for
``unetkit predict``.

Verification runs the checkpoint in PyTorch and the exported file (onnxruntime / ``torch.jit.load``)
on a fixed random input of two sizes (the tile, and the tile grown by one pooling step) and reports the
largest absolute difference of the logits (typically ~1e-6 in float32).
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from unetkit.config import RunConfig, to_dict
from unetkit.errors import InputError
from unetkit.inference.exported import CONFIG_FILE, CONFIG_KEY, SOURCE_KEY, SUFFIXES, load_exported, require_onnx
from unetkit.safety.atomic import atomic_path, ensure_folder, temporary_path

FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "image", "logits"
ONNX_OPSET = 18


@dataclass
class ExportResult:
    """What ``export_model`` wrote and how closely the export matches PyTorch."""

    path: Path
    format: str
    input_shapes: list[tuple[int, ...]]  # shapes the verification ran on, e.g. [(2, 1, 256, 256), ...]
    max_abs_diff: float  # largest |logit_pytorch - logit_exported| over those inputs
    seconds: float  # wall time of the export itself


def default_suffix(fmt: str) -> str:
    return SUFFIXES[fmt]


def is_unetkit_export(path: str | Path, fmt: str) -> bool:
    """Whether ``path`` is a file that ``export_model`` wrote in format ``fmt`` (its run config inside): an
    earlier export it may replace. Anything else (an image, a checkpoint, a foreign model) is not."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        return False
    if fmt == "torchscript":  # a zip archive whose extra files hold ours
        try:
            with zipfile.ZipFile(path) as archive:
                return any(name.endswith(f"/extra/{CONFIG_FILE}") for name in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - onnx raises protobuf DecodeError and others for foreign files
        return False
    return any(entry.key == CONFIG_KEY for entry in proto.metadata_props)


def checkpoint_files(checkpoint: str | Path) -> list[Path]:
    """The files an export reads: the checkpoint, or a run folder's ``best.pt`` and ``last.pt`` (never outputs)."""
    path = Path(checkpoint)
    return [path, *(path / name for name in ("best.pt", "last.pt") if path.is_dir())]


def check_export_path(out_path: str | Path, fmt: str, inputs: list[str | Path]) -> Path:
    """Refuse an output name the format's loader would not read back, an input, or an existing file that is not
    an earlier export of this format (a typo like ``--out images/a.png`` destroyed the image before)."""
    from unetkit.safety.paths import check_new_output, check_output_file

    out = Path(out_path)
    kind = {"onnx": "ONNX", "torchscript": "TorchScript"}[fmt]
    if out.suffix.lower() != SUFFIXES[fmt]:
        raise InputError(f"--out {out}: a {kind} export is named {SUFFIXES[fmt]} (it is read back by its ending); give "
                         "such a name")
    check_output_file(out, inputs)
    return check_new_output(out, owned=lambda path: is_unetkit_export(path, fmt),
                            kind=f"an earlier unetkit {kind} export")


def verification_shapes(config: RunConfig, tile_size: int | None = None, batch: int = 2) -> list[tuple[int, ...]]:
    """Two input shapes the export must handle: a tile and a tile one pooling step larger per axis.

    Valid nets use the nearest valid tile sizes (e.g. paper net, tile 572 -> 572 and 588).
    """
    from unetkit.inference.tile_plan import patch_sizes
    from unetkit.models import sizes
    from unetkit.models.registry import model_spatial_dims

    model = config.model
    dims = model_spatial_dims(model)
    if tile_size is not None and tile_size < 1:  # 0 took the default, -5 was named as data.patch_size
        raise InputError(f"--tile {tile_size}: expected an integer >= 1 (or leave it out for the default)")
    want = int(tile_size or min(config.inference.tile_size, 128 if dims == 2 else 48))
    probe = config if want == config.data.patch_size else _with_patch(config, want)
    first, _ = patch_sizes(probe)
    align = sizes.same_divisor(model.depth, dims, model.pool_sizes or None)
    second = tuple(s + a for s, a in zip(first, align, strict=True))
    return [(batch, model.in_channels, *first), (1, model.in_channels, *second)]


def _with_patch(config: RunConfig, patch: int) -> RunConfig:
    from unetkit.config import apply_overrides

    return apply_overrides(config, {"data.patch_size": patch})


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, config: RunConfig, source: str) -> None:
    import onnx

    spatial = range(2, example.ndim)
    auto = torch.export.Dim.AUTO  # let torch.export find the size relations (e.g. multiples of 16)
    dynamic = {0: auto, **{axis: auto for axis in spatial}}
    import logging

    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" notes of the op registry
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter of the exporter's internals
        try:
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamic_shapes=({**dynamic},),
                                        opset_version=ONNX_OPSET, verbose=False)
        finally:
            quiet.setLevel(level)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(to_dict(config))
    entry = proto.metadata_props.add()
    entry.key, entry.value = SOURCE_KEY, source
    with atomic_path(path) as tmp:  # a temporary name, renamed when complete
        onnx.save(proto, str(tmp))


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, config: RunConfig,
                        source: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated upstream but still the TorchScript route
        traced = torch.jit.trace(model, example, check_trace=False)
        buffer = io.BytesIO()  # serialised in memory: torch's own file writer aborts the process on a full disk
        torch.jit.save(traced, buffer, _extra_files={CONFIG_FILE: json.dumps(to_dict(config)), SOURCE_KEY: source})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())  # a full disk raises OSError here, named by the caller


def check_tile_fits(shapes: list[tuple[int, ...]], base_channels: int, tile_size: int | None) -> None:
    """Refuse a verification tile whose first level alone (two feature maps of ``base_channels`` floats per
    pixel, input and output of a conv) would take more than half the memory: --tile 100000 asked torch for
    80 GB and ended in its traceback."""
    from unetkit.safety.memory import physical_memory_bytes

    pixels = max(math.prod(shape[2:]) * shape[0] for shape in shapes)
    need = pixels * max(base_channels, 1) * 4 * 2
    memory = physical_memory_bytes()
    if memory and need > memory // 2:
        raise InputError(f"--tile {tile_size}: verifying the export on this tile needs about {need / 2**30:.0f} GiB, "
                         f"more than half of this machine's {memory / 2**30:.0f} GiB; give a smaller --tile (the "
                         "export itself takes any size)")


def export_model(checkpoint: str | Path, out_path: str | Path, fmt: str = "onnx",
                 tile_size: int | None = None) -> ExportResult:
    """Export the network of ``checkpoint`` (a .pt file or run folder) and verify it.

    ``tile_size`` picks the verification input (default: the config's tile, capped at 128 px in 2D
    to keep verification quick; dynamic sizes are exported either way).
    """
    import time

    from unetkit.checkpoint import load_model, resolve_path
    from unetkit.pretrained import sha256_of

    if fmt not in FORMATS:
        raise InputError(f"export format must be one of {', '.join(FORMATS)}; got '{fmt}'")
    if fmt == "onnx":
        require_onnx()
    out_path = check_export_path(out_path, fmt, checkpoint_files(checkpoint))
    model, config = load_model(checkpoint, "cpu")
    model = model.eval()
    source = sha256_of(resolve_path(checkpoint))  # a run folder's predict checks its export is of this file
    ensure_folder(out_path.parent)
    shapes = verification_shapes(config, tile_size)
    check_tile_fits(shapes, config.model.base_channels, tile_size)
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.rand(shape, generator=generator) for shape in shapes]
    started = time.perf_counter()
    unverified = temporary_path(out_path)  # renamed only once verified: never an unchecked file under its name
    try:
        if fmt == "onnx":
            _export_onnx(model, inputs[0], unverified, config, source)
        else:
            _export_torchscript(model, inputs[0], unverified, config, source)
        seconds = time.perf_counter() - started
        exported = load_exported(unverified, "cpu")
        worst = 0.0
        with torch.inference_mode():
            for x in inputs:
                expected = model(x)
                got = exported(x)
                if got.shape != expected.shape:
                    raise RuntimeError(f"exported model gives {tuple(got.shape)} for input {tuple(x.shape)}, "
                                       f"PyTorch gives {tuple(expected.shape)}")
                worst = max(worst, float((got - expected).abs().max()))
        del exported  # onnxruntime's session holds the file open
        os.replace(unverified, out_path)
    finally:
        unverified.unlink(missing_ok=True)
    return ExportResult(out_path, fmt, [tuple(s) for s in shapes], worst, seconds)
