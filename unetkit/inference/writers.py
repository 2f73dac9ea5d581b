"""Where one image's prediction files go: ``<out>/<kind>/<stem><ext>``, 2D images or 3D volumes alike.

Tasks say *what* to write (``Task.write_outputs``: a probability map into ``probabilities/``, a mask into
``masks/`` ...); an ``OutputWriter`` says *how*: 2D float maps and labels as TIFF, masks as PNG; volumes
(``meta`` given) as TIFF or NIfTI with the input's voxel spacing, and pictures of their middle slice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetkit.data.io import write_labels, write_png, write_tiff
from unetkit.data.volumes import VolumeMeta, middle_slice, write_label_volume, write_volume
from unetkit.visualize.images import save_rgb


class OutputWriter:
    """Files of one input image named by its ``stem`` under ``out_dir``.

    ``meta`` (a ``VolumeMeta``) makes it a volume writer: arrays are (D, H, W), files ``<stem><ext>``
    (``.tif`` or ``.nii.gz``) with the spacing of ``meta``; pictures show the middle z-slice.
    """

    def __init__(self, out_dir: str | Path, stem: str, meta: VolumeMeta | None = None, ext: str = ".tif"):
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.meta = meta
        self.ext = ext

    @property
    def volumetric(self) -> bool:
        return self.meta is not None

    def path(self, folder: str, ext: str) -> Path:
        return self.out_dir / folder / f"{self.stem}{ext}"

    def float_map(self, folder: str, array: np.ndarray) -> Path:
        """A float32 map: (H, W) or (C, H, W) TIFF; volumes (D, H, W) with their spacing."""
        array = np.asarray(array, dtype=np.float32)
        if self.volumetric:
            return write_volume(self.path(folder, self.ext), array, self.meta)
        return write_tiff(self.path(folder, ".tif"), array)

    def mask(self, folder: str, array: np.ndarray) -> Path:
        """An integer mask (0/255 foreground, or class ids): PNG for images, TIFF/NIfTI for volumes."""
        if self.volumetric:
            return write_volume(self.path(folder, self.ext), array, self.meta)
        return write_png(self.path(folder, ".png"), array)

    def labels(self, folder: str, labels: np.ndarray) -> Path:
        """Instance ids: uint16 TIFF (uint32 above 65535 objects), volumes with their spacing."""
        if self.volumetric:
            return write_label_volume(self.path(folder, self.ext), labels, self.meta)
        return write_labels(self.path(folder, ".tif"), labels)

    def picture(self, folder: str, rgb: np.ndarray) -> Path:
        """An (H, W, 3) uint8 picture as PNG."""
        return save_rgb(self.path(folder, ".png"), rgb)

    def objects(self, folder: str, rows: list[dict[str, Any]]) -> Path:
        """A per-object table as CSV."""
        from unetkit.inference.objects import write_object_csv

        return write_object_csv(rows, self.path(folder, ".csv"))

    def display(self, array: np.ndarray) -> np.ndarray:
        """What a picture shows of an array: itself, or the middle z-slice of a volume."""
        return middle_slice(array) if self.volumetric else array
