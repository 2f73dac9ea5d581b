"""How much memory a training step or a tiled prediction needs, and the largest patch that fits.

Estimate: the network runs on PyTorch's ``meta`` device (tensors with shapes but no data, so nothing
is computed and nothing is allocated) while a dispatch mode records every tensor created and, through
a weak reference, when it is freed. The peak of the live bytes is what the real run holds at its worst
moment: activations kept for backward, gradients, skip connections, the concatenations of the decoder.
Parameters (and for training two optimizer states per parameter, as AdamW keeps) are added on top.
The estimate is for float32 (mixed precision on CUDA needs less) and takes ~0.1 s per call.

Worked numbers (3D U-Net, depth 3, 8 base channels, batch norm, same padding, one 32x64x64 patch,
batch 2): the forward keeps ~5 maps of 8 x 262,144 voxels at the top level (8.4 MB each) plus the
smaller levels and the decoder, ~130 MB at the peak of training; prediction of the same tiles peaks
at ~52 MB because nothing is kept for backward. Memory grows linearly with the voxels of the patch,
so halving each side of a 3D patch needs about 1/8 of the activation memory.
"""

from __future__ import annotations

import functools
import math
import os
import weakref
from collections.abc import Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models import sizes
from unetkit.models.registry import build_model, resolve_model_config

BUDGET_FRACTION = 0.8  # share of the free memory a run may plan to use (allocator overhead, other buffers)
OPTIMIZER_STATES = 2  # AdamW keeps two moments per parameter (SGD with momentum one)
GB = 1024**3


class _LiveBytes(TorchDispatchMode):
    """Records the bytes of every storage created under it and the peak of those still alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._sizes:  # a view or an in-place result of a tracked tensor
            return
        size = storage.nbytes()
        self._sizes[key] = size
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out


def _parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


@functools.lru_cache(maxsize=256)
def _estimate(config_key: str, input_shape: tuple[int, ...], training: bool) -> int:
    config = _CONFIGS[config_key]
    with torch.device("meta"):
        model = build_model(config)
    model.train(training)
    x = torch.empty(input_shape, device="meta")
    tracker = _LiveBytes()
    with tracker:
        if training:
            logits = model(x)
            # a softmax loss like the real one: (B, K, *S) probabilities live during backward
            loss = torch.log_softmax(logits.float(), dim=1).mean()
            del logits
            loss.backward()
            del loss
        else:
            with torch.no_grad():
                out = torch.softmax(model(x).float(), dim=1)
                del out
    params = _parameter_bytes(model)
    return tracker.peak + params * (1 + OPTIMIZER_STATES if training else 1)


_CONFIGS: dict[str, ModelConfig] = {}


def estimate_bytes(config: ModelConfig, input_shape: Sequence[int], training: bool) -> int:
    """Peak bytes of one training step (forward, loss, backward; plus weights and optimizer states) or of
    one prediction forward pass, for an input batch of shape (B, C, *S). Cached per (config, shape)."""
    config = resolve_model_config(config)
    key = repr(config)
    _CONFIGS[key] = config
    return _estimate(key, tuple(int(s) for s in input_shape), bool(training))


def available_bytes(device: str | torch.device) -> int:
    """Free memory of ``device``: CUDA free + cached-but-unused by PyTorch, or the host's MemAvailable."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def memory_budget(device: str | torch.device, limit_gb: float = 0.0) -> int:
    """Bytes a run may plan to use: ``limit_gb`` when set, else 80% of the free memory of ``device``."""
    if limit_gb < 0:
        raise InputError(f"memory_limit_gb must be >= 0 (0 = 80% of the free memory), got {limit_gb}")
    if limit_gb > 0:
        return int(limit_gb * GB)
    return int(BUDGET_FRACTION * available_bytes(device))


