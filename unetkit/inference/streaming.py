"""Overlap-tile prediction of images larger than memory: read tile by tile, write band by band.

The image is read through a lazy array (``.npy`` / uncompressed TIFF by file offset, zarr, tiled
TIFF through zarr) and the probabilities go to a ``.npy``, tiled BigTIFF or zarr file. The tile plan,
Gaussian blending and the result are those of ``predict_tiled`` (same tiles, same weights, same sums),
but nothing of the image's size is held in memory:

- the image is cut into vertical *strips* of ``strip_width`` output columns; each strip walks its
  tile rows top to bottom and keeps one band of ``tile`` rows x strip width of blended sums;
- after a tile row, the rows above the next tile row's start receive no more tiles: they are divided
  by their weight sums and written out, and the band moves down;
- tiles straddling a strip boundary are predicted by both strips (each keeps its own columns): with
  strip width 4096 and tile 256 at overlap 0.25 that is ~5% more tiles.

Peak memory: model + batch of tiles + (out_channels + 1) x tile x (strip width + tile) float32 bands,
e.g. 3 x 256 x 4352 x 4 B = 13 MB for two output channels: flat in the image size.
"""

from __future__ import annotations

import itertools
import json
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from unetkit.data.axes import active_selection, merged, selection_of, use_selection
from unetkit.data.channels import match_channels
from unetkit.data.formats import format_of
from unetkit.data.io import check_normalized, check_not_empty, check_real, working_dtype
from unetkit.data.ome import image_stem, lazy_source, pixel_size
from unetkit.data.regions import read_region
from unetkit.errors import InputError
from unetkit.inference import ome_writers, tiling
from unetkit.inference.arrays import (
    ChannelsFirst,
    RawArray,
    TiffPlane,
    TiledTiff,
    channel_layout,
    create_npy,
    is_zarr_path,
    open_npy,
    require_zarr,
)
from unetkit.inference.predict import Predictor
from unetkit.inference.tile_plan import NetGeometry, plan_tiles
from unetkit.safety.finite import apply_nan_policy
from unetkit.safety.partial import PartialOutput

if TYPE_CHECKING:
    from unetkit.inference.predictor import Predictor as ModelPredictor

OUT_DTYPES = ("float32", "float16", "uint8")  # uint8: probability x 255, rounded (4x smaller files)
FULL_READ_PIXELS = 16_000_000  # images up to this size get exact percentiles from every pixel


@dataclass
class StreamStats:
    """What a streaming prediction did: size, speed, tiles (with strip duplicates) and peak memory."""

    shape: tuple[int, ...]  # (out_channels, *S) written
    seconds: float
    megapixels: float
    megapixels_per_s: float
    tiles: int  # tiles of the plan
    tiles_predicted: int  # tiles run through the network (strip-boundary tiles count twice)
    peak_rss_mb: float  # peak resident memory of this process so far (ru_maxrss)
    scale: int = 1  # 2: predicted at twice the size, an image of small objects (``small_objects_lazy``)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status (``ru_maxrss`` would also count the parent's memory at fork,
    which survives ``exec``); elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------------
# sources


class CheckedReads:
    """A lazy source whose failed reads name the file: a truncated or corrupt strip or tile of a large image comes up
    only when it is read, deep in the prediction, as tifffile's or a codec's own error."""

    def __init__(self, source, path: Path):
        self.source, self.path = source, path

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def __getitem__(self, key):
        import tifffile

        try:
            return self.source[key]
        except (OSError, ValueError, RuntimeError, tifffile.TiffFileError) as error:
            detail = " ".join(str(error).split())[:160]
            raise InputError(f"{self.path}: cannot read its pixels ({type(error).__name__}: {detail}); the file may be "
                             "truncated or corrupt: copy or export it again") from error


def open_source(path: str | Path, spatial_dims: int | None = 2, channels: int | None = None):
    """``_open_source`` with reads that name the file when it cannot be read (``CheckedReads``)."""
    return CheckedReads(_open_source(path, spatial_dims, channels), Path(path))


