"""Microscopy files with named axes and pixel sizes: OME-TIFF, ImageJ TIFF and OME-Zarr (NGFF).

:func:`image_info` reads what a file says about itself — axes (``TCZYX`` letters), shape, pixel size in
micrometres per axis, channel names — from tifffile's OME-XML / ImageJ metadata or the OME-Zarr
``multiscales`` / ``omero`` attributes. :func:`read_selected` reads the planes a
:class:`~unetkit.data.axes.Selection` picks, as the project's ``(C, Y, X)`` / ``(C, Z, Y, X)``.

OME-Zarr needs the ``zarr`` package (extra ``unetkit[ome]``); a multiscale image is read at level 0
(full resolution) unless ``level`` says otherwise. Only the chosen time point / plane is read.
Vendor files (.czi, .nd2, .lif) are read through bioio (extra ``unetkit[vendor]``, :mod:`unetkit.data.vendor`)
and then handled like the others.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from unetkit.data.axes import Selection, kept_spatial_axes, select
from unetkit.errors import InputError
from unetkit.notes import note_once

# Length units of OME-XML, ImageJ and NGFF, as micrometres.
_UNITS_UM = {
    "m": 1e6, "meter": 1e6, "cm": 1e4, "centimeter": 1e4, "mm": 1e3, "millimeter": 1e3,
    "µm": 1.0, "\u03bcm": 1.0, "um": 1.0, "micron": 1.0, "micrometer": 1.0, "\\u00b5m": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "å": 1e-4, "angstrom": 1e-4, "pm": 1e-6, "picometer": 1e-6,
}


@dataclass
class ImageInfo:
    """What a microscopy file says about its pixels."""

    kind: str  # ome-tiff | imagej-tiff | tiff | ome-zarr | bioio
    axes: str  # one letter per axis of ``shape`` (T, C, Z, Y, X, S samples, Q unknown)
    shape: tuple[int, ...]
    pixel_size: dict[str, float] = field(default_factory=dict)  # "X"/"Y"/"Z" -> micrometres, known ones
    channel_names: list[str] = field(default_factory=list)
    levels: int = 1  # resolution levels (pyramid)

    def spacing(self, spatial_axes: str) -> tuple[float, ...] | None:
        """Pixel size of ``spatial_axes`` (e.g. "YX") in µm, or None unless all of them are known."""
        if all(a in self.pixel_size for a in spatial_axes):
            return tuple(self.pixel_size[a] for a in spatial_axes)
        return None


def to_micrometres(value: Any, unit: str | None, source: str = "") -> float | None:
    """A length in ``unit`` (default µm) as micrometres; None for missing or unknown units."""
    if value is None:
        return None
    factor = _UNITS_UM.get((unit or "µm").strip().lower().replace("\u00b5", "µ"), None)
    if factor is None:
        factor = _UNITS_UM.get((unit or "").strip().lower())
    return None if factor is None else float(value) * factor


def image_stem(path: str | Path) -> str:
    """File name without its extension, ``.ome`` included: cells.ome.tif and cells.ome.zarr -> cells."""
    from unetkit.data.formats import without_ome

    return without_ome(Path(path).stem)


def is_zarr_dir(path: str | Path) -> bool:
    """A zarr store (v2 or v3) in a folder."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zarray"))


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff") and path.is_file()


def _is_vendor(path: Path) -> bool:
    from unetkit.data.vendor import is_vendor_file  # imports this module: loaded on use

    return is_vendor_file(path) and path.is_file()


def is_microscopy_file(path: str | Path) -> bool:
    """An OME-TIFF, ImageJ TIFF or zarr folder: files whose axes and calibration this module reads."""
    path = Path(path)
    if is_zarr_dir(path):
        return True
    if not _is_tiff(path):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            return bool(tif.is_ome or tif.is_imagej)
    except (OSError, ValueError, tifffile.TiffFileError):
        return False


