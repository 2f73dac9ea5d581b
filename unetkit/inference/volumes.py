"""Predict volumes with a 3D checkpoint and write 3D outputs with the input's voxel spacing.

Per input volume (named by its stem; ``.nii.gz`` inputs give ``.nii.gz`` outputs, all others ``.tif``):
``probabilities/`` float32 foreground probability (D, H, W), ``masks/`` uint8 0/255, ``overlays/`` PNG of
the middle z-slice with the mask, and with instances ``labels/`` uint16 ids, ``instances/`` PNG of the
middle slice and ``objects/`` CSV (3D centroids, boxes, volumes in voxels). Volumes are tiled in 3D with
tiles sized to the memory available (``unetkit.training.loop.prediction_tile``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unetkit.config import RunConfig
from unetkit.data.channels import match_channels
from unetkit.data.volumes import (
    NIFTI_EXTENSIONS,
    find_volumes,
    load_volume,
    middle_slice,
    volume_stem,
    write_label_volume,
    write_volume,
)
from unetkit.visualize.images import mask_overlay, save_rgb


def output_extension(path: Path) -> str:
    """``.nii.gz`` for NIfTI inputs (outputs open in the same viewers with the same affine), else ``.tif``."""
    name = path.name.lower()
    return ".nii.gz" if any(name.endswith(ext) for ext in NIFTI_EXTENSIONS) else ".tif"


def predict_volumes(model: torch.nn.Module, config: RunConfig, inputs: list[str | Path], out_dir: str | Path,
                    device: torch.device, instances: bool = False, save_probabilities: bool = True,
                    progress: bool = True) -> list[dict[str, Any]]:
    """Predict every volume in ``inputs`` (files or folders) with a 3D ``model``; one summary row each."""
    from unetkit.training.data import target_kind
    from unetkit.training.validation import predict_probabilities

    out_dir = Path(out_dir)
    kind = target_kind(config)
    rows = []
    for path in tqdm(find_volumes(inputs), desc="predict", unit="vol", disable=not progress):
        started = time.perf_counter()
        image, meta = load_volume(path, config.data.normalize_low, config.data.normalize_high)
        image = match_channels(image, config.model.in_channels, path)  # (C, D, H, W)
        probs = predict_probabilities(model, image, config, device, config.model.out_channels)
        seconds = time.perf_counter() - started
        foreground = (1.0 - probs[0]).astype(np.float32)  # (D, H, W)
        mask = foreground > config.inference.threshold
        stem, ext = volume_stem(path), output_extension(path)
        if save_probabilities:
            write_volume(out_dir / "probabilities" / f"{stem}{ext}", foreground, meta)
        write_volume(out_dir / "masks" / f"{stem}{ext}", mask.astype(np.uint8) * 255, meta)
        save_rgb(out_dir / "overlays" / f"{stem}.png", mask_overlay(middle_slice(image), middle_slice(mask)))
        depth, height, width = mask.shape
        row: dict[str, Any] = {
            "image": str(path), "depth": depth, "height": height, "width": width, "seconds": round(seconds, 3),
            "megavoxels_per_s": round(mask.size / 1e6 / max(seconds, 1e-9), 3),
            "foreground_fraction": round(float(mask.mean()), 4),
            "spacing_zyx": list(meta.spacing) if meta.spacing else None,
        }
        if instances or config.task == "instances":
            row["objects"] = _write_instances(probs, image, config, kind, out_dir, stem, ext, meta)
        rows.append(row)
    return rows


def _write_instances(probs: np.ndarray, image: np.ndarray, config: RunConfig, kind: str, out_dir: Path,
                     stem: str, ext: str, meta) -> int:
    from unetkit.inference.objects import object_table, write_object_csv
    from unetkit.inference.postprocess import postprocess
    from unetkit.visualize.instances import instance_overlay

    labels = postprocess(probs, config.postprocess, kind)  # (D, H, W) ids 1..N, 3D watershed/components
    write_label_volume(out_dir / "labels" / f"{stem}{ext}", labels, meta)
    save_rgb(out_dir / "instances" / f"{stem}.png", instance_overlay(middle_slice(image), middle_slice(labels)))
    from unetkit.data.ome import spacing_um

    write_object_csv(object_table(labels, image, spacing_um(meta.spacing, meta.unit)),  # volumes in µm³
                     out_dir / "objects" / f"{stem}.csv")
    return int(labels.max())