def round_down_size(config: ModelConfig, size: Sequence[int]) -> tuple[int, ...] | None:
    """Per axis, the largest input size <= ``size`` the network accepts (valid: a valid size; same: a
    multiple of the pooling product), or None when an axis has none (smaller than the smallest input)."""
    config = resolve_model_config(config)
    dims = config.spatial_dims
    pools = sizes.level_pool_sizes(config.depth, dims, config.pool_sizes or None)
    out = []
    for axis, want in enumerate(size):
        factors = [p[axis] for p in pools]
        if config.padding == "valid":
            below, _ = sizes.nearest_valid_sizes(int(want), config.depth, factors)
            if below is None:
                return None
            out.append(below)
        else:
            divisor = math.prod(factors)
            if want < divisor:
                return None
            out.append(int(want) // divisor * divisor)
    return tuple(out)


def largest_fitting_size(config: ModelConfig, size: Sequence[int], batch: int, budget: int,
                         training: bool) -> tuple[int, ...] | None:
    """The largest input size with the proportions of ``size`` (each side scaled by the same factor, then
    rounded down to a size the net accepts, but not below the smallest one) whose estimate fits
    ``budget``; None when even the smallest input does not fit.

    Example: a (64, 256, 256) patch that needs 4x the budget -> about (40, 160, 160) (scale ~0.63).
    """
    config = resolve_model_config(config)
    channels = config.in_channels
    smallest = smallest_size(config)

    def fits(scale: float) -> tuple[int, ...] | None:
        shape = round_down_size(config, [max(low, int(s * scale)) for s, low in zip(size, smallest, strict=True)])
        if shape is None:
            return None
        try:
            need = estimate_bytes(config, (batch, channels, *shape), training)
        except (ValueError, RuntimeError):  # e.g. batch norm on one value per channel (batch 1, 1 voxel deep)
            return None
        return shape if need <= budget else None

    best = fits(1.0)
    if best is not None:
        return best
    # a feasible lower end: every axis at its smallest size, or a little above where batch norm needs it
    low = next((scale for scale in (0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2) if fits(scale) is not None), None)
    if low is None:
        return None
    best, high = fits(low), 1.0  # fits(low) holds, fits(high) fails; memory grows with the scale
    for _ in range(12):  # scale resolution 1/4096: finer than one pooling step on any axis
        middle = (low + high) / 2
        shape = fits(middle)
        if shape is None:
            high = middle
        else:
            low, best = middle, shape
    return best


def describe(nbytes: float) -> str:
    """Bytes as a short human string: 1536 MiB -> '1.50 GB', 20 MiB -> '20 MB', 300 KiB -> '300 KB'."""
    if nbytes >= 0.1 * GB:
        return f"{nbytes / GB:.2f} GB"
    return f"{nbytes / 1024**2:.0f} MB" if nbytes >= 1024**2 else f"{nbytes / 1024:.0f} KB"


def check_training_memory(config: ModelConfig, patch: Sequence[int], batch: int, device: str | torch.device,
                          limit_gb: float = 0.0) -> int:
    """Raise an InputError naming a patch that fits when a training step with ``batch`` patches of size
    ``patch`` would not fit the memory budget of ``device``; returns the estimated bytes otherwise."""
    budget = memory_budget(device, limit_gb)
    config = resolve_model_config(config)
    need = estimate_bytes(config, (batch, config.in_channels, *patch), training=True)
    if need <= budget:
        return need
    where = f"the limit train.memory_limit_gb={limit_gb}" if limit_gb > 0 else f"80% of the free memory of {device}"
    fitting = largest_fitting_size(config, patch, batch, budget, training=True)
    single = largest_fitting_size(config, patch, 1, budget, training=True) if batch > 1 else None
    if fitting is not None:
        fix = (f"use --set data.patch_shape=[{', '.join(map(str, fitting))}] (about "
               f"{describe(estimate_bytes(config, (batch, config.in_channels, *fitting), True))})")
        if single is not None and single != fitting:
            fix += f", or train.batch_size=1 with data.patch_shape=[{', '.join(map(str, single))}]"
    elif single is not None:
        fix = f"use train.batch_size=1 with --set data.patch_shape=[{', '.join(map(str, single))}]"
    else:
        fix = "no patch fits: use a smaller network (model.base_channels, model.depth) or a larger memory limit"
    raise InputError(
        f"a training step with {batch} patch(es) of {tuple(patch)} needs about {describe(need)} (estimated from "
        f"the network's activation sizes) but {describe(budget)} is available ({where}); {fix}"
    )


def fit_prediction_tile(config: ModelConfig, tile: Sequence[int], batch: int, device: str | torch.device,
                        limit_gb: float = 0.0) -> tuple[tuple[int, ...], int]:
    """(tile, batch) for tiled prediction within the memory budget: ``tile`` and ``batch`` when they fit,
    else batch 1 and then the largest smaller tile that fits; an InputError when no tile fits."""
    budget = memory_budget(device, limit_gb)
    config = resolve_model_config(config)
    tile = tuple(int(t) for t in tile)
    if estimate_bytes(config, (batch, config.in_channels, *tile), training=False) <= budget:
        return tile, batch
    if batch > 1 and estimate_bytes(config, (1, config.in_channels, *tile), training=False) <= budget:
        return tile, 1
    fitting = largest_fitting_size(config, tile, 1, budget, training=False)
    if fitting is None:
        smallest = smallest_size(config)
        need = estimate_bytes(config, (1, config.in_channels, *smallest), training=False)
        raise InputError(
            f"no prediction tile fits in {describe(budget)} of {device} memory: even the smallest tile this "
            f"network accepts, {smallest}, needs about {describe(need)}; free memory, raise "
            "inference.memory_limit_gb or predict with --device cpu"
        )
    return fitting, 1


def smallest_size(config: ModelConfig) -> tuple[int, ...]:
    """The smallest input the network accepts per axis (same: the pooling product; valid: 16 k + 12 ...)."""
    config = resolve_model_config(config)
    pools = sizes.level_pool_sizes(config.depth, config.spatial_dims, config.pool_sizes or None)
    out = []
    for axis in range(config.spatial_dims):
        factors = [p[axis] for p in pools]
        if config.padding == "valid":
            out.append(sizes.nearest_valid_sizes(1, config.depth, factors)[1])
        else:
            out.append(math.prod(factors))
    return tuple(out)
