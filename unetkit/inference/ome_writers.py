"""Outputs that keep the input's pixel size: OME-TIFF for images and labels, PNG with its resolution.

A viewer (napari, Fiji/Bio-Formats, QuPath) then shows a mask over its image at the same scale, and
measurements made on it are in micrometres. Spacing is given per axis in µm, in the array's axis order
(``(y, x)`` or ``(z, y, x)``); without a spacing the files are written as before (plain TIFF / PNG).

OME-TIFF files get ``PhysicalSizeX/Y/Z`` in their OME-XML and the X/Y resolution tags in pixels per
centimetre, which readers without OME support (ImageJ's own opener, GIMP) understand. Every file is
written under a temporary name and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from unetkit.data.components import label_dtype
from unetkit.data.ome import image_stem
from unetkit.errors import InputError

UM_PER_CM = 1e4
UM_PER_INCH = 25_400.0


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial{path.suffix}")


def ome_metadata(axes: str, spacing: Sequence[float] | None, channel_names: Sequence[str] = ()) -> dict:
    """tifffile's OME metadata for an array with ``axes`` (e.g. "YX", "CYX", "ZYX") and spacing of its
    spatial axes in µm."""
    metadata: dict = {"axes": axes}
    spatial = [a for a in axes if a in "ZYX"]
    if spacing is not None:
        if len(spacing) != len(spatial):
            raise InputError(f"pixel size {tuple(spacing)} does not fit axes {axes}")
        for axis, size in zip(spatial, spacing, strict=True):
            metadata[f"PhysicalSize{axis}"] = float(size)
            metadata[f"PhysicalSize{axis}Unit"] = "µm"
    if channel_names:
        metadata["Channel"] = {"Name": list(channel_names)}
    return metadata


def resolution_tags(axes: str, spacing: Sequence[float] | None) -> dict:
    """Resolution tags (pixels per cm) for the Y/X spacing, or nothing."""
    if spacing is None:
        return {}
    sizes = dict(zip([a for a in axes if a in "ZYX"], spacing, strict=True))
    return {"resolution": (UM_PER_CM / sizes["X"], UM_PER_CM / sizes["Y"]), "resolutionunit": "CENTIMETER"}


def write_ome_tiff(path: str | Path, array: np.ndarray, axes: str, spacing: Sequence[float] | None = None,
                   channel_names: Sequence[str] = (), compress: bool = False) -> Path:
    """Write ``array`` with ``axes`` as an OME-TIFF carrying the pixel size (µm per spatial axis)."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim != len(axes):
        raise InputError(f"{path}: array of shape {array.shape} does not fit axes {axes}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    tifffile.imwrite(temporary, array, ome=True, photometric="minisblack",
                     metadata=ome_metadata(axes, spacing, channel_names),
                     compression="zlib" if compress else None, **resolution_tags(axes, spacing))
    os.replace(temporary, path)
    return path


