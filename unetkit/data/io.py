"""Reading and writing images, stacks, volumes and label images.

Everything returned follows the project's conventions in the file's native dtype:
images are channels-first ``(C, H, W)``, volumes ``(C, D, H, W)``, stacks of 2D pages ``(N, H, W)``,
label images integer ``(H, W)`` (``int32``). Normalisation to float32 is a separate step
(:func:`normalize_percentile`) so callers can choose it.

Every problem with a user's file raises ``FileNotFoundError`` or :class:`~unetkit.errors.InputError`
with the file name, what is wrong and how to fix it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import tifffile
from numpy.typing import DTypeLike
from PIL import Image

from unetkit.data import ome
from unetkit.data.components import label_dtype
from unetkit.data.formats import extension, extensions
from unetkit.errors import InputError
from unetkit.notes import note_once
from unetkit.safety.atomic import atomic_path
from unetkit.safety.memory import check_fits_in_memory

IMAGE_EXTENSIONS = extensions("image")  # .png .tif .tiff .jpg .jpeg (unetkit.data.formats)
TIFF_EXTENSIONS = extensions(name="tiff")
NIFTI_EXTENSIONS = extensions(name="nifti")

# A generic TIFF whose pages carry no axis meaning ("Q" in tifffile) and has at most this many pages is
# read by read_image as channels (C, H, W); more pages make it a stack that needs read_stack/read_volume.
MAX_PAGE_CHANNELS = 4

# What decoders raise on a corrupt, truncated or foreign file: Pillow and tifffile parse untrusted bytes and
# raise many types (struct.error, TypeError, ...; found by tests/safety/test_fuzz_cli.py). Our own
# InputError and MemoryError are re-raised before these handlers.
DECODE_ERRORS = (OSError, ValueError, KeyError, IndexError, SyntaxError, EOFError, TypeError, AttributeError,
                 ZeroDivisionError, OverflowError, RuntimeError, struct.error, tifffile.TiffFileError)


# --------------------------------------------------------------------------------------------------
# helpers


def _extension(path: Path) -> str:
    """Lower-case extension, with ``.nii.gz`` kept whole."""
    return extension(path)


def _check_file(path: str | Path, allowed: tuple[str, ...] = IMAGE_EXTENSIONS) -> Path:
    """Path of an existing file with a supported extension, else a clear error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file ({', '.join(allowed)})")
    if _extension(path) not in allowed:
        raise InputError(
            f"{path}: unsupported file type '{_extension(path) or '(none)'}'; "
            f"supported here: {', '.join(allowed)}"
        )
    return path


def tiff_pages(path: str | Path) -> int:
    """Number of pages of a TIFF file, from its header; InputError naming it when it cannot be read."""
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except DECODE_ERRORS as error:
        raise InputError(f"{path}: cannot read the TIFF ({error}); it may be corrupt") from error


def _corrupt(path: Path, error: Exception) -> InputError:
    return InputError(
        f"{path}: cannot read the file ({type(error).__name__}: {error}); it may be corrupt, truncated "
        "or not really in the format its extension says"
    )


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk, or None when the file is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _note_light_background_index(path: Path, palette: list[int]) -> None:
    """A note, once per file, for a palette mask whose index 0 (read as background) is shown light: its indices are
    the labels, as label tools write them, but a mask saved from a picture may hold its colours the other way."""
    if len(palette) >= 3 and sum(palette[:3]) > 3 * 128:
        note_once(f"palette {path}", f"{path}: a palette image whose index 0 is shown as {tuple(palette[:3])}; its "
                  "indices are read as labels (0 = background): if the objects are dark in it, save the mask as "
                  "gray values")


