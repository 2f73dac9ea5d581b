"""Size arithmetic of U-Nets: valid input sizes, output sizes, margins, divisibility, receptive field.

Worked numbers for the paper's net (depth 5, 2x2 pooling, valid 3x3 convs), one axis:
contracting 572 -conv,conv-> 568 -pool-> 284 -> 280 -> 140 -> 136 -> 68 -> 64 -> 32 -> bottom 28;
expanding 28 -up-> 56 -> 52 -> 104 -> 100 -> 200 -> 196 -> 392 -> 388. The margin lost per side is
(572 - 388) / 2 = 92 px, the same for every valid input size, and valid inputs are 16 k + 12.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from unetkit.errors import InputError

CONV_LOSS = 4  # two valid 3x3 convs trim 2 x 2 px per axis per level


def level_pool_sizes(
    depth: int, spatial_dims: int, pool_sizes: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, ...]]:
    """Per-level pooling factors as ``depth - 1`` tuples of ``spatial_dims`` ints (default all 2)."""
    if not pool_sizes:
        return [(2,) * spatial_dims for _ in range(depth - 1)]
    pools = [tuple(int(f) for f in p) for p in pool_sizes]
    if len(pools) != depth - 1 or any(len(p) != spatial_dims for p in pools):
        raise InputError(
            f"pool_sizes needs {depth - 1} entries of {spatial_dims} factors for depth {depth}; got {pool_sizes}"
        )
    if any(f < 1 for p in pools for f in p):
        raise InputError(f"pool factors must be >= 1; got {pool_sizes}")
    return pools


def _axis_factors(pools: list[tuple[int, ...]], axis: int) -> list[int]:
    return [p[axis] for p in pools]


def _valid_output_1d(size: int, factors: list[int]) -> int | None:
    """Output size along one axis of a valid net, or None when ``size`` is not a valid input."""
    for f in factors:
        size -= CONV_LOSS
        if size <= 0 or size % f:
            return None
        size //= f
    size -= CONV_LOSS
    if size <= 0:
        return None
    for f in reversed(factors):
        size = size * f - CONV_LOSS
        if size <= 0:
            return None
    return size


def _nearest_valid_1d(size: int, factors: list[int]) -> tuple[int | None, int]:
    """(largest valid input <= size or None, smallest valid input >= size) along one axis."""
    below = next((s for s in range(size, 0, -1) if _valid_output_1d(s, factors)), None)
    above = next(s for s in range(max(size, 1), size + 10 * math.prod(factors) * 8 + 200)
                 if _valid_output_1d(s, factors))
    return below, above


def valid_output_size(input_size: Sequence[int], depth: int, pool_sizes=None) -> tuple[int, ...]:
    """Output size of a valid (unpadded) U-Net for ``input_size``; a clear error with the nearest
    valid sizes when an axis cannot be pooled evenly."""
    pools = level_pool_sizes(depth, len(input_size), pool_sizes)
    out = []
    for axis, size in enumerate(input_size):
        result = _valid_output_1d(int(size), _axis_factors(pools, axis))
        if result is None:
            below, above = _nearest_valid_1d(int(size), _axis_factors(pools, axis))
            hint = f"{below} or {above}" if below else f"{above}"
            raise InputError(
                f"input size {size} (axis {axis}) is not valid for an unpadded U-Net of depth {depth}: "
                f"every level must pool evenly; use {hint}"
            )
        out.append(result)
    return tuple(out)


def nearest_valid_sizes(size: int, depth: int, factors: Sequence[int] | None = None) -> tuple[int | None, int]:
    """The valid input sizes just below (or None) and just above ``size`` along one axis."""
    return _nearest_valid_1d(int(size), list(factors) if factors else [2] * (depth - 1))


def valid_margin(depth: int, spatial_dims: int = 2, pool_sizes=None) -> tuple[int, ...]:
    """Pixels lost per side by a valid net (92 for the paper's net); independent of the input size."""
    pools = level_pool_sizes(depth, spatial_dims, pool_sizes)
    margins = []
    for axis in range(spatial_dims):
        factors = _axis_factors(pools, axis)
        size = _nearest_valid_1d(1, factors)[1]
        margins.append((size - _valid_output_1d(size, factors)) // 2)
    return tuple(margins)


def valid_input_for_output(min_output: int, depth: int, factors: Sequence[int] | None = None) -> int:
    """Smallest valid input size whose output is at least ``min_output`` along one axis."""
    factors = list(factors) if factors else [2] * (depth - 1)
    size = _nearest_valid_1d(1, factors)[1]
    step = math.prod(factors)  # valid inputs repeat every prod(factors) px
    while _valid_output_1d(size, factors) < min_output:
        size += step
    return size


def same_divisor(depth: int, spatial_dims: int = 2, pool_sizes=None) -> tuple[int, ...]:
    """Divisibility a same-padded net needs per axis (16 for depth 5 with 2x2 pooling)."""
    pools = level_pool_sizes(depth, spatial_dims, pool_sizes)
    return tuple(math.prod(_axis_factors(pools, axis)) for axis in range(spatial_dims))


def output_size(input_size: Sequence[int], depth: int, padding: str, pool_sizes=None) -> tuple[int, ...]:
    """Output size for either padding; same nets require divisibility (error names the fix)."""
    if padding == "valid":
        return valid_output_size(input_size, depth, pool_sizes)
    divisor = same_divisor(depth, len(input_size), pool_sizes)
    for axis, (size, d) in enumerate(zip(input_size, divisor, strict=True)):
        if size % d:
            raise InputError(
                f"input size {size} (axis {axis}) must be divisible by {d} for a same-padded U-Net of "
                f"depth {depth}; use {size - size % d} or {size + d - size % d}"
            )
    return tuple(int(s) for s in input_size)


def receptive_field(depth: int, padding: str, spatial_dims: int = 2, pool_sizes=None,
                    upsample: str = "transpose") -> tuple[int, ...]:
    """Theoretical receptive field per axis: the widest input span one output pixel depends on.

    Computed exactly by walking dependency intervals back through every layer (convs widen by 2,
    pools multiply, 2x2 up-convs map an output pixel to one input pixel, skips add a second path),
    maximised over the pooling alignments of the output pixel.
    """
    pools = level_pool_sizes(depth, spatial_dims, pool_sizes)
    fields = []
    for axis in range(spatial_dims):
        factors = _axis_factors(pools, axis)
        crops = _skip_crops(factors) if padding == "valid" else [0] * len(factors)
        widest = 0
        for j in range(max(1, math.prod(factors))):
            lo, hi = _decoder_to_input(0, (j, j), factors, crops, padding, upsample)
            widest = max(widest, hi - lo + 1)
        fields.append(widest)
    return tuple(fields)


def _skip_crops(factors: list[int]) -> list[int]:
    """Per-level offset of the centre crop of the skip in a valid net (level 0 = top)."""
    size = _nearest_valid_1d(1, factors)[1]
    encoder = []
    for f in factors:
        size -= CONV_LOSS
        encoder.append(size)
        size //= f
    size -= CONV_LOSS
    crops = [0] * len(factors)
    for level in reversed(range(len(factors))):
        size *= factors[level]
        crops[level] = (encoder[level] - size) // 2
        size -= CONV_LOSS
    return crops


def _convs_back(interval: tuple[int, int], padding: str) -> tuple[int, int]:
    lo, hi = interval
    return (lo, hi + CONV_LOSS) if padding == "valid" else (lo - 2, hi + 2)


def _encoder_to_input(level, interval, factors, padding):
    interval = _convs_back(interval, padding)
    if level == 0:
        return interval
    f = factors[level - 1]
    return _encoder_to_input(level - 1, (interval[0] * f, interval[1] * f + f - 1), factors, padding)


def _decoder_to_input(level, interval, factors, crops, padding, upsample):
    if level == len(factors):
        return _encoder_to_input(level, interval, factors, padding)
    lo, hi = _convs_back(interval, padding)
    skip = _encoder_to_input(level, (lo + crops[level], hi + crops[level]), factors, padding)
    f = factors[level]
    if upsample == "transpose":
        coarse = (lo // f, hi // f)
    else:  # linear interpolation (align_corners=False) reads the two nearest coarse pixels
        coarse = (math.floor((lo + 0.5) / f - 0.5), math.floor((hi + 0.5) / f - 0.5) + 1)
    deep = _decoder_to_input(level + 1, coarse, factors, crops, padding, upsample)
    return min(skip[0], deep[0]), max(skip[1], deep[1])
