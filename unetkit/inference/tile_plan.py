"""Which tiles a network takes: its geometry (padding, lost margin, pooling grid), the tile and patch sizes it
accepts, and where the tiles of an image start.

Worked numbers: the paper's valid net (depth 5) asked for tile 572 takes 572 in and gives 388 out; a same
net of depth 5 asked for 250 takes 240 (a multiple of its pooling, 16), and a 100 px image shrinks it to 112.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unetkit.config import ModelConfig, RunConfig
from unetkit.errors import InputError
from unetkit.inference import tiling
from unetkit.models import sizes


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
