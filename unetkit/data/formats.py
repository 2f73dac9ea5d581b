"""The file formats unetkit reads and writes, in one table: which extensions, and what each is used for.

Every extension list elsewhere (``IMAGE_EXTENSIONS`` of ``unetkit.data.io``, the volume, pairing and
large-image lists) is derived from ``FORMATS``, so supporting a new format for a role is one entry here
(plus its reader where the role needs one).

Microscopy files are told apart by their content, not their name: an OME-TIFF or ImageJ TIFF is a
``tiff`` entry (``cells.ome.tif``'s format is ``tiff``) and an OME-Zarr image a ``zarr`` folder with
``multiscales`` metadata; ``unetkit.data.ome`` reads both through their axes wherever a TIFF or zarr
is read, and ``OME_SUFFIXES`` names the ``.ome`` part that file stems drop (cells.ome.tif -> cells).

Vendor files (Zeiss .czi, Nikon .nd2, Leica .lif) are read, never written, through bioio when the
``unetkit[vendor]`` extra is installed (:mod:`unetkit.data.vendor`).

Roles: ``image`` 2D images (``read_image``), ``volume`` 3D volumes (``read_volume``), ``labels`` label /
prediction images paired by ``unetkit evaluate`` and ``unetkit submit``, ``large`` arrays read and
written box by box (``unetkit predict-large``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    """A file format: its name, its extensions (lower case, with the dot) and its roles."""

    name: str
    extensions: tuple[str, ...]
    roles: frozenset[str]


def _format(name: str, extensions: tuple[str, ...], *roles: str) -> Format:
    return Format(name, extensions, frozenset(roles))


FORMATS: tuple[Format, ...] = (
    _format("png", (".png",), "image", "labels"),
    _format("tiff", (".tif", ".tiff"), "image", "volume", "labels", "large"),
    _format("jpeg", (".jpg", ".jpeg"), "image"),
    _format("bmp", (".bmp",), "image", "labels"),  # lossless, through Pillow
    _format("gif", (".gif",), "image", "labels"),  # lossless palette images; one frame
    _format("nifti", (".nii", ".nii.gz"), "volume"),
    _format("npy", (".npy",), "large"),
    _format("zarr", (".zarr",), "large"),
    # read-only, through bioio (extra unetkit[vendor], unetkit.data.vendor)
    _format("vendor", (".czi", ".nd2", ".lif"), "image", "volume"),
)

# Name parts of OME files before their extension (unetkit.data.ome.image_stem); not formats of their own.
OME_SUFFIXES = (".ome",)


def without_ome(stem: str) -> str:
    """``stem`` without a trailing ``.ome`` (``slice03.ome`` -> ``slice03``; a stem of ``.ome`` alone stays): how
    predict names its outputs and how evaluate pairs them."""
    return next((stem[: -len(s)] for s in OME_SUFFIXES if stem.lower().endswith(s) and len(stem) > len(s)), stem)


def extensions(role: str | None = None, name: str | None = None) -> tuple[str, ...]:
    """Extensions of the formats with ``role`` (and/or the format called ``name``), in table order.

    Example: ``extensions("volume")`` -> ``(".tif", ".tiff", ".nii", ".nii.gz", ".czi", ".nd2", ".lif")``.
    """
    return tuple(ext for fmt in FORMATS if (role is None or role in fmt.roles) and (name is None or fmt.name == name)
                 for ext in fmt.extensions)


def extension(path: str | Path) -> str:
    """Lower-case extension of a path, multi-part ones whole (``.nii.gz``)."""
    name = Path(path).name.lower()
    multi = [ext for ext in extensions() if ext.count(".") > 1 and name.endswith(ext)]
    return max(multi, key=len) if multi else Path(name).suffix


def format_of(path: str | Path) -> str | None:
    """The name of the format of ``path`` by its extension (None when unknown)."""
    ext = extension(path)
    return next((fmt.name for fmt in FORMATS if ext in fmt.extensions), None)