def _open_source(path: str | Path, spatial_dims: int | None = 2, channels: int | None = None):
    """A lazy channels-first (C, *S) array over an image file: .npy, TIFF or .zarr, never read whole.

    Uncompressed contiguous TIFFs and .npy files are read by file offset; tiled or compressed TIFFs
    go through tifffile's zarr store (needs the ``zarr`` extra). ``spatial_dims=None``: the file is
    channels-first already (e.g. a probability map written by ``predict_large``). ``channels``: the model's, which
    tells a plain array's trailing channel axis from an image's last spatial one (``channel_layout``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if (view := lazy_source(path, spatial_dims)) is not None:  # OME-Zarr / OME-TIFF / ImageJ: axes, selection
        return view
    kind = format_of(path)
    if kind == "npy":
        base = open_npy(path)
    elif kind == "tiff":
        base = _open_tiff(path, spatial_dims)
    elif kind == "zarr":
        zarr = require_zarr()
        try:
            base = zarr.open_array(str(path), mode="r")
        except Exception as error:  # noqa: BLE001 - zarr's errors differ by version: an empty or foreign folder
            raise InputError(f"{path}: no zarr array here ({type(error).__name__}); give a .zarr array, an OME-Zarr "
                             "image, or another format (.npy, .tif)") from error
    else:
        raise InputError(f"{path}: large-image prediction reads .npy, .tif/.tiff or .zarr; convert the image "
                         "to one of them (e.g. np.save('image.npy', array))")
    check_not_empty(tuple(base.shape), path)
    if spatial_dims is None:
        return base
    if not active_selection().empty:  # --channel/--axes/--time/--plane on a plain array: applied, never ignored
        return _selected_plain(base, path, kind, spatial_dims, channels)
    layout = channel_layout(tuple(base.shape), spatial_dims, channels)
    return base if layout == "first" else ChannelsFirst(base, layout)


def _selected_plain(base: Any, path: Path, kind: str, spatial_dims: int, channels: int | None = None):
    """The active selection applied to a .npy or plain .zarr array (plain TIFFs get theirs in ``lazy_source``), whose
    axes are guessed as
    ``open_source`` reads it (``channel_layout``: YX, CYX or YXC in 2D) unless ``--axes`` names them."""
    from unetkit.data.ome import ImageInfo, SelectedSource

    shape = tuple(int(n) for n in base.shape)
    spatial = "ZYX"[-spatial_dims:]
    selection = active_selection()
    if selection.axes:
        axes = selection.axes
    else:
        layout = channel_layout(shape, spatial_dims, channels)
        axes = {"none": spatial, "first": "C" + spatial, "last": spatial + "C"}[layout]
    return SelectedSource(base, ImageInfo(kind, axes, shape), selection, spatial_dims, str(path))


def _open_tiff(path: Path, spatial_dims: int | None = 2):
    """A plain TIFF's first series, lazily; a stack of more gray pages than an image has channels, given where a 2D
    image is read, is refused as ``predict`` refuses it (a 6-page z-stack was read as "6 channels")."""
    import tifffile

    from unetkit.data.io import MAX_PAGE_CHANNELS, page_stack_message

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = series.pages[0]
        offset = series.dataoffset  # set when the whole series is stored contiguous and uncompressed
        shape, dtype, axes = series.shape, series.dtype, series.axes
        tiled = page.is_tiled and page.compression == 1
    if spatial_dims == 2 and len(shape) == 3 and axes[0] in "QIZT" and shape[0] > MAX_PAGE_CHANNELS:
        raise InputError(page_stack_message(path, shape, axes))
    if offset is not None:
        return RawArray(path, offset, shape, dtype)
    if tiled and len(shape) in (2, 3):
        try:
            return TiledTiff(path, writable=False)
        except InputError:
            pass
    zarr = require_zarr()
    return zarr.open_array(tifffile.imread(path, aszarr=True, level=0), mode="r")  # a pyramid's full size


def estimate_percentiles(source, low: float, high: float, block: int = 256,
                         blocks_per_axis: int = 8, nan_policy: str = "error") -> tuple[float, float]:
    """The ``low``/``high`` percentiles of a channels-first image, over all its channels.

    Images up to 16 MP are read whole (exactly ``normalize_percentile``); larger ones are sampled in
    ``blocks_per_axis`` x ``blocks_per_axis`` evenly spaced blocks of ``block`` px (8 x 8 x 256^2 = 4.2 MP).
    NaN/Inf pixels count as the zeros they become under ``nan_policy`` "zero" (as an image in memory is
    normalised after they are set to 0); otherwise they are left out.
    """
    spatial = tuple(source.shape[1:])
    work = working_dtype(source.dtype)  # as normalize_percentile computes them
    if math.prod(spatial) <= FULL_READ_PIXELS:
        values = np.asarray(source[(slice(None), *(slice(0, n) for n in spatial))], dtype=work)
    else:
        samples = []
        axis_starts = [np.unique(np.linspace(0, max(0, n - block), blocks_per_axis).astype(int)) for n in spatial]
        for start in itertools.product(*axis_starts):
            box = tuple(slice(s, min(s + block, n)) for s, n in zip(start, spatial, strict=True))
            samples.append(np.asarray(source[(slice(None), *box)], dtype=work).ravel())
        values = np.concatenate(samples)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0) if nan_policy == "zero" else values[finite]
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    return float(lo), float(hi)


class Normalized:
    """Lazy normalised view: reads of a source come back float32 ``(x - lo) / (hi - lo)``, channels matched.

    Only ``view[(slice(None), *box)]`` reads are supported (what ``data.regions.read_region`` does).
    """

    def __init__(self, source, lo: float, hi: float, channels: int, name: str = "image", nan_policy: str = "error",
                 colour: bool | None = None):
        self.source = source
        self.nan_policy = nan_policy  # applied per block read: "nearest" fills from within the tile read
        # the arithmetic of ``normalize_percentile``: (x - lo) / (hi - lo) in its working dtype, then float32, so
        # that an image read whole gives bit for bit the input that ``unetkit predict`` gives the network
        self.work = working_dtype(source.dtype)
        self.lo = self.work.type(lo)
        self.span = self.work.type(hi - lo) if hi > lo else None
        self.channels = channels
        self.name = name
        self.shape = (channels, *source.shape[1:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)
        match_channels(np.zeros((source.shape[0], 1), np.float32), channels, name, colour)  # fail early on mismatch

    def __getitem__(self, key) -> np.ndarray:
        block = np.asarray(self.source[(slice(None), *key[1:])], dtype=self.work)
        block = apply_nan_policy(block, self.name, self.nan_policy, quiet=True)
        if self.span is None:
            return match_channels(np.zeros(block.shape, np.float32), self.channels)
        with np.errstate(over="ignore"):  # values past float32 are named by check_normalized
            normalized = ((block - self.lo) / self.span).astype(np.float32, copy=False)
        return match_channels(check_normalized(normalized, block, self.name), self.channels)  # checked in __init__


# --------------------------------------------------------------------------------------------------
# sinks


def check_sink(path: str | Path, shape: Sequence[int], dtype: str = "float32") -> None:
    """Refuse an output ``create_sink`` (or an OME writer) would refuse, before anything is written for it (its
    progress record)."""
    path = Path(path)
    if dtype not in OUT_DTYPES:
        raise InputError(f"output dtype must be one of {', '.join(OUT_DTYPES)}; got '{dtype}'")
    if format_of(path) not in ("npy", "tiff", "zarr"):
        raise InputError(f"{path}: output must end in .npy, .tif/.tiff or .zarr")
    if format_of(path) == "tiff" and len(shape) != 3:
        kind = "pyramidal OME-TIFF" if ome_writers.is_ome_tiff_output(path) else "tiled TIFF"
        raise InputError(f"{path}: {kind} output is for 2D images; write 3D predictions to .npy or .zarr")


def create_sink(path: str | Path, shape: Sequence[int], dtype: str = "float32",
                spacing: Sequence[float] | None = None):
    """A new on-disk array to write predictions into, chosen by suffix: .npy, .tif/.tiff (tiled BigTIFF,
    2D only, with the pixel size ``spacing`` in its resolution tags) or .zarr (chunks of 1 x 256 x 256)."""
    path = Path(path)
    check_sink(path, shape, dtype)
    kind = format_of(path)
    if kind == "npy":
        return create_npy(path, shape, dtype)
    if kind == "tiff":
        return TiledTiff.create(path, shape, dtype, spacing=spacing)
    if kind == "zarr":
        zarr = require_zarr()
        chunks = (1, *([256] * (len(shape) - 1)))
        return zarr.create_array(str(path), shape=tuple(shape), chunks=chunks, dtype=dtype, overwrite=True)
    raise InputError(f"{path}: output must end in .npy, .tif/.tiff or .zarr")


def check_label_output(path: str | Path, spatial_dims: int, option: str | None = "--instances") -> Path:
    """Refuse a label output ``create_label_sink`` cannot write, before any prediction: .npy, .zarr, or a
    tiled TIFF for 2D images. ``option``: the command-line option the message names (None: the path alone)."""
    path = Path(path)
    kind = format_of(path)
    if kind in ("npy", "zarr") or (kind == "tiff" and spatial_dims == 2):
        return path
    ends = ".npy, .zarr or .tif" if spatial_dims == 2 else ".npy or .zarr (TIFF labels are for 2D images)"
    named = f"{option} {path}" if option else str(path)
    raise InputError(f"{named}: instance labels of large images are written to {ends}; give such a path")


def create_label_sink(path: str | Path, shape: Sequence[int], spacing: Sequence[float] | None = None):
    """A new uint32 label array (*S) on disk: .npy, .zarr (chunks of 256 per axis) or, for 2D, a tiled
    BigTIFF (256 px tiles, read by Fiji and QuPath; ``spacing`` in its resolution tags)."""
    path = Path(path)
    check_label_output(path, len(shape), None)
    kind = format_of(path)
    if kind == "npy":
        return create_npy(path, shape, np.uint32)
    if kind == "tiff":
        return TiffPlane(TiledTiff.create(path, (1, *shape), np.uint32, spacing=spacing))
    zarr = require_zarr()
    return zarr.create_array(str(path), shape=tuple(shape), chunks=(256,) * len(shape), dtype="uint32",
                             overwrite=True, fill_value=0)


FLOAT16_SMALLEST = float(np.float16(2**-24))  # the smallest float16 above 0 (subnormal): below it, 0


def _convert(block: np.ndarray, dtype: str) -> np.ndarray:
    """A block of outputs in the file's dtype; float16 that cannot hold them (regression values past 65504, or a
    block whose values are all below 6e-8 but not 0) is refused instead of written as inf or 0."""
    if dtype == "uint8":
        return np.clip(np.rint(block * 255.0), 0, 255).astype(np.uint8)
    if dtype == "float16":
        largest = float(np.abs(block).max(initial=0.0))
        if largest > float(np.finfo(np.float16).max) or 0 < largest < FLOAT16_SMALLEST:
            raise InputError(f"--dtype float16 holds 6e-08..65504; these outputs reach {largest:.3g}, which it "
                             "would write as inf or 0: use --dtype float32")
    return block.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------------
# the streaming loop


def strip_bounds(width: int, strip_width: int) -> list[tuple[int, int]]:
    """Owned column ranges of the strips, e.g. width 10000, strip 4096 -> (0, 4096), (4096, 8192), (8192, 10000)."""
    if strip_width <= 0 or strip_width >= width:
        return [(0, width)]
    return [(a, min(a + strip_width, width)) for a in range(0, width, strip_width)]


class _Band:
    """Blended sums of one strip over ``rows`` output rows starting at ``top`` (the band moves down)."""

    def __init__(self, channels: int, rows: int, middle: tuple[int, ...], cols: tuple[int, int], blended: bool):
        width = cols[1] - cols[0]
        self.cols = cols
        self.top = 0
        self.sums = np.zeros((channels, rows, *middle, width), np.float32)  # (K, tile rows, *mid, strip)
        self.weights = np.zeros((rows, *middle, width), np.float32) if blended else None

    def add(self, start: Sequence[int], prediction: np.ndarray, window: np.ndarray | None) -> None:
        """Add a tile's prediction (K, *extent) whose top-left output pixel is ``start``."""
        extent = prediction.shape[1:]
        box = (slice(start[0] - self.top, start[0] - self.top + extent[0]),
               *(slice(s, s + e) for s, e in zip(start[1:-1], extent[1:-1], strict=True)),
               slice(start[-1] - self.cols[0], start[-1] - self.cols[0] + extent[-1]))
        if window is None:
            self.sums[(slice(None), *box)] = prediction
        else:
            self.sums[(slice(None), *box)] += prediction * window
            self.weights[box] += window

    def take(self, stop: int, own: tuple[int, int]) -> np.ndarray:
        """Finished rows ``top..stop`` of the owned columns (K, rows, *mid, cols); the band moves down."""
        n = stop - self.top
        cols = slice(own[0] - self.cols[0], own[1] - self.cols[0])
        done = self.sums[:, :n, ..., cols]
        if self.weights is not None:
            done = done / self.weights[None, :n, ..., cols]
        else:
            done = done.copy()
        for array in (self.sums, self.weights):
            if array is None:
                continue
            axis = 1 if array is self.sums else 0
            moved = np.moveaxis(array, axis, 0)  # view with the row axis first
            moved[:-n or None] = moved[n:].copy() if n < moved.shape[0] else moved[:0]
            moved[moved.shape[0] - n:] = 0
        self.top = stop
        return done


