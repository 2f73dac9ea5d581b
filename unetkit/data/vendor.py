"""Vendor microscopy files (Zeiss CZI, Nikon ND2, Leica LIF) read through bioio and its reader plugins.

These formats have no reader in the core dependencies: the optional extra ``unetkit[vendor]`` installs
``bioio`` with ``bioio-czi``, ``bioio-nd2`` and ``bioio-lif``. :func:`open_vendor` gives what
:mod:`unetkit.data.ome` gives for OME-TIFF and OME-Zarr — a lazy array, its axis letters (bioio's
``TCZYX``, with ``S`` for RGB samples), the pixel size in µm and the channel names — so ``--channel``,
``--time``, ``--plane`` and calibrated outputs work the same for every format. Only the planes a
selection picks are read (bioio's arrays are dask arrays). A file holding several scenes (positions,
tiles) is read at its first scene.

Without the extra such a file gets one line naming the fix::

    stack.czi: install unetkit[vendor] to read .czi files (or convert to OME-TIFF)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetkit.data.ome import ImageInfo
from unetkit.errors import InputError

# suffix -> the bioio reader plugin that reads it (each part of the ``vendor`` extra)
VENDOR_PLUGINS = {".czi": "bioio-czi", ".nd2": "bioio-nd2", ".lif": "bioio-lif"}
VENDOR_SUFFIXES = tuple(VENDOR_PLUGINS)


def is_vendor_file(path: str | Path) -> bool:
    """A file whose suffix names a vendor format read through bioio (.czi, .nd2, .lif)."""
    return Path(path).suffix.lower() in VENDOR_PLUGINS


def _bioimage_class(path: Path):
    try:
        from bioio import BioImage
    except ImportError as error:
        raise InputError(f"{path}: install unetkit[vendor] to read {path.suffix.lower() or 'such'} files "
                         "(or convert to OME-TIFF)") from error
    return BioImage


def open_vendor(path: str | Path, reader: Any = None) -> tuple[Any, ImageInfo]:
    """The lazy (dask) array of ``path``'s first scene and its :class:`~unetkit.data.ome.ImageInfo`.

    ``reader`` is a bioio reader class to use instead of the plugin bioio picks by the file's suffix
    (the tests read an OME-TIFF through ``bioio_ome_tiff.Reader`` with it). bioio reports physical
    pixel sizes in micrometres; sizes it does not know are left out, as for the other formats.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    bioimage = _bioimage_class(path)
    try:
        image = bioimage(path, reader=reader) if reader is not None else bioimage(path)
    except Exception as error:  # bioio and its plugins raise many types for unknown or damaged files
        if type(error).__name__ == "UnsupportedFileFormatError":
            plugin = VENDOR_PLUGINS.get(path.suffix.lower(), "a bioio reader plugin for this format")
            raise InputError(f"{path}: no bioio reader for {path.suffix.lower()} files is installed; "
                             f"pip install {plugin} (part of unetkit[vendor]) or convert to OME-TIFF") from error
        raise InputError(f"{path}: bioio cannot read the file ({type(error).__name__}: {error}); it may be "
                         "damaged, or convert it to OME-TIFF") from error
    try:
        axes = str(image.dims.order).upper()
        shape = tuple(int(n) for n in image.shape)
        physical = image.physical_pixel_sizes
        sizes = {axis: float(value) for axis, value in (("X", physical.X), ("Y", physical.Y), ("Z", physical.Z))
                 if value is not None and float(value) > 0}
        names = [str(name) for name in (image.channel_names or [])]
        array = image.dask_data
    except Exception as error:  # metadata parsing happens lazily in the plugins
        raise InputError(f"{path}: bioio cannot read the file's metadata ({type(error).__name__}: {error})") from error
    return array, ImageInfo("bioio", axes, shape, sizes, names if any(names) else [], 1)