def _read_pillow(path: Path, palette_as_index: bool) -> np.ndarray:
    """PNG/JPEG/BMP/GIF as (H, W, C) in native dtype with any alpha channel removed.

    ``palette_as_index`` keeps the palette indices of mode "P" images (label images store class ids
    that way) instead of converting them to RGB colours.
    """
    header = _png_header(path) if _extension(path) == ".png" else None
    # PNG colour types 2 (RGB), 4 (gray+alpha), 6 (RGBA): Pillow reduces 16-bit samples to 8 bits.
    if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
        raise InputError(
            f"{path}: 16-bit colour or gray+alpha PNG; these lose 8 of their 16 bits when read, so save the "
            "image as a 16-bit TIFF (or as a 16-bit gray PNG without alpha)"
        )
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:  # an animated GIF or a multi-page file: not one 2D image
                raise InputError(f"{path}: {image.n_frames} frames; give one 2D image per file (save the frames as "
                                 "separate files, or the stack as a TIFF)")
            image.load()
            mode = image.mode
            if mode == "1":
                image = image.convert("L")  # bilevel -> 0/255
            elif mode in ("P", "PA") and not palette_as_index:
                image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
            elif mode == "P":
                _note_light_background_index(path, image.getpalette() or [])
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
                image = image.convert("RGB")
            elif mode in ("RGBa", "La"):  # premultiplied alpha
                image = image.convert("RGBA" if mode == "RGBa" else "LA")
            mode = image.mode
            array = np.asarray(image)
    except InputError:
        raise
    except Image.DecompressionBombError as error:
        raise InputError(f"{path}: {error}; an image this large is read tile by tile with predict-large "
                         "(save it as .npy or a tiled .tif)") from error
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error

    if array.dtype.byteorder == ">":  # "I;16B" -> native uint16
        array = array.astype(array.dtype.newbyteorder("="))
    if mode == "I" and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # older Pillow opens 16-bit gray PNGs as 32-bit "I"
    if array.ndim == 2:
        return array[:, :, None]
    if mode in ("LA", "PA"):
        return array[:, :, :1]
    if mode == "RGBA":
        return array[:, :, :3]
    return array


def _squeeze_axes(shape: tuple[int, ...], axes: str) -> tuple[tuple[int, ...], str]:
    """Drop length-1 axes except Y and X, e.g. (1, 512, 512) "QYX" -> (512, 512) "YX"."""
    kept = [(n, a) for n, a in zip(shape, axes, strict=True) if n > 1 or a in "YX"]
    return tuple(n for n, _ in kept), "".join(a for _, a in kept)


def note_other_series(tif: tifffile.TiffFile, path: Path) -> None:
    """One note per file holding more than one image (TIFF series: several OME images, a slide's label and macro):
    unetkit reads the first, and the others were left out without a word."""
    count = len(tif.series)
    if count > 1:
        note_once(f"series {path}", f"{path} holds {count} images (TIFF series); the first is read: save the others "
                  "as files of their own to use them")


def page_stack_message(path: str | Path, shape: tuple[int, ...], axes: str) -> str:
    """What to say of a TIFF of pages (a z-stack, a time-lapse) given where a 2D image is read."""
    return (f"{path}: a multi-page TIFF with {shape[0]} pages (axes {axes}, shape {tuple(shape)}) where a 2D image is "
            "read; choose one page with --axes ZYX --plane N (API: axes='ZYX', plane=N), or read the pages as "
            "channels with --axes CYX")


def _read_tiff_2d(path: Path) -> np.ndarray:
    """A single-plane TIFF as (H, W, C) in native dtype with extra (alpha) samples removed."""
    try:
        with tifffile.TiffFile(path) as tif:
            note_other_series(tif, path)
            series = tif.series[0]
            shape, axes = _squeeze_axes(series.shape, series.axes)
            extras = tuple(int(kind) for kind in (tif.pages[0].extrasamples or ()))
            if len(shape) == 3 and axes[-1] != "S" and axes[0] not in "CS":
                if axes[0] != "Q" or shape[0] > MAX_PAGE_CHANNELS:
                    raise InputError(page_stack_message(path, series.shape, series.axes) + ", or in Python read it "
                                     "with read_stack (2D slices, such as ISBI train-volume.tif) or read_volume (a 3D "
                                     "image)")
            if len(shape) not in (2, 3):
                raise InputError(
                    f"{path}: TIFF of shape {series.shape} (axes {series.axes}) is not a 2D image; "
                    "use read_volume for 3D or multi-channel 3D images"
                )
            check_fits_in_memory(path, series.shape, series.dtype.itemsize)  # headers can claim any size
            array = series.asarray().reshape(shape)
    except (InputError, MemoryError):
        raise
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error

    if array.ndim == 2:
        return array[:, :, None]
    if axes[-1] == "S":  # (H, W, samples) of one page
        return _without_alpha(array, extras, path)
    if axes[0] == "S":  # planar samples
        return _without_alpha(np.moveaxis(array, 0, -1), extras, path)
    return np.moveaxis(array, 0, -1)