def predict_streaming(source: Any, sink: Any, predictor: Predictor, geometry: NetGeometry, out_channels: int,
                      tile_size: int | Sequence[int] = 256, overlap: float = 0.25, batch_size: int = 4,
                      blend: str = "gaussian", strip_width: int = 4096, out_dtype: str = "float32",
                      progress: bool = False, done_strips: Sequence[int] = (),
                      on_strip: Callable[[int], None] | None = None) -> StreamStats:
    """Predict a lazy channels-first image (C, *S) into ``sink`` (out_channels, *S), band by band.

    ``source`` returns float32 network input for ``source[(slice(None), *box)]`` (see ``Normalized``);
    ``sink`` takes ``sink[(slice(None), *box)] = block``. Results equal ``predict_tiled`` on the same
    image to float rounding. Needs 2 or 3 spatial axes (bands walk the first, strips split the last).
    Strips in ``done_strips`` are skipped (resuming); ``on_strip(index)`` is called once a strip is written.
    """
    started = time.perf_counter()
    spatial = tuple(int(n) for n in source.shape[1:])
    if len(spatial) not in (2, 3):
        raise InputError(f"streaming prediction needs a 2D or 3D image; got spatial shape {spatial}")
    if tuple(sink.shape) != (out_channels, *spatial):
        raise InputError(f"output has shape {tuple(sink.shape)}, expected {(out_channels, *spatial)}")
    tile_in, tile_out, starts = plan_tiles(spatial, geometry, tile_size, overlap)
    window = None
    if geometry.padding == "same":
        window = tiling.gaussian_window(tile_out) if blend == "gaussian" else tiling.constant_window(tile_out)
    width = spatial[-1]
    strips = []
    for own in strip_bounds(width, strip_width):
        columns = [c for c in starts[-1] if c < own[1] and min(c + tile_out[-1], width) > own[0]]
        strips.append((own, columns))
    tiles_total = math.prod(len(s) for s in starts)
    per_column = math.prod(len(s) for s in starts[:-1])
    predicted = sum(len(columns) for _, columns in strips) * per_column
    bar = tqdm(total=predicted, desc="tiles", unit="tile", disable=not progress, leave=False)
    rows = min(tile_out[0], spatial[0])
    for index, (own, columns) in enumerate(strips):
        if index in done_strips:
            bar.update(len(columns) * per_column)
            continue
        cols = (columns[0], min(columns[-1] + tile_out[-1], width))
        band = _Band(out_channels, rows, spatial[1:-1], cols, window is not None)
        positions = itertools.product(starts[0], *starts[1:-1], columns)
        row = starts[0][0]
        while batch := list(itertools.islice(positions, batch_size)):
            tiles = np.stack([
                read_region(source, [s - m for s, m in zip(start, geometry.margin, strict=True)], tile_in)
                for start in batch
            ])
            outputs = predictor(tiles)  # (B, K, *tile_out)
            for start, prediction in zip(batch, outputs, strict=True):
                if start[0] != row:  # first tile of a new tile row: rows above it are final
                    top = band.top
                    _write(sink, band.take(start[0], own), top, own, out_dtype)
                    row = start[0]
                extent = tuple(min(o, n - s) for s, o, n in zip(start, tile_out, spatial, strict=True))
                local = tuple(slice(0, e) for e in extent)
                band.add(start, prediction[(slice(None), *local)], None if window is None else window[local])
            bar.update(len(batch))
        top = band.top
        _write(sink, band.take(spatial[0], own), top, own, out_dtype)
        if on_strip is not None:
            on_strip(index)
    bar.close()
    seconds = time.perf_counter() - started
    megapixels = math.prod(spatial) / 1e6
    return StreamStats((out_channels, *spatial), seconds, megapixels, megapixels / max(seconds, 1e-9),
                       tiles_total, predicted, peak_rss_mb())


