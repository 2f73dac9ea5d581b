"""Disk-backed arrays for images larger than memory: read and write boxes, never the whole array.

- ``RawArray``: an uncompressed C-ordered array at a byte offset of a file (``.npy``, contiguous TIFF),
  read and written by file offset (``os.pread``/``os.pwrite``). Unlike ``np.memmap`` the pages touched
  are not kept mapped into the process, so its resident memory does not grow with the image.
- ``TiledTiff``: an uncompressed tiled BigTIFF, written tile by tile (boxes not aligned to tiles are
  read-modify-written); ``TiffPlane``: its one plane (H, W), for label images.
- zarr arrays (optional extra ``unetkit[zarr]``) are used as they are.
- ``ChannelsFirst``: presents (H, W) or (H, W, C) data as channels-first (C, H, W) without copying.

All of them take ``array[(slice, slice, ...)]`` reads and ``array[(slice, ...)] = block`` writes with
step-1 slices, which is all the tiling code uses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unetkit.errors import InputError

Box = tuple[slice, ...]


def _ranges(key, shape: Sequence[int]) -> tuple[list[tuple[int, int]], list[bool]]:
    """Per-axis (start, stop) of a basic-index key of slices/ints; flags of the axes indexed by an int."""
    key = key if isinstance(key, tuple) else (key,)
    if len(key) > len(shape):
        raise IndexError(f"too many indices ({len(key)}) for an array of {len(shape)} axes")
    ranges, dropped = [], []
    for axis, n in enumerate(shape):
        item = key[axis] if axis < len(key) else slice(None)
        if isinstance(item, (int, np.integer)):
            index = int(item) + (n if item < 0 else 0)
            ranges.append((index, index + 1))
            dropped.append(True)
            continue
        start, stop, step = item.indices(n)
        if step != 1:
            raise IndexError("disk arrays take step-1 slices only")
        ranges.append((start, max(start, stop)))
        dropped.append(False)
    return ranges, dropped


class RawArray:
    """A C-ordered uncompressed array stored at ``offset`` bytes into ``path``; boxes read/written by offset.

    Example: a (2, 20000, 20000) float32 ``.npy`` file; ``a[:, 0:256, 512:768]`` issues 2 x 256 reads
    of 1 KiB. When the trailing axes of a box are whole, their rows merge into one read.
    """

    def __init__(self, path: str | Path, offset: int, shape: Sequence[int], dtype, writable: bool = False):
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.writable = writable
        self._fd = os.open(self.path, os.O_RDWR if writable else os.O_RDONLY)
        self._strides = [int(np.prod(self.shape[a + 1:], dtype=np.int64)) * self.dtype.itemsize
                         for a in range(self.ndim)]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()

    def _runs(self, ranges: list[tuple[int, int]]):
        """(byte offset, byte count, index into the box) of each contiguous run of the box."""
        merge = self.ndim - 1  # first axis from which the rest of the box is contiguous on disk
        while merge > 0 and ranges[merge] == (0, self.shape[merge]):
            merge -= 1
        lead = [range(a, b) for a, b in ranges[:merge]]
        count = (ranges[merge][1] - ranges[merge][0]) * self._strides[merge]
        for index in np.ndindex(*(len(r) for r in lead)):
            position = sum((lead[a][i]) * self._strides[a] for a, i in enumerate(index))
            yield self.offset + position + ranges[merge][0] * self._strides[merge], count, index

    def __getitem__(self, key) -> np.ndarray:
        ranges, dropped = _ranges(key, self.shape)
        box_shape = tuple(b - a for a, b in ranges)
        out = np.empty(box_shape, dtype=self.dtype)
        if out.size:
            merge_shape = box_shape
            flat = out.reshape(-1)
            for run, (offset, count, _) in enumerate(self._runs(ranges)):
                data = os.pread(self._fd, count, offset)
                if len(data) != count:
                    raise InputError(f"{self.path}: file is shorter than its header says (truncated?)")
                items = count // self.dtype.itemsize
                flat[run * items:(run + 1) * items] = np.frombuffer(data, dtype=self.dtype)
            out = flat.reshape(merge_shape)
        return out[tuple(0 if d else slice(None) for d in dropped)]

    def __setitem__(self, key, value) -> None:
        if not self.writable:
            raise InputError(f"{self.path} is opened read-only")
        ranges, dropped = _ranges(key, self.shape)
        box_shape = tuple(b - a for a, b in ranges)
        block = np.broadcast_to(np.asarray(value, dtype=self.dtype),
                                tuple(n for n, d in zip(box_shape, dropped, strict=True) if not d))
        flat = np.ascontiguousarray(block).reshape(-1)
        if not flat.size:
            return
        for run, (offset, count, _) in enumerate(self._runs(ranges)):
            items = count // self.dtype.itemsize
            os.pwrite(self._fd, flat[run * items:(run + 1) * items].tobytes(), offset)


def create_npy(path: str | Path, shape: Sequence[int], dtype) -> RawArray:
    """A new ``.npy`` file of ``shape`` (sparse on disk until written), open for box writes.

    ``np.load(path, mmap_mode="r")`` reads it afterwards like any ``.npy``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        offset = handle.tell()
        handle.truncate(offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return RawArray(path, offset, shape, dtype, writable=True)


def open_npy(path: str | Path, writable: bool = False) -> RawArray:
    """An existing ``.npy`` file as a ``RawArray`` (C order only)."""
    path = Path(path)
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(handle)
        except ValueError as error:
            raise InputError(f"{path}: not a readable .npy file ({error})") from error
        offset = handle.tell()
    if fortran:
        raise InputError(f"{path}: Fortran-ordered .npy; save it C-ordered (np.save(path, np.ascontiguousarray(a)))")
    if dtype.hasobject:
        raise InputError(f"{path}: .npy of Python objects; save a numeric array")
    return RawArray(path, offset, shape, dtype, writable)


class TiledTiff:
    """An uncompressed tiled BigTIFF (C, H, W), planar, written box by box.

    ``create`` writes the file with zero tiles, then boxes go straight to their tiles' byte offsets;
    tiles only partly covered by a box are read, updated and written back.
    """

    def __init__(self, path: str | Path, writable: bool = True):
        import tifffile

        self.path = Path(path)
        with tifffile.TiffFile(self.path) as tif:
            page = tif.pages[0]
            if not page.is_tiled or page.compression != 1:
                raise InputError(f"{self.path}: not an uncompressed tiled TIFF")
            self.tile = tuple(int(t) for t in page.tile)
            self.offsets = np.asarray(page.dataoffsets, dtype=np.int64)
            self.dtype = np.dtype(page.dtype)
            shape = page.shape
        self.shape = tuple(int(s) for s in (shape if len(shape) == 3 else (1, *shape)))
        self.ndim = 3
        self.grid = tuple(math.ceil(n / t) for n, t in zip(self.shape[1:], self.tile, strict=True))
        self._fd = os.open(self.path, os.O_RDWR if writable else os.O_RDONLY)
        self._tile_bytes = int(np.prod(self.tile)) * self.dtype.itemsize

    @classmethod
    def create(cls, path: str | Path, shape: Sequence[int], dtype, tile: int = 256,
               spacing: Sequence[float] | None = None) -> TiledTiff:
        """A zero-filled file; ``spacing`` (µm per y, x) goes into its resolution tags, as Fiji and QuPath read them,
        and for an ``.ome.tif`` name into its OME-XML too (Bio-Formats reads that, not the tags)."""
        import tifffile

        from unetkit.inference.ome_writers import ome_metadata, resolution_tags

        path = Path(path)
        yx = None if spacing is None else tuple(spacing)[-2:]
        resolution = resolution_tags("YX", yx)
        if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
            resolution.update(ome=True, metadata=ome_metadata("CYX", yx))
        else:
            resolution["metadata"] = None
        path.parent.mkdir(parents=True, exist_ok=True)
        planar = "separate" if shape[0] > 1 else None  # tifffile refuses a planar config for one sample
        tifffile.imwrite(path, shape=tuple(shape), dtype=np.dtype(dtype), tile=(tile, tile), bigtiff=True,
                         photometric="minisblack", planarconfig=planar, **resolution)
        return cls(path)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()

    def _tile_index(self, channel: int, ty: int, tx: int) -> int:
        return (channel * self.grid[0] + ty) * self.grid[1] + tx

    def _read_tile(self, channel: int, ty: int, tx: int) -> np.ndarray:
        data = os.pread(self._fd, self._tile_bytes, int(self.offsets[self._tile_index(channel, ty, tx)]))
        return np.frombuffer(data, dtype=self.dtype).reshape(self.tile).copy()

    def _tiles(self, ranges):
        (y0, y1), (x0, x1) = ranges[1], ranges[2]
        th, tw = self.tile
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                ay, ax = max(y0, ty * th), max(x0, tx * tw)
                by, bx = min(y1, (ty + 1) * th), min(x1, (tx + 1) * tw)
                yield ty, tx, (slice(ay - ty * th, by - ty * th), slice(ax - tx * tw, bx - tx * tw)), \
                    (slice(ay - y0, by - y0), slice(ax - x0, bx - x0))

    def __getitem__(self, key) -> np.ndarray:
        ranges, dropped = _ranges(key, self.shape)
        out = np.empty(tuple(b - a for a, b in ranges), dtype=self.dtype)
        if out.size:
            for c in range(*ranges[0]):
                for ty, tx, in_tile, in_box in self._tiles(ranges):
                    out[(c - ranges[0][0], *in_box)] = self._read_tile(c, ty, tx)[in_tile]
        return out[tuple(0 if d else slice(None) for d in dropped)]

    def __setitem__(self, key, value) -> None:
        ranges, dropped = _ranges(key, self.shape)
        box_shape = tuple(b - a for a, b in ranges)
        block = np.asarray(value, dtype=self.dtype)
        block = np.broadcast_to(block, tuple(n for n, d in zip(box_shape, dropped, strict=True) if not d))
        block = block.reshape(box_shape)
        th, tw = self.tile
        for c in range(*ranges[0]):
            for ty, tx, in_tile, in_box in self._tiles(ranges):
                edge_h = min(th, self.shape[1] - ty * th)
                edge_w = min(tw, self.shape[2] - tx * tw)
                whole = (in_tile[0].stop - in_tile[0].start, in_tile[1].stop - in_tile[1].start) == (edge_h, edge_w)
                tile = np.zeros(self.tile, self.dtype) if whole else self._read_tile(c, ty, tx)
                tile[in_tile] = block[(c - ranges[0][0], *in_box)]
                os.pwrite(self._fd, tile.tobytes(), int(self.offsets[self._tile_index(c, ty, tx)]))


class TiffPlane:
    """The (H, W) plane of a one-channel ``TiledTiff``: label images written box by box, as .npy and zarr are."""

    def __init__(self, tiff: TiledTiff):
        if tiff.shape[0] != 1:
            raise ValueError(f"{tiff.path}: {tiff.shape[0]} channels; a plane view needs one")
        self.tiff = tiff
        self.shape = tiff.shape[1:]
        self.dtype = tiff.dtype
        self.ndim = 2

    def __getitem__(self, key) -> np.ndarray:
        return self.tiff[(0, *(key if isinstance(key, tuple) else (key,)))]

    def __setitem__(self, key, value) -> None:
        self.tiff[(0, *(key if isinstance(key, tuple) else (key,)))] = value

    def close(self) -> None:
        self.tiff.close()


def channel_layout(shape: Sequence[int], spatial_dims: int, channels: int | None = None) -> str:
    """'first' (C, *S), 'none' (*S) or 'last' (*S, C) for an array of ``shape``.

    A trailing axis of 1 to 4 after a longer first axis is taken as channels: (512, 512, 3), (512, 512, 2) (gray
    and alpha, or two stains) and (512, 512, 1) (gray with a trailing axis, as many readers give it) are 'last',
    (3, 512, 512) is 'first'. Otherwise the end that holds the model's ``channels`` is the channel axis (a thin strip
    (2, 900, 3) for a colour model, (H, W, 5) for a 5-channel one); channels-first when neither or both do.
    """
    shape = tuple(shape)
    if len(shape) == spatial_dims:
        return "none"
    if len(shape) == spatial_dims + 1:
        if shape[-1] in (1, 2, 3, 4) and shape[0] > 4:
            return "last"
        if channels is not None and shape[-1] == channels != shape[0]:  # (H, W, C) of the model's C channels
            return "last"
        return "first"
    raise InputError(f"array of shape {shape} is not a {spatial_dims}D image with or without a channel axis; "
                     f"give (*S), (C, *S) or (*S, C) with {spatial_dims} spatial axes")


class ChannelsFirst:
    """Channels-first (C, *S) view of data stored as (*S) (one channel) or (*S, C) (channels last)."""

    def __init__(self, base, layout: str):
        if layout not in ("none", "last"):
            raise ValueError(f"layout must be 'none' or 'last', got {layout}")
        self.base = base
        self.layout = layout
        shape = tuple(base.shape)
        self.shape = (1, *shape) if layout == "none" else (shape[-1], *shape[:-1])
        self.dtype = base.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        channel, spatial = key[0], tuple(key[1:])
        if self.layout == "none":
            return np.asarray(self.base[spatial])[None][channel]
        block = np.asarray(self.base[(*spatial, slice(None))])
        return np.moveaxis(block, -1, 0)[channel]


class ChannelSubset:
    """Channels-first (len(indices), *S) view of the channels ``indices`` of a channels-first array."""

    def __init__(self, base, indices: Sequence[int]):
        self.base = base
        self.indices = list(indices)
        self.shape = (len(self.indices), *tuple(base.shape)[1:])
        self.dtype = base.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        channel, spatial = (key[0] if key else slice(None)), tuple(key[1:])
        return np.stack([np.asarray(self.base[(index, *spatial)]) for index in self.indices])[channel]


def pick_array_channels(image, channels: Sequence[int | str], model_channels: int, name: str):
    """The ``channels`` (indices) of a channels-first array, which has no channel names: refused by name when an
    index is outside it, or when names are asked for and the array does not already hold the model's channels
    (a 2-channel array for a 1-channel model). No selection, or names with the model's channel count: as given."""
    have = int(image.shape[0])
    if not channels:
        return image
    names = [c for c in channels if isinstance(c, str)]
    if names:
        if have == model_channels:
            return image  # taken as the selected channels already
        raise InputError(f"{name}: channels {list(channels)} are names, and an array has none; give channel "
                         f"indices (channels=[0]) or the array of the {model_channels} channel(s) the model takes")
    wrong = [c for c in channels if not -have <= int(c) < have]
    if wrong:
        raise InputError(f"{name}: channel {wrong[0]} of an array of {have} channel(s) (0..{have - 1}); choose "
                         "channels within it")
    indices = [int(c) % have for c in channels]
    if indices == list(range(have)):
        return image
    return image[indices] if isinstance(image, np.ndarray) else ChannelSubset(image, indices)


def is_zarr_path(path: Path) -> bool:
    return path.suffix.lower() == ".zarr"


def require_zarr():
    try:
        import zarr
    except ImportError as error:
        raise InputError("zarr input/output needs the optional package zarr: pip install 'unetkit[zarr]' "
                         "(or use .npy / .tif files)") from error
    return zarr