ALPHA_SAMPLES = (1, 2)  # TIFF ExtraSamples: associated and unassociated alpha (0 = unspecified: data, e.g. a stain)


def _without_alpha(array: np.ndarray, extras: tuple[int, ...], path: Path) -> np.ndarray:
    """(H, W, samples) without the samples the TIFF tags as alpha; extra samples of unspecified meaning (the 4th and
    5th channel of a fluorescence image) are channels and stay. An alpha that varies is noted: it was a channel."""
    first_extra = array.shape[-1] - len(extras)
    alpha = [first_extra + k for k, kind in enumerate(extras) if kind in ALPHA_SAMPLES and first_extra + k > 0]
    if not alpha:
        return array
    if any(array[..., k].min() != array[..., k].max() for k in alpha):
        note_once(f"alpha {path}", f"{path}: its sample {alpha[0] + 1} of {array.shape[-1]} is tagged as alpha "
                  "(transparency) and left out; if it holds data (a 4th stain), save the image without the alpha tag "
                  "(tifffile: photometric='minisblack', extrasamples unspecified)")
    return np.delete(array, alpha, axis=-1)


def _read_2d(path: Path, palette_as_index: bool = False) -> np.ndarray:
    """Any supported 2D image file as (H, W, C), alpha removed."""
    if _extension(path) in TIFF_EXTENSIONS:
        return _read_tiff_2d(path)
    return _read_pillow(path, palette_as_index)


# --------------------------------------------------------------------------------------------------
# reading


def read_image(path: str | Path) -> np.ndarray:
    """A 2D image as channels-first ``(C, H, W)`` in its native dtype (uint8, uint16, float).

    Gray -> C=1, RGB -> C=3, RGBA -> C=3 (alpha dropped), gray+alpha -> C=1. TIFFs may be (H, W),
    (H, W, C) or (C, H, W) with up to 4 channels; multi-page stacks are refused (use :func:`read_stack`
    or :func:`read_volume`). OME-TIFF, ImageJ TIFF and OME-Zarr are read through their axes with the
    channel/time/plane selection in force (:mod:`unetkit.data.ome`, :mod:`unetkit.data.axes`).
    A MINISWHITE TIFF (0 shown white) is read as shown, inverted (:func:`unetkit.data.ome.shown_pixels`).
    """
    selected = ome.read_hook(path, 2, _read_image_plain)
    return ome.shown_pixels(real_pixels(selected if selected is not None else _read_image_plain(path), path), path)


def real_pixels(array: np.ndarray, path: str | Path) -> np.ndarray:
    """``array`` as it is, or InputError naming ``path`` when its pixels are complex numbers or it has none."""
    check_real(array.dtype, path)
    check_not_empty(array.shape, path)
    return array


def check_not_empty(shape: tuple[int, ...], where: str | Path) -> None:
    """InputError naming ``where`` for an image with no pixels (a side of 0), before numpy's reductions fail on it."""
    if any(int(n) == 0 for n in shape):
        raise InputError(f"{where}: the image has no pixels (shape {tuple(int(n) for n in shape)}); remove it or "
                         "save it again")


def check_real(dtype: DTypeLike, where: str | Path, fix: str = "save real ones, e.g. the magnitude") -> None:
    """InputError naming ``where`` and ``fix`` for a complex ``dtype``: a cast to float would drop the imaginary
    part unsaid. Checked on the dtype, so a lazy array is refused before any pixel is read."""
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        raise InputError(f"{where}: complex pixel values ({np.dtype(dtype)}); {fix}")


def _read_image_plain(path: str | Path) -> np.ndarray:
    path = _check_file(path)
    return np.ascontiguousarray(np.moveaxis(_read_2d(path), -1, 0))


def image_shape(path: str | Path) -> tuple[int, int]:
    """(H, W) of a 2D image file, read from its header only (cheap: no pixel decoding)."""
    path = _check_file(path)
    if _extension(path) in extensions(name="vendor"):
        info = ome.image_info(path)  # read through bioio: its named Y and X axes
        return info.shape[info.axes.index("Y")], info.shape[info.axes.index("X")]
    try:
        if _extension(path) in TIFF_EXTENSIONS:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return series.shape[series.axes.index("Y")], series.shape[series.axes.index("X")]
        with Image.open(path) as image:
            width, height = image.size
            return height, width
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error


# TIFF photometric interpretations whose samples are colours (what Pillow also reads as RGB)
_COLOUR_PHOTOMETRICS = (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR, tifffile.PHOTOMETRIC.PALETTE)