def _write(sink, block: np.ndarray, top: int, own: tuple[int, int], out_dtype: str) -> None:
    if block.shape[1] == 0:
        return
    box = (slice(top, top + block.shape[1]), *(slice(0, n) for n in block.shape[2:-1]), slice(*own))
    sink[(slice(None), *box)] = _convert(block, out_dtype)


# --------------------------------------------------------------------------------------------------
# from files


def predict_large(model: str | Path, image: str | Path, output: str | Path, engine: str = "torch",
                  device: str = "auto", tile_size: int | None = None, overlap: float | None = None,
                  batch_size: int | None = None, tta: bool | None = None, strip_width: int = 4096,
                  out_dtype: str = "float32", progress: bool = True, resume: bool = False,
                  nan_policy: str | None = None, selection: dict | None = None) -> StreamStats:
    """Predict one image file larger than memory into ``output`` (.npy, .tif, .zarr, .ome.zarr, .ome.tif)
    with a checkpoint (or an exported model, see ``engine``); writes what ``unetkit predict`` computes:
    softmax probabilities (K, *S), or for a regression model the values in the target's units (C', *S).
    ``selection``: channels/axes/time/plane of a microscopy input (None values keep the checkpoint's).

    The file is written as ``<stem>.unfinished<suffix>`` and renamed when complete (``safety.partial``);
    ``resume`` continues an interrupted run strip by strip."""
    from unetkit.inference.predictor import Predictor

    predictor = Predictor.load(model, device, engine, selection=selection, tile_size=tile_size, overlap=overlap,
                               batch_size=batch_size, tta=tta, nan_policy=nan_policy)
    return stream_file(predictor, image, output, strip_width, out_dtype, progress, resume=resume,
                       origin=model_origin(model, engine))