def write_probabilities(path: str | Path, probabilities: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """Float32 probabilities (H, W), (C, H, W) or (D, H, W) for a 3D input (``spacing`` of 3 values)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    spatial = len(spacing) if spacing is not None else min(probabilities.ndim, 2)
    axes = ("C" if probabilities.ndim > spatial else "") + "ZYX"[3 - spatial:]
    if len(axes) != probabilities.ndim:
        raise InputError(f"{path}: probabilities of shape {probabilities.shape} do not fit pixel size {spacing}")
    return write_ome_tiff(path, probabilities, axes, spacing)


def write_label_image(path: str | Path, labels: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """Integer labels (H, W) or (D, H, W) as compressed uint16 OME-TIFF (uint32 past 65535 objects) with the pixel
    size."""
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{path}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint32).max):
        raise InputError(f"{path}: label ids {labels.min()}..{labels.max()} do not fit 0..{2**32 - 1}")
    axes = "ZYX"[3 - labels.ndim:]
    dtype = label_dtype(int(labels.max()) if labels.size else 0)
    return write_ome_tiff(path, labels.astype(dtype), axes, spacing, compress=True)


def write_mask_png(path: str | Path, mask: np.ndarray, spacing: Sequence[float] | None) -> Path:
    """A 2D 0/255 mask as PNG whose resolution (pHYs chunk) is the pixel size, when known."""
    from PIL import Image

    path = Path(path)
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    if mask.ndim != 2 or mask.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: a mask PNG holds a 2D uint8/uint16 array, got {mask.shape} {mask.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    options = {} if spacing is None or not png_holds(spacing) else {
        "dpi": (UM_PER_INCH / spacing[-1], UM_PER_INCH / spacing[-2])}
    Image.fromarray(np.ascontiguousarray(mask)).save(temporary, format="PNG", **options)
    os.replace(temporary, path)
    return path


def png_holds(spacing: tuple[float, ...]) -> bool:
    """Whether a PNG's resolution (pHYs: pixels per metre, unsigned 32-bit) can hold this pixel size in µm; a pixel
    under ~0.23 nm (atomic-resolution TEM) cannot, and its masks are written without one (said once)."""
    from unetkit.notes import note_once

    if all(0 < 1e6 / float(size) < 2**32 for size in spacing[-2:]):
        return True
    note_once("png resolution", f"a pixel size of {spacing[-1]:g} µm is too small for a PNG's resolution "
              "field; the mask PNGs carry none (the labels' OME-TIFF and the objects tables keep it)")
    return False


# --------------------------------------------------------------------------------------------------
# large images: OME-Zarr (image + labels/, multiscale) and pyramidal OME-TIFF, written block by block

BLOCK = 2048  # px per side of the blocks a pyramid level is built from (memory ~ K x 2048² x 4 B)
MIN_LEVEL_SIZE = 256  # the pyramid stops when a level's smaller side would go below this


def is_ome_zarr_output(path: str | Path) -> bool:
    """``*.ome.zarr``: predictions are written as an OME-Zarr image (a plain ``*.zarr`` stays an array)."""
    return Path(path).name.lower().endswith(".ome.zarr")


def is_ome_tiff_output(path: str | Path) -> bool:
    """``*.ome.tif(f)``: predictions are written as a tiled, pyramidal OME-TIFF."""
    return Path(path).name.lower().endswith((".ome.tif", ".ome.tiff"))


def pyramid_shapes(shape: Sequence[int], min_size: int = MIN_LEVEL_SIZE) -> list[tuple[int, ...]]:
    """Shapes of the levels of a 2x pyramid over the last two axes, e.g. (2, 1000, 700) -> (2, 1000, 700),
    (2, 500, 350): halving stops before the smaller of Y/X drops below ``min_size`` (min 1 level)."""
    shapes = [tuple(int(n) for n in shape)]
    while min(shapes[-1][-2:]) // 2 >= min_size:
        last = shapes[-1]
        shapes.append((*last[:-2], -(-last[-2] // 2), -(-last[-1] // 2)))
    return shapes


def _downsample(block: np.ndarray, average: bool) -> np.ndarray:
    """Halve the last two axes: the mean of each 2x2 (edge rows/columns repeated) or its top-left pixel."""
    if not average:
        return block[..., ::2, ::2]
    pad = [(0, 0)] * (block.ndim - 2) + [(0, block.shape[-2] % 2), (0, block.shape[-1] % 2)]
    data = np.pad(block.astype(np.float32), pad, mode="edge")
    return (data[..., 0::2, 0::2] + data[..., 1::2, 0::2] + data[..., 0::2, 1::2] + data[..., 1::2, 1::2]) / 4


def _blocks(shape: Sequence[int], block: int = BLOCK):
    """Boxes (slices over the last two axes) of at most ``block`` px per side, covering ``shape``; even starts."""
    for y in range(0, shape[-2], block):
        for x in range(0, shape[-1], block):
            yield (..., slice(y, min(y + block, shape[-2])), slice(x, min(x + block, shape[-1])))


def _fill_level(source, target, average: bool) -> None:
    """Write the 2x downsampled ``source`` into ``target``, block by block (memory flat)."""
    for box in _blocks(source.shape):
        half = (..., slice(box[1].start // 2, -(-box[1].stop // 2)), slice(box[2].start // 2, -(-box[2].stop // 2)))
        target[half] = _downsample(np.asarray(source[box]), average).astype(target.dtype, copy=False)


def _ngff_axes(axes: str, calibrated: bool) -> list[dict]:
    """NGFF axes; spatial ones in micrometres only when the pixel size is known (else unitless pixels)."""
    kinds = {"C": "channel", "T": "time"}
    return [{"name": a.lower(), "type": kinds.get(a, "space"),
             **({"unit": "micrometer"} if a in "ZYX" and calibrated else {})} for a in axes]


def _multiscales(axes: str, spacing: Sequence[float] | None, levels: int, name: str) -> list[dict]:
    base = dict(zip([a for a in axes if a in "ZYX"], spacing or [1.0] * sum(a in "ZYX" for a in axes),
                    strict=True))
    datasets = []
    for level in range(levels):
        factor = {a: (2.0**level if a in "YX" else 1.0) for a in axes}
        scale = [base.get(a, 1.0) * factor[a] for a in axes]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    return [{"version": "0.5", "name": name, "axes": _ngff_axes(axes, spacing is not None), "datasets": datasets}]


def _zarr():
    try:
        import zarr
    except ImportError as error:
        raise InputError("OME-Zarr output needs the zarr package: pip install 'unetkit[ome]'") from error
    return zarr


def default_axes(ndim: int, channels: bool) -> str:
    """The axes of an output of ``ndim`` dimensions: "CYX" / "CZYX" with ``channels`` (probabilities), else "YX" /
    "ZYX" (labels)."""
    return ("C" if channels else "") + "ZYX"[3 - ndim + channels:]


def create_ome_zarr(path: str | Path, shape: Sequence[int], dtype: str, chunk: int = 256, axes: str = ""):
    """A new OME-Zarr group at ``path`` with its full-resolution array "0" (returned, to be filled). ``axes`` (default
    ``default_axes`` with channels) become the array's ``dimension_names``, which NGFF 0.5 requires to equal the
    names of its multiscales axes."""
    zarr = _zarr()
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    chunks = (*([1] * (len(shape) - 2)), chunk, chunk)
    names = [a.lower() for a in (axes or default_axes(len(shape), channels=True))]
    if len(names) != len(shape):
        raise InputError(f"{path}: axes {axes} do not fit the shape {tuple(shape)}")
    return group.create_array("0", shape=tuple(shape), chunks=chunks, dtype=dtype, fill_value=0,
                              dimension_names=names)


def finish_ome_zarr(path: str | Path, axes: str, spacing: Sequence[float] | None, average: bool = True,
                    name: str = "", label_of: str | None = None) -> int:
    """Build the pyramid of the OME-Zarr at ``path`` from its array "0" and write the NGFF 0.5 metadata.

    ``label_of``: the group is a label image of that image group (its ``labels/`` entry is registered).
    Returns the number of levels.
    """
    zarr = _zarr()
    group = zarr.open_group(str(path), mode="r+")
    level0 = group["0"]
    shapes = pyramid_shapes(level0.shape)
    for level, shape in enumerate(shapes[1:], start=1):
        target = group.create_array(str(level), shape=shape, chunks=level0.chunks, dtype=level0.dtype,
                                    fill_value=0, overwrite=True, dimension_names=[a.lower() for a in axes])
        _fill_level(group[str(level - 1)], target, average)
    ome: dict = {"version": "0.5", "multiscales": _multiscales(axes, spacing, len(shapes), name or image_stem(path))}
    if label_of is not None:
        ome["image-label"] = {"version": "0.5", "source": {"image": "../../"}}
    group.attrs["ome"] = ome
    if label_of is not None:
        labels = zarr.open_group(str(Path(label_of) / "labels"), mode="a", zarr_format=3)
        names = list(labels.attrs.get("ome", {}).get("labels", []))
        labels.attrs["ome"] = {"version": "0.5", "labels": sorted({*names, Path(path).name})}
    return len(shapes)


def write_pyramidal_ome_tiff(source, path: str | Path, axes: str, spacing: Sequence[float] | None,
                             average: bool = True, tile: int = 256) -> int:
    """Write a (K, Y, X) array-like (read by boxes, e.g. a memory-mapped .npy) as a tiled pyramidal OME-TIFF.

    Every level is generated tile by tile from the full-resolution source, so memory stays at a few
    tiles of the coarsest factor (a 256 px tile of level 3 reads 2048² px of level 0). Returns the levels.
    """
    path = Path(path)
    shapes = pyramid_shapes(source.shape)
    dtype = np.dtype(source.dtype)

    def tiles(level: int):
        factor = 2**level
        shape = shapes[level]
        for plane in np.ndindex(*shape[:-2]):
            for y in range(0, shape[-2], tile):
                for x in range(0, shape[-1], tile):
                    box = (*plane, slice(y * factor, min((y + tile) * factor, source.shape[-2])),
                           slice(x * factor, min((x + tile) * factor, source.shape[-1])))
                    block = np.asarray(source[box])
                    for _ in range(level):
                        block = _downsample(block, average)
                    out = np.zeros((tile, tile), dtype)  # tifffile expects whole tiles
                    out[: block.shape[-2], : block.shape[-1]] = block.astype(dtype, copy=False)
                    yield out

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    with tifffile.TiffWriter(temporary, bigtiff=True, ome=True) as tif:
        options = {"tile": (tile, tile), "dtype": dtype, "photometric": "minisblack", "compression": "zlib"}
        tif.write(tiles(0), shape=shapes[0], subifds=len(shapes) - 1, metadata=ome_metadata(axes, spacing),
                  **resolution_tags(axes, spacing), **options)
        for level in range(1, len(shapes)):
            tif.write(tiles(level), shape=shapes[level], subfiletype=1, **options)
    os.replace(temporary, path)
    return len(shapes)


def _staging(path: Path) -> Path:
    """The .npy a pyramidal OME-TIFF is streamed into before it is tiled (beside the output)."""
    return path.with_name(f".{path.name}.level0.npy")


def open_output(path: str | Path, shape: Sequence[int], dtype: str):
    """The sink ``predict_large`` streams (K, *S) probabilities into for an OME output, else None.

    ``.ome.zarr``: the image's full-resolution array; ``.ome.tif``: a staging .npy next to the output,
    tiled into the pyramid by :func:`finish_output` (TIFF tiles cannot be written out of order).
    """
    from unetkit.inference.arrays import create_npy

    path = Path(path)
    if is_ome_zarr_output(path):
        return create_ome_zarr(path, shape, dtype)
    if is_ome_tiff_output(path):
        if len(shape) != 3:
            raise InputError(f"{path}: pyramidal OME-TIFF output is for 2D images; write 3D predictions to .ome.zarr")
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_npy(_staging(path), shape, dtype)
    return None


def reopen_output(path: str | Path):
    """The sink of an unfinished OME output made by :func:`open_output`, open for writing (resume), else None."""
    from unetkit.inference.arrays import open_npy

    path = Path(path)
    if is_ome_zarr_output(path):
        return _zarr().open_array(str(path / "0"), mode="r+")
    if is_ome_tiff_output(path):
        return open_npy(_staging(path), writable=True)
    return None


def finish_output(path: str | Path, spacing: Sequence[float] | None, name: str = "") -> None:
    """Complete an OME output of ``predict_large``: pyramid levels and calibrated metadata (else nothing).
    ``name``: the image's name in OME-Zarr metadata (the final file's, not the unfinished one being written)."""
    path = Path(path)
    spatial = "ZYX"[3 - len(spacing):] if spacing is not None else None
    if is_ome_zarr_output(path):
        zarr = _zarr()
        ndim = zarr.open_array(str(path / "0"), mode="r").ndim
        finish_ome_zarr(path, "C" + (spatial or "ZYX"[4 - ndim:]), spacing, average=True, name=name)
    elif is_ome_tiff_output(path):
        staging = _staging(path)
        try:
            write_pyramidal_ome_tiff(np.load(staging, mmap_mode="r"), path, "CYX", spacing, average=True)
        finally:
            staging.unlink(missing_ok=True)


def instances_into_ome_zarr(image: str | Path, name: str, config, kind: str, chunk: int = 2048, halo: int = 128,
                            progress: bool = True, spacing: Sequence[float] | None = None):
    """Instance labels of an OME-Zarr probability image into its ``labels/<name>`` group (multiscale,
    nearest-neighbour levels), chunk by chunk as ``instances_large`` does. Returns its statistics."""
    from unetkit.inference.chunked import postprocess_chunked

    zarr = _zarr()
    image = Path(image)
    probs = zarr.open_array(str(image / "0"), mode="r")
    target = image / "labels" / name
    zarr.open_group(str(image / "labels"), mode="a", zarr_format=3)
    labels = create_ome_zarr(target, probs.shape[1:], "uint32", axes=default_axes(probs.ndim - 1, channels=False))
    stats = postprocess_chunked(probs, labels, config, kind, chunk, halo, progress)
    if spacing is None:  # the image's own, when it is calibrated
        multiscale = zarr.open_group(str(image), mode="r").attrs.get("ome", {}).get("multiscales", [{}])[0]
        if any("unit" in axis for axis in multiscale.get("axes", [])):
            spacing = tuple(multiscale["datasets"][0]["coordinateTransformations"][0]["scale"][1:])
    finish_ome_zarr(target, "ZYX"[4 - probs.ndim:], spacing, average=False, name=name, label_of=str(image))
    return stats