def holds_colour(path: str | Path) -> bool | None:
    """Whether a file's channels are colours: True for PNG / JPEG and RGB (or YCbCr, palette) TIFFs and an
    (H, W, 3) .npy (the layout of an RGB array, as the API reads arrays in memory), False for channels of
    another meaning (gray TIFF pages or a channel axis, a (3, H, W) .npy, OME-Zarr, vendor files); None when
    ``path`` names no file (the name of an in-memory array). Read from the header only.

    Averaging channels into gray is right for colours and a silent guess for anything else: three gray
    pages of a small z-stack, or DAPI / GFP / RFP, would be blended into one image.
    """
    path = Path(path)
    if not path.exists():
        return None
    if path.is_file() and _extension(path) == ".npy":
        shape = np.load(path, mmap_mode="r").shape
        return len(shape) == 3 and shape[-1] == 3 and shape[0] > 4
    if path.is_dir() or _extension(path) not in TIFF_EXTENSIONS:
        return _extension(path) in (extensions(name="png") + extensions(name="jpeg") + extensions(name="bmp")
                                    + extensions(name="gif"))
    try:
        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].photometric in _COLOUR_PHOTOMETRICS
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error


def _tiff_series(path: Path) -> tuple[np.ndarray, str]:
    """Whole first series of a TIFF with its tifffile axes, singleton axes squeezed."""
    try:
        with tifffile.TiffFile(path) as tif:
            note_other_series(tif, path)
            series = tif.series[0]
            shape, axes = _squeeze_axes(series.shape, series.axes)
            check_fits_in_memory(path, series.shape, series.dtype.itemsize)
            return series.asarray().reshape(shape), axes
    except (InputError, MemoryError):
        raise
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error


def read_stack(path: str | Path) -> np.ndarray:
    """Pages of a gray multi-page TIFF as ``(N, H, W)`` (a single-page TIFF gives N=1); MINISWHITE pages as shown."""
    path = _check_file(path, TIFF_EXTENSIONS)
    array, axes = _tiff_series(path)
    array = ome.shown_pixels(array, path)
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3 or axes[-1] == "S":
        raise InputError(
            f"{path}: expected a stack of gray 2D pages (N, H, W), got shape {array.shape} (axes {axes}); "
            "colour or multi-channel stacks are read with read_volume"
        )
    return array


def read_page(path: str | Path, index: int, as_shown: bool = True) -> np.ndarray:
    """Page ``index`` of a gray multi-page TIFF as ``(H, W)``, without reading the other pages. ``as_shown``: a
    MINISWHITE page inverted as shown (images); False keeps the stored values (labels, see ``read_labels``)."""
    path = _check_file(path, TIFF_EXTENSIONS)
    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            if not 0 <= index < n_pages:
                raise InputError(f"{path}: page {index} requested but the stack has {n_pages} pages")
            array = tif.pages[index].asarray()
    except (InputError, MemoryError):
        raise
    except DECODE_ERRORS as error:
        raise _corrupt(path, error) from error
    array = np.squeeze(array)
    if array.ndim != 2:
        raise InputError(f"{path}: page {index} has shape {array.shape}; expected a gray 2D page (H, W)")
    return ome.shown_pixels(array, path) if as_shown else array


def _read_nifti(path: Path) -> np.ndarray:
    """NIfTI volume as (C, D, H, W); NIfTI stores (X, Y, Z[, C]) so the axes are reversed."""
    try:
        import nibabel
    except ImportError as error:
        raise InputError(
            f"{path}: reading NIfTI files needs the 'nibabel' package, which is not installed "
            "(pip install nibabel), or convert the volume to a ZYX TIFF"
        ) from error
    try:
        data = np.asanyarray(nibabel.load(str(path)).dataobj)
    except Exception as error:  # nibabel raises many types for bad files
        raise _corrupt(path, error) from error
    if data.ndim == 3:
        return np.ascontiguousarray(data.transpose(2, 1, 0)[None])  # (X, Y, Z) -> (1, Z, Y, X)
    if data.ndim == 4:
        return np.ascontiguousarray(data.transpose(3, 2, 1, 0))  # (X, Y, Z, C) -> (C, Z, Y, X)
    raise InputError(f"{path}: NIfTI of shape {data.shape}; expected 3D (X, Y, Z) or 4D (X, Y, Z, C)")