def model_origin(model: str | Path, engine: str) -> dict[str, str]:
    """The model part of a large prediction's signature: its file (a packaged name resolved, so a resume from
    another folder finds it) and its sha256 (other weights copied over the same file: refused)."""
    from unetkit.checkpoint import resolve_path
    from unetkit.pretrained import sha256_of

    path = resolve_path(model)
    return {"model": str(Path(path).resolve()), "sha256": sha256_of(path), "engine": engine}


def stream_file(predictor: ModelPredictor, image: str | Path, output: str | Path, strip_width: int = 4096,
                out_dtype: str = "float32", progress: bool = True, resume: bool = False,
                origin: dict | None = None) -> StreamStats:
    """``predict_streaming`` of an image file into an output file with a ``Predictor``'s settings.

    Microscopy inputs are read with the predictor's channel/time/plane selection (then any set by
    ``use_selection``); ``.ome.zarr`` / ``.ome.tif`` outputs get a pyramid and the input's pixel size.
    The output is written as ``<stem>.unfinished<suffix>`` and renamed when complete
    (``safety.partial``); ``resume`` continues an interrupted run strip by strip when its settings
    (``origin``: what the predictor was loaded from, plus image, shape, tiles, percentiles and the
    channel/time/plane selection) match."""
    config = predictor.config
    if out_dtype == "uint8" and predictor.task.activation != "softmax":
        raise InputError(f"--dtype uint8 stores probabilities x 255; a {predictor.task.name} model outputs "
                         "other values: use --dtype float32 or float16")
    selection = merged(selection_of(config.data), active_selection())  # checkpoint's, then the caller's
    with use_selection(selection):
        source = open_source(image, predictor.spatial_dims, predictor.config.model.in_channels)
    check_real(source.dtype, image)  # before any pixel is read
    lo, hi = estimate_percentiles(source, config.data.normalize_low, config.data.normalize_high,
                                  nan_policy=config.data.nan_policy)
    normalized = Normalized(source, lo, hi, config.model.in_channels, str(image), config.data.nan_policy)
    out_channels = config.model.out_channels
    inference = config.inference
    tile = list(inference.tile_shape) or inference.tile_size
    shape = (out_channels, *source.shape[1:])
    check_sink(output, shape, out_dtype)  # before its progress record is written
    partial = PartialOutput(output)
    signature = {**(origin or {}), "image": str(Path(image).resolve()), "shape": list(shape), "dtype": out_dtype,
                 "tile": tile, "overlap": inference.overlap, "tta": inference.tta, "strip": strip_width,
                 "percentiles": [lo, hi], "nan_policy": normalized.nan_policy,
                 "precision": config.inference.precision,  # bf16 strips beside fp32 ones: refused
                 "selection": asdict(selection)}  # channels/time/plane: another --channel never resumes
    deciding = time.perf_counter()
    scale, first = (resumed_scale(partial, signature) if resume else None), None
    if scale is None:  # the small-object rule's decision, unless a resumed run already made it
        scale, first = small_object_scale(predictor, normalized, progress)
    deciding = time.perf_counter() - deciding  # the first answer that sizes the objects, counted in the stats
    signature["scale"] = scale
    if partial.start(signature, resume):
        sink = open_sink(partial.work, shape)
    else:
        sink = ome_writers.open_output(partial.work, shape, out_dtype) or create_sink(
            partial.work, shape, out_dtype, spacing=pixel_size(image, predictor.spatial_dims))
    refused = False
    try:
        if scale == 1 and first is not None:  # the whole first answer is this road's output: write it
            stats = _write_first_answer(first, sink, predictor, tile, out_dtype)
        elif scale == 1:
            stats = predict_streaming(
                normalized, sink, predictor.tile_function(), predictor.geometry, out_channels, tile,
                inference.overlap, inference.batch_size, inference.blend, strip_width, out_dtype, progress,
                done_strips=partial.done, on_strip=partial.mark_done)
        else:
            stats = _predict_enlarged(predictor, normalized, sink, scale, tile, strip_width, out_dtype, progress,
                                      partial)
    except InputError:  # refused midway (values float16 cannot hold, non-finite pixels): nothing to resume
        refused = True
        raise
    finally:
        if hasattr(sink, "close"):
            sink.close()
        if refused:
            partial.discard()
    ome_writers.finish_output(partial.work, pixel_size(image, predictor.spatial_dims),  # OME: pyramid + scale
                              name=image_stem(output))
    partial.finish()
    seconds = stats.seconds + deciding
    return replace(stats, seconds=seconds, megapixels_per_s=stats.megapixels / max(seconds, 1e-9))


