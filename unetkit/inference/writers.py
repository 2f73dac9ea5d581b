"""Where one image's prediction files go: ``<out>/<kind>/<stem><ext>``, 2D images or 3D volumes alike.

Tasks say *what* to write (``Task.write_outputs``: a probability map into ``probabilities/``, a mask into
``masks/`` ...); an ``OutputWriter`` says *how*: 2D float maps and labels as TIFF, masks as PNG; volumes
(``meta`` given) as TIFF or NIfTI with the input's voxel spacing, and pictures of their middle slice.
When the input states its pixel size (``spacing``, µm), 2D maps and labels are OME-TIFFs carrying it,
masks PNGs with that resolution, and object tables give areas in µm² (volumes: µm³ from ``meta``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.data.io import write_labels, write_png, write_tiff
from unetkit.data.ome import spacing_um
from unetkit.data.volumes import VolumeMeta, middle_slice, write_label_volume, write_volume
from unetkit.inference.ome_writers import write_label_image, write_mask_png, write_probabilities
from unetkit.visualize.images import save_rgb


class OutputWriter:
    """Files of one input image named by its ``stem`` under ``out_dir``.

    ``meta`` (a ``VolumeMeta``) makes it a volume writer: arrays are (D, H, W), files ``<stem><ext>``
    (``.tif`` or ``.nii.gz``) with the spacing of ``meta``; pictures show the middle z-slice.
    ``spacing``: µm per (y, x) of a 2D input (None: unknown); ``raw``: the input's values before
    normalisation, (C, *S), whose per-channel means (named by ``channel_names``) object tables report.
    """

    def __init__(self, out_dir: str | Path, stem: str, meta: VolumeMeta | None = None, ext: str = ".tif",
                 spacing: tuple[float, ...] | None = None, raw: np.ndarray | None = None,
                 channel_names: list[str] | None = None):
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.meta = meta
        self.ext = ext
        self.spacing = spacing_um(meta.spacing, meta.unit) if meta is not None else spacing
        self.raw = raw
        self.channel_names = list(channel_names or ())

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
        if self.spacing is not None:  # OME-TIFF with the pixel size
            return write_probabilities(self.path(folder, ".tif"), array, self.spacing)
        return write_tiff(self.path(folder, ".tif"), array)

    def mask(self, folder: str, array: np.ndarray) -> Path:
        """An integer mask (0/255 foreground, or class ids): PNG for images, TIFF/NIfTI for volumes."""
        if self.volumetric:
            return write_volume(self.path(folder, self.ext), array, self.meta)
        if self.spacing is not None:  # the PNG's resolution is the pixel size
            return write_mask_png(self.path(folder, ".png"), array, self.spacing)
        return write_png(self.path(folder, ".png"), array)

    def labels(self, folder: str, labels: np.ndarray) -> Path:
        """Instance ids: uint16 TIFF (uint32 above 65535 objects), volumes with their spacing."""
        if self.volumetric:
            return write_label_volume(self.path(folder, self.ext), labels, self.meta)
        if self.spacing is not None:  # OME-TIFF with the pixel size (uint32 past 65535 objects)
            return write_label_image(self.path(folder, ".tif"), labels, self.spacing)
        return write_labels(self.path(folder, ".tif"), labels)

    def picture(self, folder: str, rgb: np.ndarray) -> Path:
        """An (H, W, 3) uint8 picture as PNG."""
        return save_rgb(self.path(folder, ".png"), rgb)

    def objects(self, folder: str, labels: np.ndarray, image: np.ndarray) -> Path:
        """The per-object table of ``labels`` as CSV: sizes in px (and µm² / µm³ when the spacing is
        known), mean intensities of the raw input when given (per named channel), else of ``image``."""
        from unetkit.inference.objects import object_table, table_columns, write_object_csv

        intensity = image if self.raw is None else self.raw
        rows = object_table(labels, intensity, self.spacing, self.channel_names)
        columns = table_columns(labels, intensity, self.spacing, self.channel_names)
        return write_object_csv(rows, self.path(folder, ".csv"), columns)

    def display(self, array: np.ndarray) -> np.ndarray:
        """What a picture shows of an array: itself, or the middle z-slice of a volume."""
        return middle_slice(array) if self.volumetric else array