def _read_slice_folder(folder: Path) -> np.ndarray:
    """A folder of 2D slices, sorted by file name, as (C, D, H, W)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and _extension(p) in IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"{folder}: no 2D image slices ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    slices = [read_image(files[0])]
    for file in files[1:]:
        image = read_image(file)
        if image.shape != slices[0].shape:
            raise InputError(
                f"{file}: slice of shape {image.shape} differs from {files[0].name} {slices[0].shape}; "
                "all slices of a volume must have the same size and channels"
            )
        slices.append(image)
    return np.stack(slices, axis=1)  # (C, D, H, W)


def read_volume(path: str | Path) -> np.ndarray:
    """A 3D image as ``(C, D, H, W)`` in its native dtype.

    Accepts a 3D TIFF (ZYX -> C=1; ZCYX or CZYX when tifffile knows the axes; an unlabelled 4D TIFF is
    taken as ZCYX, the ImageJ order), a NIfTI file (needs ``nibabel``) or a folder of 2D slices sorted
    by name. OME-TIFF, ImageJ TIFF and OME-Zarr go through :mod:`unetkit.data.ome` (axes, selection).
    A MINISWHITE TIFF (0 shown white) is read as shown, inverted (:func:`unetkit.data.ome.shown_pixels`).
    """
    return ome.shown_pixels(_read_volume_stored(path), path)


def _read_volume_stored(path: str | Path) -> np.ndarray:
    """``read_volume`` with the values as stored (a MINISWHITE TIFF not inverted): what label volumes hold."""
    selected = ome.read_hook(path, 3, _read_volume_plain)
    return real_pixels(selected if selected is not None else _read_volume_plain(path), path)


def _read_volume_plain(path: str | Path) -> np.ndarray:
    path = Path(path)
    if path.is_dir():
        return _read_slice_folder(path)
    path = _check_file(path, TIFF_EXTENSIONS + NIFTI_EXTENSIONS)
    if _extension(path) in NIFTI_EXTENSIONS:
        return _read_nifti(path)
    array, axes = _tiff_series(path)
    if array.ndim == 3 and axes[-1] != "S":
        return array[None]  # (D, H, W) -> (1, D, H, W)
    if array.ndim == 4 and axes[-1] != "S":
        if "C" in axes and "Z" in axes:
            return np.ascontiguousarray(np.moveaxis(array, axes.index("C"), 0))
        return np.ascontiguousarray(array.transpose(1, 0, 2, 3))  # assume ZCYX
    flat = array.ndim == 2 or (array.ndim == 3 and axes[-1] == "S")
    raise InputError(
        f"{path}: TIFF of shape {array.shape} (axes {axes}) is not a 3D volume (ZYX or ZCYX)"
        + ("; it is a 2D image: give it where 2D images are read (a 2D model; weights without --volume)" if flat
           else "; save it as one: a gray or multi-channel z-stack of one time point")
    )


def to_label_dtype(array: np.ndarray, path: str | Path) -> np.ndarray:
    """Integer label array as int32, refusing fractional, negative or too large values (``path``: the file, or
    what messages call the array, e.g. "pair 0")."""
    if array.dtype == bool:
        return array.astype(np.int32)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(
                f"{path}: label image holds non-integer values (dtype {array.dtype}); labels must be "
                "integer class or instance ids (0 = background), e.g. labels/ or masks/ of `unetkit predict`, "
                "not its probabilities/"
            )
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{path}: label image of dtype {array.dtype}; expected integers")
    if array.size and (array.min() < 0 or array.max() > np.iinfo(np.int32).max):
        raise InputError(
            f"{path}: label values range {array.min()}..{array.max()}; expected 0 (background) and "
            "positive ids below 2**31"
        )
    return array.astype(np.int32)


LOSSY_TIFF_CODECS = ("JPEG", "OJPEG", "ALT_JPEG", "JPEG_LOSSY", "JPEG_2000_LOSSY")  # lossy by definition; JPEG 2000,
#   JPEG XL, JPEG XR and WebP can be lossless, and are read as they are


def check_lossless(path: Path) -> None:
    """Refuse a mask stored lossily (JPEG, or a TIFF compressed with JPEG): its values are blurred at every edge
    (a 0/255 mask read back holds some 30 values), so masks grow by a ring of false foreground and grey levels
    pass for instance ids."""
    kind = "JPEG" if extension(path) in extensions(name="jpeg") else None
    if kind is None and extension(path) in extensions(name="tiff"):
        try:
            with tifffile.TiffFile(path) as tif:
                codec = str(getattr(tif.pages[0].compression, "name", "")).upper()
        except Exception:  # noqa: BLE001 - unreadable (truncated, foreign): the reader names it
            return
        kind = codec if codec in LOSSY_TIFF_CODECS else None
    if kind:
        raise InputError(f"{path}: a mask stored with lossy {kind} compression, whose values are changed at every "
                         "edge; save masks as PNG or uncompressed / LZW / zlib TIFF")


def read_labels(path: str | Path) -> np.ndarray:
    """A 2D label or mask image as ``(H, W)`` int32 with values kept (ids, classes or 0/255).

    RGB(A) masks whose colour channels are all equal are read as one channel; truly coloured masks
    are refused (they need a colour -> class table). Palette PNGs give their palette indices. A MINISWHITE TIFF
    keeps its stored values, unlike images: ImageJ saves a mask shown with an inverting LUT so, objects still 255.
    """
    path = _check_file(path)
    check_lossless(path)
    array = _read_2d(path, palette_as_index=True)  # (H, W, C)
    check_not_empty(array.shape, path)
    if array.shape[-1] > 1:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, array.shape[-1])):
            raise InputError(
                f"{path}: colour-coded mask ({array.shape[-1]} differing channels); label images must hold "
                "one integer id per pixel. `train --task multiclass` reads colour-coded masks with a class "
                "table: data.class_colors (one [R, G, B] per class, background first) in a --config file; "
                "anything else (evaluate included) needs the mask saved as gray class ids"
            )
    return to_label_dtype(array[..., 0], path)


def read_label_volume(path: str | Path) -> np.ndarray:
    """A 3D label image as ``(D, H, W)`` int32 (TIFF ZYX, NIfTI or a folder of 2D label slices)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _extension(p) in IMAGE_EXTENSIONS)
        if not files:
            raise InputError(f"{path}: no label slices ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        slices = [read_labels(f) for f in files]
        for file, labels in zip(files, slices, strict=True):
            if labels.shape != slices[0].shape:
                raise InputError(f"{file}: slice shape {labels.shape} differs from {files[0].name} "
                                 f"{slices[0].shape}")
        return np.stack(slices)
    check_lossless(path)
    volume = _read_volume_stored(path)  # ids as stored, MINISWHITE or not (read_labels)
    if volume.shape[0] != 1:
        raise InputError(f"{path}: label volume has {volume.shape[0]} channels; expected one (ZYX)")
    return to_label_dtype(volume[0], path)


# --------------------------------------------------------------------------------------------------
# normalisation


def working_dtype(dtype: DTypeLike) -> np.dtype:
    """The float type images of ``dtype`` are normalised in: float32 for what it holds exactly (bool, 8- and
    16-bit integers, float16/32), float64 for 32/64-bit integers and float64. Why: cast to float32 first, an
    offset such as 2**30 + pixel or 1e6 + 0.001 * pixel rounds the pixels away before the percentiles are
    subtracted, and a float64 value past float32's range becomes inf."""
    dtype = np.dtype(dtype)
    exact = dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize <= 2) or dtype in (np.float16, np.float32)
    return np.dtype(np.float32 if exact else np.float64)