def resumed_scale(partial: PartialOutput, signature: dict) -> int | None:
    """The scale that an unfinished output started with the same ``signature`` (less its scale) was predicted at,
    so that ``--resume`` does not make the small-object decision again (up to 4.2 MP of prediction); None
    where there is no such output."""
    from unetkit.inference.small_objects import FACTOR

    stored = partial.stored_signature()
    if not stored or stored.get("scale") not in (1, FACTOR):
        return None
    same = {key: value for key, value in stored.items() if key != "scale"} == json.loads(json.dumps(signature))
    return int(stored["scale"]) if same else None


def small_object_scale(predictor, normalized, progress: bool = False) -> tuple[int, np.ndarray | None]:
    """(2 where an instances model's small-object rule takes this lazy image at twice its size, else 1;
    the first answer when the decision predicted the whole image, else None).

    An image small enough to decide on whole (``WHOLE_DECISION_PIXELS``) has its 1x output in hand after
    deciding: returned, it is written as it is instead of predicted a second time."""
    from unetkit.inference.small_objects import FACTOR, rule_applies, takes_enlarging
    from unetkit.inference.small_objects_lazy import WHOLE_DECISION_PIXELS, sampled_median_area

    config = predictor.config
    if not rule_applies(config) or len(normalized.shape) != 3:
        return 1, None
    spatial = tuple(normalized.shape[1:])
    whole = math.prod(spatial) <= WHOLE_DECISION_PIXELS
    answers: list[np.ndarray] = []

    def predict(image: np.ndarray) -> np.ndarray:
        output = predictor.single_pass(image, progress=progress and whole)
        if whole:
            answers.append(output)
        return output

    area = sampled_median_area(predict, normalized, config, predictor.task.instance_kind(config))
    first = answers[0] if answers and answers[0].shape[1:] == spatial else None
    return (FACTOR, None) if takes_enlarging(area, config) else (1, first)