# --------------------------------------------------------------------------------------------------
# TIFF


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _ome_tiff_info(tif: tifffile.TiffFile, series: tifffile.TiffPageSeries) -> tuple[dict, list[str]]:
    """Pixel sizes (µm) and channel names of the first OME image."""
    meta = tifffile.xml2dict(tif.ome_metadata or "").get("OME", {})
    images = _as_list(meta.get("Image"))
    pixels = images[0].get("Pixels", {}) if images else {}
    sizes = {}
    for axis in "XYZ":
        size = to_micrometres(pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit"))
        if size is not None and size > 0:
            sizes[axis] = size
    names = [str(c.get("Name", "")) for c in _as_list(pixels.get("Channel")) if isinstance(c, dict)]
    return sizes, names if any(names) else []


def _imagej_info(tif: tifffile.TiffFile) -> dict:
    """Pixel sizes (µm) of an ImageJ TIFF: X/Y from the resolution tags, Z from ``spacing``."""
    meta = tif.imagej_metadata or {}
    unit = str(meta.get("unit", "")).strip()
    page = tif.pages[0]
    sizes = {}
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in page.tags:
            numerator, denominator = page.tags[tag].value
            if numerator > 0 and unit:
                size = to_micrometres(denominator / numerator, unit)
                if size is not None:
                    sizes[axis] = size
    if "spacing" in meta and unit:
        size = to_micrometres(meta["spacing"], unit)
        if size is not None and size > 0:
            sizes["Z"] = size
    return sizes


def _resolution_info(page: tifffile.TiffPage) -> dict:
    """Pixel sizes (µm) of a plain TIFF from its resolution tags in pixels per centimetre, as unetkit writes them
    and Fiji reads them. Tags in inches are left out: 72 or 300 dpi is what non-microscopy software writes."""
    tags = page.tags
    if "ResolutionUnit" not in tags or int(tags["ResolutionUnit"].value) != 3:  # 3: centimetre
        return {}
    sizes = {}
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in tags:
            numerator, denominator = tags[tag].value
            if numerator > 0 and denominator > 0:
                sizes[axis] = 1e4 * denominator / numerator
    return sizes if len(sizes) == 2 else {}


def _tiff_info(path: Path) -> ImageInfo:
    from unetkit.data.io import note_other_series

    try:
        with tifffile.TiffFile(path) as tif:
            note_other_series(tif, path)
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            levels = len(getattr(series, "levels", [series]))
            if tif.is_ome:
                sizes, names = _ome_tiff_info(tif, series)
                return ImageInfo("ome-tiff", axes, shape, sizes, names, levels)
            if tif.is_imagej:
                return ImageInfo("imagej-tiff", axes, shape, _imagej_info(tif), [], levels)
            return ImageInfo("tiff", axes, shape, _resolution_info(tif.pages[0]), [], levels)
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as error:
        raise InputError(f"{path}: cannot read the TIFF ({type(error).__name__}: {error})") from error


# --------------------------------------------------------------------------------------------------
# OME-Zarr


def _require_zarr(path: Path):
    try:
        import zarr
    except ImportError as error:
        raise InputError(f"{path}: reading OME-Zarr needs the 'zarr' package: pip install 'unetkit[ome]'") from error
    return zarr


def _zarr_attributes(path: Path) -> dict:
    """The NGFF attributes of a zarr group: v0.5 keeps them under "ome" in zarr.json, v0.4 in .zattrs."""
    for name in ("zarr.json", ".zattrs"):
        file = path / name
        if file.is_file():
            try:
                attrs = json.loads(file.read_text())
            except (OSError, ValueError) as error:
                raise InputError(f"{file}: not valid JSON ({error}); the OME-Zarr metadata is damaged") from error
            attrs = attrs.get("attributes", attrs) if name == "zarr.json" else attrs
            return attrs.get("ome", attrs)
    return {}


def _ome_zarr_info(path: Path) -> tuple[ImageInfo, list[str]]:
    """Info of an OME-Zarr image and the dataset path of each resolution level."""
    attrs = _zarr_attributes(path)
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise InputError(
            f"{path}: a zarr folder without OME-Zarr 'multiscales' metadata; write it as OME-Zarr (NGFF, e.g. "
            "with ome-zarr-py) or give the array folder to predict-large"
        )
    scale = multiscales[0]
    axes_meta = scale.get("axes") or [{"name": a} for a in "tczyx"]  # NGFF 0.3 and older: 5D tczyx
    axes_meta = [{"name": a} if isinstance(a, str) else a for a in axes_meta]
    axes = "".join(str(a.get("name", "?"))[:1].upper() for a in axes_meta)
    datasets = [d["path"] for d in scale.get("datasets", [])]
    if not datasets:
        raise InputError(f"{path}: OME-Zarr multiscales list no datasets; the metadata is incomplete")
    sizes = {}
    transforms = scale["datasets"][0].get("coordinateTransformations", [])
    factors = next((t.get("scale") for t in transforms if t.get("type") == "scale"), None)
    if factors and len(factors) == len(axes_meta):
        for axis, meta, value in zip(axes, axes_meta, factors, strict=True):
            # no unit is no calibration (ome-zarr-py writes scale 1 and no unit by default, as unetkit does for an
            # uncalibrated image): read as µm, 1 px became 1 µm in every output and measurement
            if axis in "XYZ" and meta.get("type", "space") == "space" and meta.get("unit"):
                size = to_micrometres(value, meta["unit"])
                if size is not None and size > 0:
                    sizes[axis] = size
    names = [str(c.get("label", "")) for c in attrs.get("omero", {}).get("channels", [])]
    zarr = _require_zarr(path)
    try:
        shape = tuple(zarr.open_array(str(path / datasets[0]), mode="r").shape)
    except Exception as error:  # zarr raises many types for missing/damaged arrays
        raise InputError(f"{path}: cannot open the level-0 array '{datasets[0]}' ({error})") from error
    if len(shape) != len(axes):
        raise InputError(f"{path}: metadata names {len(axes)} axes ({axes}) but the array has shape {shape}")
    return ImageInfo("ome-zarr", axes, shape, sizes, names if any(names) else [], len(datasets)), datasets


# --------------------------------------------------------------------------------------------------
# public


def image_info(path: str | Path) -> ImageInfo:
    """Axes, shape, pixel size (µm) and channel names of a TIFF, OME-Zarr or vendor (bioio) image."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if _is_vendor(path):
        from unetkit.data.vendor import open_vendor

        return open_vendor(path)[1]
    if is_zarr_dir(path):
        return _ome_zarr_info(path)[0]
    if _is_tiff(path):
        return _tiff_info(path)
    raise InputError(f"{path}: not a TIFF or OME-Zarr image")


def open_levels(path: str | Path, level: int = 0) -> tuple[Any, ImageInfo]:
    """The array of resolution ``level`` (lazy for OME-Zarr, in memory for TIFF) and the file's info.

    Pixel sizes of a coarser level are scaled by its downsampling, so measurements stay in µm.
    """
    path = Path(path)
    if _is_vendor(path):
        from unetkit.data.vendor import open_vendor

        if level:
            raise InputError(f"{path}: resolution level {level} requested but vendor files are read at level 0")
        return open_vendor(path)
    if is_zarr_dir(path):
        info, datasets = _ome_zarr_info(path)
        if not 0 <= level < len(datasets):
            raise InputError(f"{path}: resolution level {level} requested but the image has levels "
                             f"0..{len(datasets) - 1}")
        zarr = _require_zarr(path)
        array = zarr.open_array(str(path / datasets[level]), mode="r")
    else:
        info = image_info(path)
        if not 0 <= level < info.levels:
            raise InputError(f"{path}: resolution level {level} requested but the TIFF has levels "
                             f"0..{info.levels - 1}")
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                array = (series.levels[level] if level else series).asarray()
        except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as error:
            raise InputError(f"{path}: cannot read the TIFF ({type(error).__name__}: {error})") from error
    if level:
        factors = {a: info.shape[i] / array.shape[i] for i, a in enumerate(info.axes) if a in "XYZ"}
        info = ImageInfo(info.kind, info.axes, tuple(array.shape),
                         {a: s * factors.get(a, 1.0) for a, s in info.pixel_size.items()},
                         info.channel_names, info.levels)
    return array, info


def read_selected(path: str | Path, selection: Selection | None = None, spatial_dims: int = 2,
                  level: int = 0) -> tuple[np.ndarray, ImageInfo]:
    """The planes ``selection`` picks as (C, Y, X) or (C, Z, Y, X) in native dtype, with the file's info."""
    array, info = open_levels(path, level)
    data = select(array, info.axes, selection or Selection(), info.channel_names, spatial_dims, str(path))
    return data, info


def pixel_size(path: str | Path, spatial_dims: int = 2) -> tuple[float, ...] | None:
    """Pixel size of a file's kept spatial axes (YX or ZYX) in µm, or None when it does not say."""
    path = Path(path)
    if not (is_zarr_dir(path) or _is_tiff(path) or _is_vendor(path)):
        return None
    try:
        return image_info(path).spacing(kept_spatial_axes(spatial_dims))
    except InputError:
        return None


def read_hook(path: str | Path, spatial_dims: int, plain_reader) -> np.ndarray | None:
    """What ``unetkit.data.io.read_image`` / ``read_volume`` return for ``path``, or None to read it as before.

    OME-Zarr folders, OME-TIFF, ImageJ TIFF and vendor files (bioio) are read through their axes with the
    active selection (:func:`unetkit.data.axes.use_selection`). Other files are read as before; a selection then applies
    to the (C, Y, X) / (C, Z, Y, X) array ``plain_reader(path)`` returns, or, with ``--axes``, to the
    TIFF's raw pages.
    """
    from unetkit.data.axes import active_selection

    path = Path(path)
    selection = active_selection()
    if is_zarr_dir(path) or is_microscopy_file(path) or _is_vendor(path):
        return read_selected(path, selection, spatial_dims)[0]
    if selection.empty:
        return None
    if selection.axes and _is_tiff(path):
        try:
            with tifffile.TiffFile(path) as tif:
                raw = tif.series[0].asarray()
        except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as error:
            raise InputError(f"{path}: cannot read the TIFF ({type(error).__name__}: {error})") from error
        return select(raw, "Q" * raw.ndim, selection, (), spatial_dims, str(path))
    if selection.time is not None or selection.plane is not None:
        raise InputError(f"{path}: --time/--plane need a file with named axes (OME-TIFF, ImageJ TIFF, OME-Zarr) "
                         "or --axes naming them")
    data = plain_reader(path)
    return select(data, "C" + kept_spatial_axes(spatial_dims), selection, (), spatial_dims, str(path))


def selected_channel_names(path: str | Path, selection: Selection) -> list[str]:
    """Names of the channels ``selection`` reads from ``path`` (all when it picks none); [] if unnamed."""
    path = Path(path)
    if not (is_zarr_dir(path) or _is_tiff(path) or _is_vendor(path)):
        return []
    try:
        names = image_info(path).channel_names
    except InputError:
        return []
    if not names or not selection.channels:
        return list(names)
    picked = []
    for wanted in selection.channels:
        if isinstance(wanted, int) and -len(names) <= wanted < len(names):
            picked.append(names[wanted])
        elif isinstance(wanted, str):
            picked.append(next((n for n in names if n.lower() == wanted.lower()), wanted))
    return picked if len(picked) == len(selection.channels) else []


def spacing_um(spacing: tuple[float, ...] | None, unit: str) -> tuple[float, ...] | None:
    """A spacing in ``unit`` as micrometres; None when it or its unit is unknown ("pixel", "")."""
    if spacing is None or not unit:
        return None
    sizes = [to_micrometres(value, unit) for value in spacing]
    return None if any(s is None or s <= 0 for s in sizes) else tuple(sizes)


# --------------------------------------------------------------------------------------------------
# MINISWHITE TIFFs: 0 is shown white, so the pixels mean the inverse of what is stored
#
# TIFF's PhotometricInterpretation 0 (WhiteIsZero) shows 0 as white and 2**BitsPerSample - 1 as black; Pillow and Fiji
# show such an image inverted, and a network trained on what people see must read it so (read as stored, dark nuclei on
# white became bright ones: 53 objects found instead of 25). The spec defines this for unsigned integers only: float or
# signed samples have no defined white, and inverting them against the image's own maximum would make a tile's values
# depend on the tile, so those are refused. Label files keep their stored values: ImageJ writes a mask shown with an
# inverting LUT as WhiteIsZero with its objects still 255.


def miniswhite_top(path: str | Path) -> int | None:
    """The value a MINISWHITE TIFF shows as black (2**BitsPerSample - 1; 1 for 1-bit), which its stored values are
    subtracted from to read them as shown; None for any other file (other photometrics, non-TIFF, unreadable: its
    reader names the problem). InputError for MINISWHITE float or signed samples, whose inversion is undefined.
    Its header is read once per file version (every page of a stack asked it again): the version is the file's
    inode, size and change time (ctime, which a rewrite moves even when it restores the modification time)."""
    path = Path(path)
    if not _is_tiff(path) or not path.is_file():
        return None
    stat = path.stat()
    return _miniswhite_top(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@functools.lru_cache(maxsize=64)
def _miniswhite_top(name: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> int | None:
    path = Path(name)
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.photometric != tifffile.PHOTOMETRIC.MINISWHITE:
                return None
            bits, sample_format, dtype = int(page.bitspersample), int(page.sampleformat), page.dtype
    except (OSError, ValueError, KeyError, IndexError, AttributeError, tifffile.TiffFileError):
        return None
    if sample_format != tifffile.SAMPLEFORMAT.UINT:
        raise InputError(f"{path}: a MINISWHITE TIFF (0 shown white) of {dtype} samples, for which TIFF defines no "
                         "inversion; save the values as they should be read with photometric='minisblack'")
    return 2**bits - 1


def as_shown(array: np.ndarray, top: int) -> np.ndarray:
    """Stored MINISWHITE values as shown: ``top - value`` in the same dtype (uint8: 0 -> 255, 200 -> 55), ``~value``
    for bool (1-bit)."""
    array = np.asarray(array)
    if array.dtype == bool:
        return np.logical_not(array)
    return np.subtract(array.dtype.type(top), array, dtype=array.dtype)


def shown_pixels(array: np.ndarray, path: str | Path) -> np.ndarray:
    """``array`` read from ``path``, inverted as shown when the file is a MINISWHITE TIFF (noted once per file)."""
    top = miniswhite_top(path)
    if top is None:
        return array
    _note_inverted(path, top)
    return as_shown(array, top)


def _note_inverted(path: str | Path, top: int) -> None:
    note_once(f"miniswhite {path}", f"{path}: a MINISWHITE TIFF (0 shown white); its pixels are read as shown, "
              f"{top} - stored value, as Fiji and Pillow show them")


class ShownInverted:
    """Lazy view of a MINISWHITE TIFF's array whose reads come back as shown (``as_shown``)."""

    def __init__(self, source, top: int):
        self.source, self.top = source, top
        self.shape, self.ndim, self.dtype = tuple(source.shape), len(source.shape), np.dtype(source.dtype)

    def __getitem__(self, key) -> np.ndarray:
        return as_shown(np.asarray(self.source[key]), self.top)


def shown_view(source, path: str | Path):
    """``source``, a lazy array over ``path``, or a view of it read as shown when ``path`` is a MINISWHITE TIFF."""
    top = miniswhite_top(path)
    if top is None:
        return source
    _note_inverted(path, top)
    return ShownInverted(source, top)


# --------------------------------------------------------------------------------------------------
# lazy views for images larger than memory (unetkit.inference.streaming reads them box by box)


class _Boxed:
    """A lazy array restricted to a box on its Y/X(/Z) axes: ``select`` indexes it like the full array."""

    def __init__(self, array, axes: str, box: dict[str, slice]):
        self.array, self.axes, self.box = array, axes, box
        self.shape = tuple(len(range(*box[a].indices(n))) if a in box else n
                           for a, n in zip(axes, array.shape, strict=True))

    def __getitem__(self, index):
        full = tuple(self.box[a] if a in self.box and i == slice(None) else i
                     for a, i in zip(self.axes, index, strict=True))
        return self.array[full]


class SelectedSource:
    """Channels-first lazy view ``(C, *S)`` of a microscopy array: reads only the boxes asked for, of the
    selected time point, plane and channels (what ``open_source`` gives the streaming predictor)."""

    def __init__(self, array, info: ImageInfo, selection: Selection, spatial_dims: int, name: str):
        self.array, self.info, self.selection, self.dims, self.name = array, info, selection, spatial_dims, name
        self.axes = selection.axes or info.axes
        if len(self.axes) != array.ndim:
            raise InputError(f"{name}: axes {self.axes} do not fit the array of shape {tuple(array.shape)}; "
                             "give one --axes letter per axis (length-1 axes included) for large images")
        self.spatial = kept_spatial_axes(spatial_dims)
        probe = self._read({a: slice(0, 1) for a in self.spatial})  # validates the selection once
        sizes = dict(zip(self.axes, array.shape, strict=True))
        self.shape = (probe.shape[0], *(sizes[a] for a in self.spatial))
        self.ndim = len(self.shape)
        self.dtype = probe.dtype

    def _read(self, box: dict[str, slice]) -> np.ndarray:
        boxed = _Boxed(self.array, self.axes, box)
        return select(boxed, self.axes, Selection(self.selection.channels, "", self.selection.time,
                                                   self.selection.plane), self.info.channel_names, self.dims,
                      self.name, tuple(self.array.shape))

    def __getitem__(self, key) -> np.ndarray:
        return self._read(dict(zip(self.spatial, key[1:], strict=True)))


def _lazy_tiff(path: Path):
    """A memory map of a contiguous uncompressed TIFF series, else a zarr view through tifffile's store."""
    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:  # compressed or tiled: no single memory map
        zarr = _require_zarr(path)
        return zarr.open_array(tifffile.imread(path, aszarr=True, level=0), mode="r")  # a pyramid's full size


def _page_axes(axes: str, shape: tuple[int, ...], spatial_dims: int) -> str:
    """Axes of a plain TIFF's unnamed pages (tifffile's Q or I) as ``read_image`` / ``read_volume`` take them: up to
    ``MAX_PAGE_CHANNELS`` pages of a 2D image are channels, more are planes (a 2D network then asks for --plane), and
    a volume's pages are its planes. E.g. "QYX" (3, 64, 64): "CYX" in 2D, "ZYX" in 3D."""
    from unetkit.data.io import MAX_PAGE_CHANNELS

    if len(axes) != 3 or axes[0] not in "QI":
        return axes
    return ("C" if spatial_dims == 2 and shape[0] <= MAX_PAGE_CHANNELS else "Z") + axes[1:]


def lazy_source(path: str | Path, spatial_dims: int | None):
    """What ``open_source`` reads for OME-Zarr / OME-TIFF / ImageJ TIFF inputs and MINISWHITE TIFFs (None: not one
    of them).

    ``spatial_dims=None`` asks for the stored array as it is (a probability map this package wrote as
    OME-Zarr); otherwise the view applies the active selection (:func:`unetkit.data.axes.use_selection`).
    A MINISWHITE TIFF is read as shown (:func:`shown_view`), a plain one with its pages as ``read_image`` /
    ``read_volume`` take them (:func:`_page_axes`).
    """
    from unetkit.data.axes import active_selection

    path = Path(path)
    plain_miniswhite = (spatial_dims is not None and _is_tiff(path) and active_selection().empty
                        and not is_microscopy_file(path) and miniswhite_top(path) is not None)
    if _is_vendor(path):
        if spatial_dims is None:
            return None
        array, info = open_levels(path, 0)
        return SelectedSource(array, info, active_selection(), spatial_dims, str(path))
    zarr_image = is_zarr_dir(path) and "multiscales" in _zarr_attributes(path)
    if not zarr_image and not plain_miniswhite and (
            is_zarr_dir(path)  # a plain zarr array: open_source reads it (and its selection)
            or not (is_microscopy_file(path) or (_is_tiff(path) and not active_selection().empty))):
        return None
    if zarr_image:
        array, info = open_levels(path, 0)
        if spatial_dims is None:
            return array
    else:
        if spatial_dims is None:
            return None
        info = _tiff_info(path)
        if plain_miniswhite:
            info = ImageInfo(info.kind, _page_axes(info.axes, info.shape, spatial_dims), info.shape, info.pixel_size)
        array = _lazy_tiff(path)
        if array.shape != info.shape:
            array = array.reshape(info.shape)
        return shown_view(SelectedSource(array, info, active_selection(), spatial_dims, str(path)), path)
    return SelectedSource(array, info, active_selection(), spatial_dims, str(path))