def check_normalized(result: np.ndarray, data: np.ndarray, name: str) -> np.ndarray:
    """Refuse finite pixels that normalisation took past float32's range (a float64 1e300 among 0..255)."""
    if result.dtype == data.dtype or np.isfinite(result).all():
        return result
    beyond = np.isfinite(data) & ~np.isfinite(result)
    if beyond.any():
        largest = float(np.abs(data[beyond]).max())
        raise InputError(f"{name}: {int(beyond.sum())} pixel value(s) (up to {largest:.3g}) lie so far beyond the "
                         "image's others that they exceed float32 once normalised; clip or fix those values")
    return result


def normalize_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.8, name: str = "image") -> np.ndarray:
    """Map the ``low``/``high`` percentiles of the whole image to 0/1 as float32 (any shape).

    All channels share one mapping, so colour ratios are kept. Values outside the percentiles are
    mapped linearly, not clipped (e.g. uint8 with p1 = 10, p99.8 = 210: 10 -> 0, 210 -> 1, 255 -> 1.225).
    When the percentiles coincide (sparse images) the min/max range is used; constant images give zeros.
    The arithmetic is in ``working_dtype`` (float64 for 32/64-bit integers and float64), then float32.
    """
    if not 0 <= low < high <= 100:
        raise InputError(f"normalisation percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    image = np.asarray(image)
    work = working_dtype(image.dtype)
    data = np.asarray(image, dtype=work)
    if data.size == 0:
        return data.astype(np.float32)
    lo, hi = np.percentile(data, [low, high])
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(data.shape, np.float32)
    with np.errstate(over="ignore"):  # values past float32 are named by check_normalized
        result = ((data - work.type(lo)) / work.type(hi - lo)).astype(np.float32, copy=False)
    return check_normalized(result, data, name)


# --------------------------------------------------------------------------------------------------
# writing


def write_tiff(path: str | Path, array: np.ndarray, *, compress: bool = False, channels: bool = False) -> Path:
    """Write ``array`` as a TIFF in any dtype; creates the parent folder.

    Axes are stored as given, as gray planes: (H, W), (C, H, W), (D, H, W), (C, D, H, W). Nothing is
    guessed to be RGB (tifffile would otherwise store a (3, H, W) volume as one colour image).
    ``channels``: a (C, H, W) image's C are the samples of one page (any count is read back as channels; more
    than ``MAX_PAGE_CHANNELS`` pages would read as a stack). ``compress`` uses lossless zlib (deflate),
    worthwhile for label images.
    """
    path = Path(path)
    array = np.asarray(array)
    layout = {"planarconfig": "contig"} if channels else {}
    if channels:
        array = np.ascontiguousarray(np.moveaxis(array, 0, -1))
    with atomic_path(path) as tmp:  # a kill mid-write never leaves a truncated file under the final name
        tifffile.imwrite(tmp, array, photometric="minisblack", compression="zlib" if compress else None, **layout)
    return path


def _to_hwc(array: np.ndarray, path: Path) -> np.ndarray:
    """(H, W), (C, H, W) or unambiguous (H, W, C) with C in 1/3/4 -> (H, W) or (H, W, C)."""
    if array.ndim == 2:
        return array
    if array.ndim == 3:
        if array.shape[0] in (1, 3, 4):  # channels-first, the project's convention
            array = np.moveaxis(array, 0, -1)
        if array.shape[-1] == 1:
            return array[..., 0]
        if array.shape[-1] in (3, 4):
            return array
    raise InputError(
        f"{path}: cannot write an array of shape {array.shape} as PNG; expected (H, W), (C, H, W) or "
        "(H, W, C) with C = 1 (gray), 3 (RGB) or 4 (RGBA)"
    )


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 (gray/RGB/RGBA) or uint16 (gray) image as PNG; bool is written as 0/255."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype not in (np.uint8, np.uint16):
        raise InputError(
            f"{path}: PNG needs uint8 or uint16 data, got {array.dtype}; scale and convert it first "
            "(or write a TIFF, which keeps any dtype)"
        )
    array = _to_hwc(array, path)
    if array.dtype == np.uint16 and array.ndim == 3:
        raise InputError(f"{path}: 16-bit colour PNGs are not supported; write a TIFF instead")
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
    return path


def write_labels(path: str | Path, labels: np.ndarray) -> Path:
    """Write an integer label image as uint16 (uint32 TIFF above 65535 objects), TIFF (2D or 3D, compressed) or PNG
    (2D) by extension."""
    path = Path(path)
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{path}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError(f"{path}: labels hold negative values ({labels.min()}); ids must be >= 0")
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(np.uint32).max:
        raise InputError(f"{path}: labels go up to {top}; ids must be at most {2**32 - 1}")
    dtype = label_dtype(top)  # more objects than uint16 holds: a uint32 TIFF
    ext = _extension(path)
    if ext in TIFF_EXTENSIONS:
        return write_tiff(path, labels.astype(dtype), compress=True)
    if ext == ".png":
        if labels.ndim != 2:
            raise InputError(f"{path}: PNG holds 2D labels only, got shape {labels.shape}; use .tif")
        if dtype != np.uint16:
            raise InputError(f"{path}: labels go up to {top}, more than a 16-bit PNG holds (65535); "
                             "write a .tif (uint32)")
        return write_png(path, labels.astype(np.uint16))
    raise InputError(f"{path}: label files are written as .tif, .tiff or .png, not '{ext}'")