def _write_first_answer(first: np.ndarray, sink, predictor, tile, out_dtype: str) -> StreamStats:
    """Write the decision's whole 1x output into ``sink``; the stats of the tiles that made it."""
    started = time.perf_counter()
    spatial = tuple(int(n) for n in first.shape[1:])
    sink[(slice(None), *(slice(0, n) for n in spatial))] = _convert(first, out_dtype)
    starts = plan_tiles(spatial, predictor.geometry, tile, predictor.config.inference.overlap)[2]
    tiles = math.prod(len(s) for s in starts)
    seconds = time.perf_counter() - started
    megapixels = math.prod(spatial) / 1e6
    return StreamStats(tuple(first.shape), seconds, megapixels, megapixels / max(seconds, 1e-9), tiles, tiles,
                       peak_rss_mb())


def _predict_enlarged(predictor, normalized, sink, scale: int, tile, strip_width: int, out_dtype: str,
                      progress: bool, partial: PartialOutput) -> StreamStats:
    """``predict_streaming`` of the image enlarged ``scale`` times, written back at its own size (2x2 means)."""
    from unetkit.inference.small_objects_lazy import Enlarged, ShrinkingSink, even_strip

    inference = predictor.config.inference
    big = ShrinkingSink(sink, scale, lambda block: _convert(block, out_dtype))
    stats = predict_streaming(
        Enlarged(normalized, scale), big, predictor.tile_function(), predictor.geometry, big.shape[0], tile,
        inference.overlap, inference.batch_size, inference.blend, even_strip(strip_width, scale), "float32",
        progress, done_strips=partial.done, on_strip=partial.mark_done)
    big.finish()
    megapixels = math.prod(sink.shape[1:]) / 1e6
    return replace(stats, shape=tuple(sink.shape), megapixels=megapixels,
                   megapixels_per_s=megapixels / max(stats.seconds, 1e-9), scale=scale)


def open_sink(path: str | Path, shape: Sequence[int]):
    """An existing output of ``create_sink`` / ``ome_writers.open_output`` (an unfinished one being
    resumed), open for box writes."""
    path = Path(path)
    suffix = path.suffix.lower()
    sink = ome_writers.reopen_output(path)  # None unless an OME output
    if sink is None and suffix == ".npy":
        sink = open_npy(path, writable=True)
    elif sink is None and suffix in (".tif", ".tiff"):
        sink = TiledTiff(path)
    elif sink is None and is_zarr_path(path):
        sink = require_zarr().open_array(str(path), mode="r+")
    elif sink is None:
        raise InputError(f"{path}: output must end in .npy, .tif/.tiff or .zarr")
    if tuple(sink.shape) != tuple(shape):
        raise InputError(f"{path}: has shape {tuple(sink.shape)}, expected {tuple(shape)}; run without --resume")
    return sink
