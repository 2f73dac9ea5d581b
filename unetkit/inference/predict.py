"""Overlap-tile prediction (paper, Fig. 2): images of any size, tile by tile, mirrored at the borders.

``predict_tiled`` is a pure function of (image array-like, predictor callable, net geometry, tile
size, ...). It reads one tile region at a time and writes into a preallocated output, so a
memory-mapped or zarr image is never loaded whole.

- valid nets: the image is mirrored by the margin the net loses (92 px for the paper's net), output
  tiles are placed on the pooling grid, and the stitched result equals one whole-image pass.
- same nets: tiles overlap and are blended with a Gaussian window (the centre has most context).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from unetkit.config import ModelConfig, RunConfig
from unetkit.errors import InputError
from unetkit.inference import tiling
from unetkit.models import sizes

Predictor = Callable[[np.ndarray], np.ndarray]  # (B, C, *tile) float32 -> (B, K, *tile_out) float32


@dataclass(frozen=True)
class NetGeometry:
    """What tiling needs to know about a network: padding, lost margin, pooling alignment."""

    padding: str  # valid | same
    depth: int  # resolution levels
    margin: tuple[int, ...]  # px lost per side and axis (0 for same nets)
    align: tuple[int, ...]  # total pooling factor per axis (tile starts / sizes must respect it)
    pool_sizes: tuple[tuple[int, ...], ...] = ()  # per-level factors (empty = 2 everywhere)

    @classmethod
    def from_config(cls, config: ModelConfig, spatial_dims: int | None = None) -> NetGeometry:
        from unetkit.models.registry import model_spatial_dims

        dims = spatial_dims or model_spatial_dims(config)
        pools = config.pool_sizes or None
        margin = sizes.valid_margin(config.depth, dims, pools) if config.padding == "valid" else (0,) * dims
        return cls(
            padding=config.padding,
            depth=config.depth,
            margin=margin,
            align=sizes.same_divisor(config.depth, dims, pools),
            pool_sizes=tuple(tuple(p) for p in (config.pool_sizes or [])),
        )

    def axis_factors(self, axis: int) -> list[int]:
        pools = sizes.level_pool_sizes(self.depth, len(self.align), self.pool_sizes or None)
        return [p[axis] for p in pools]


def plan_tiles(spatial_shape: Sequence[int], geometry: NetGeometry, tile_size: int | Sequence[int],
               overlap: float = 0.25) -> tuple[tuple[int, ...], tuple[int, ...], list[list[int]]]:
    """Choose input tile, output tile and per-axis output starts for an image.

    Valid nets: the input tile is the largest valid size <= ``tile_size``, shrunk to the smallest one
    that covers a small image. Same nets: ``tile_size`` rounded down to the pooling factor, shrunk
    (rounded up to the factor) for small images.
    """
    dims = len(spatial_shape)
    requested = [int(tile_size)] * dims if np.isscalar(tile_size) else [int(t) for t in tile_size]
    tile_in, tile_out, starts = [], [], []
    for axis, (length, want) in enumerate(zip(spatial_shape, requested, strict=True)):
        align = geometry.align[axis]
        if geometry.padding == "valid":
            factors = geometry.axis_factors(axis)
            t = valid_tile_input(want, geometry, axis)
            t = min(t, sizes.valid_input_for_output(length, geometry.depth, factors))
            o = sizes.valid_output_size((t,), geometry.depth, [[f] for f in factors] or None)[0]
            axis_starts = tiling.valid_tile_starts(length, o, align)
        else:
            t = max(align, want // align * align)
            t = min(t, -(-length // align) * align)
            o = t
            axis_starts = tiling.overlapping_tile_starts(length, t, overlap)
        tile_in.append(t)
        tile_out.append(o)
        starts.append(axis_starts)
    return tuple(tile_in), tuple(tile_out), starts


def valid_tile_input(want: int, geometry: NetGeometry, axis: int) -> int:
    """The input tile a valid net takes for a request of ``want`` px along ``axis``: the largest valid size not
    above it, but never one whose output is narrower than the pooling grid (``align``). Why: tiles start on that
    grid, so a narrower output tile (4 px at the smallest valid input) would leave the pixels between unwritten."""
    factors = geometry.axis_factors(axis)
    below, above = sizes.nearest_valid_sizes(int(want), geometry.depth, factors)
    return max(below or above, sizes.valid_input_for_output(geometry.align[axis], geometry.depth, factors))


def tile_taken(geometry: NetGeometry, tile_size: int) -> list[int]:
    """The tile sizes (one per distinct axis alignment) a network takes for ``tile_size``: the nearest valid input
    of an unpadded net, else the multiple of its pooling below it."""
    if geometry.padding == "valid":
        return sorted({valid_tile_input(tile_size, geometry, axis) for axis in range(len(geometry.align))})
    return sorted({max(align, tile_size // align * align) for align in geometry.align})


def tiling_notes(geometry: NetGeometry, tile_size: int | None, overlap: float | None) -> list[str]:
    """Notes for tiling options a network cannot take as given: a tile size rounded to the sizes it accepts,
    an overlap on a valid net (whose output tiles meet edge to edge, their context read from the input)."""
    notes = []
    if tile_size is not None and tile_size >= 1:
        taken = tile_taken(geometry, int(tile_size))
        if geometry.padding == "valid":
            why = f"the valid input sizes of this unpadded net of depth {geometry.depth}"
        else:
            why = f"a multiple of {' / '.join(str(a) for a in sorted(set(geometry.align)))}, this net's pooling"
        if taken != [int(tile_size)]:
            notes.append(f"tile {tile_size} taken as {' / '.join(str(t) for t in taken)} ({why})")
    if overlap is not None and geometry.padding == "valid":
        notes.append(f"overlap {overlap} not used: the output tiles of an unpadded (valid) net meet edge to edge, "
                     "each reading its context from the image around it")
    return notes


def patch_sizes(config: RunConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input, output) patch sizes: valid nets round the patch to a valid input size.

    ``data.patch_shape`` gives one size per axis (e.g. [32, 96, 96] for stacks with few slices);
    otherwise ``data.patch_size`` is used on every axis.
    """
    from unetkit.models.registry import resolve_model_config

    model = resolve_model_config(config.model)
    dims = model.spatial_dims
    wants = list(config.data.patch_shape) or [config.data.patch_size] * dims
    if len(wants) != dims:
        raise InputError(f"data.patch_shape needs {dims} sizes for a {dims}D network, got {wants}")
    if model.padding == "valid":
        pools = sizes.level_pool_sizes(model.depth, dims, model.pool_sizes or None)
        inputs = []
        for axis, want in enumerate(wants):
            below, above = sizes.nearest_valid_sizes(int(want), model.depth, [p[axis] for p in pools])
            inputs.append(below or above)
        return tuple(inputs), sizes.valid_output_size(inputs, model.depth, model.pool_sizes or None)
    divisor = sizes.same_divisor(model.depth, dims, model.pool_sizes or None)
    inputs = tuple(max(d, int(want) // d * d) for d, want in zip(divisor, wants, strict=True))
    return inputs, inputs


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def predict_tiled(
    image,
    predictor: Predictor,
    geometry: NetGeometry,
    out_channels: int,
    tile_size: int | Sequence[int] = 256,
    overlap: float = 0.25,
    batch_size: int = 4,
    blend: str = "gaussian",
    output: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Predict a channels-first image (C, *S) of any size; returns (out_channels, *S) float32.

    ``output`` may be a preallocated (out_channels, *S) array (e.g. a memory map) to write into.
    Valid nets write each output pixel once (overlapping tile edges agree exactly); same nets
    accumulate window-weighted predictions and divide by the summed weights.
    """
    spatial = tuple(image.shape[1:])
    if output is None:
        output = np.zeros((out_channels, *spatial), dtype=np.float32)
    elif tuple(output.shape) != (out_channels, *spatial):
        raise ValueError(f"output has shape {output.shape}, expected {(out_channels, *spatial)}")
    tile_in, tile_out, starts = plan_tiles(spatial, geometry, tile_size, overlap)
    positions = list(itertools.product(*starts))
    window = None
    weight_sum = None
    if geometry.padding == "same":
        window = tiling.gaussian_window(tile_out) if blend == "gaussian" else tiling.constant_window(tile_out)
        weight_sum = np.zeros(spatial, dtype=np.float32)
        output[...] = 0
    bar = tqdm(total=len(positions), desc="tiles", unit="tile", disable=not progress, leave=False)
    for batch in _batches(iter(positions), batch_size):
        tiles = np.stack([
            tiling.read_region(image, [s - m for s, m in zip(start, geometry.margin, strict=True)], tile_in)
            for start in batch
        ])
        predicted = predictor(tiles)  # (B, K, *tile_out)
        for start, tile_pred in zip(batch, predicted, strict=True):
            # crop tiles hanging over the image end (small images, last same-net tile)
            extent = [min(o, length - s) for s, o, length in zip(start, tile_out, spatial, strict=True)]
            region = tuple(slice(s, s + e) for s, e in zip(start, extent, strict=True))
            local = tuple(slice(0, e) for e in extent)
            if window is None:
                output[(slice(None), *region)] = tile_pred[(slice(None), *local)]
            else:
                output[(slice(None), *region)] += tile_pred[(slice(None), *local)] * window[local]
                weight_sum[region] += window[local]
        bar.update(len(batch))
    bar.close()
    if weight_sum is not None:
        output /= weight_sum[None]
    return output


class TorchPredictor:
    """Wrap a network as a numpy tile predictor: batching to the device, activation, flip TTA.

    ``activation``: ``softmax`` (class probabilities), ``sigmoid`` or ``none`` (regression). ``amp``:
    bf16 autocast on CUDA; ``cpu_bf16``: bf16 autocast on a CPU (``inference.precision``).
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", activation: str = "softmax",
                 tta: bool = False, amp: bool = True, cpu_bf16: bool = False):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.activation = activation
        self.tta = tta
        self.amp = amp if self.device.type == "cuda" else cpu_bf16 and self.device.type == "cpu"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x)
        logits = logits.float()
        if self.activation == "softmax":
            return torch.softmax(logits, dim=1)
        if self.activation == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    @torch.inference_mode()
    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device)
        if not self.tta:
            return self._forward(x).cpu().numpy()
        spatial_axes = list(range(2, x.ndim))
        total = None
        flips = [list(c) for r in range(len(spatial_axes) + 1) for c in itertools.combinations(spatial_axes, r)]
        for axes in flips:  # every combination of flipped axes; flipping back keeps geometry exact
            y = self._forward(torch.flip(x, axes) if axes else x)
            y = torch.flip(y, axes) if axes else y
            total = y if total is None else total + y
        return (total / len(flips)).cpu().numpy()
