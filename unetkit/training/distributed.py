"""Data-parallel training and prediction over processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m unetkit train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; ``fit`` then joins a process group (NCCL on GPUs, gloo on CPU), wraps the
network in DistributedDataParallel, and lets rank 0 alone write the run folder.

Batches: ``train.batch_size`` stays the *global* batch. Step ``s`` of an epoch uses patches
``s * B .. s * B + B - 1`` (patches are a pure function of (seed, epoch, index)); rank ``r`` of ``N``
takes the ``r``-th slice of ``B / N`` of them. The union over ranks is exactly the single-process
batch, the number of steps per epoch (and so the learning-rate schedule) does not depend on ``N``,
and a run can resume with a different number of processes.

Prediction over many files needs no process group: ``shard`` gives each rank every N-th file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from unetkit.devices import env_world, shard  # noqa: F401  (prediction shards files without torch.distributed)
from unetkit.errors import InputError


@dataclass
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context initialised the process group (and tears it down)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def local_batch(self, global_batch: int) -> int:
        """Patches per step on this rank: the global batch split evenly (8 over 2 ranks -> 4)."""
        if global_batch % self.world_size:
            fixed = self.world_size * max(1, global_batch // self.world_size)
            raise InputError(f"train.batch_size {global_batch} must be divisible by the number of processes "
                             f"({self.world_size}); e.g. --set train.batch_size={fixed}")
        return global_batch // self.world_size

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model to train: DistributedDataParallel around it when there are several processes."""
        if not self.distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def mean(self, value: float, count: int) -> float:
        """Mean over all ranks of a per-rank mean ``value`` over ``count`` items (weighted by count)."""
        if not self.distributed:
            return value
        totals = torch.tensor([value * count, float(count)], dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(totals)
        return float(totals[0] / totals[1].clamp(min=1))

    def mean_dict(self, values: dict[str, float], count: int) -> dict[str, float]:
        """Per-key count-weighted means over ranks of per-rank mean scores (ranks may have 0 items)."""
        if not self.distributed:
            return values
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, (values, count))
        keys = list(dict.fromkeys(k for v, _ in gathered for k in v))
        result = {}
        for key in keys:
            pairs = [(v[key], c) for v, c in gathered if key in v and c > 0]
            total = sum(c for _, c in pairs)
            if total:
                result[key] = sum(x * c for x, c in pairs) / total
        return result

    def total(self, array: Any) -> Any:
        """The sum over ranks of an array (a confusion matrix pooled by each rank over its images)."""
        if not self.distributed:
            return array
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, array)
        return sum(gathered[1:], gathered[0])

    def agree(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (e.g. one rank ran out of time)."""
        if not self.distributed:
            return flag
        value = torch.tensor([float(flag)], device=self._reduce_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def _reduce_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def init_from_env(device: torch.device) -> DistributedContext:
    """Join the process group described by torchrun's environment; single-process context otherwise.

    ``device`` is the configured one: a CUDA device becomes ``cuda:LOCAL_RANK`` (one GPU per process)
    with NCCL; the CPU uses gloo.
    """
    rank, world, local = env_world()
    if world == 1:
        return DistributedContext(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        for key in ("MASTER_ADDR", "MASTER_PORT"):
            if key not in os.environ:
                raise InputError(f"WORLD_SIZE={world} but {key} is not set; start several processes with torchrun, "
                                 "e.g. torchrun --nproc_per_node=2 -m unetkit train ...")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
        owns = True
    return DistributedContext(rank, world, local, device, owns)


class StepShardSampler(Sampler[int]):
    """Indices of this rank's share of every global batch (a DistributedSampler for ``PatchDataset``).

    Example: 16 patches, global batch 8, 2 ranks: rank 0 gets 0-3, 8-11; rank 1 gets 4-7, 12-15.
    Incomplete last batches are dropped, as the single-process loader does (``drop_last``).
    """

    def __init__(self, num_samples: int, global_batch: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise InputError(f"global batch {global_batch} is not divisible by {world_size} processes")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.rank = rank
        self.local = global_batch // world_size

    def __iter__(self) -> Iterator[int]:
        for step in range(self.num_samples // self.global_batch):
            first = step * self.global_batch + self.rank * self.local
            yield from range(first, first + self.local)

    def __len__(self) -> int:
        return self.num_samples // self.global_batch * self.local


def shard_split(split, rank: int, world_size: int):
    """Every ``world_size``-th image of a ``SplitData`` from ``rank`` (validation shards); same type."""
    import dataclasses

    if world_size == 1:
        return split
    count = len(split.names)
    values = {}
    for field in dataclasses.fields(split):
        value = getattr(split, field.name)
        values[field.name] = value[rank::world_size] if isinstance(value, list) and len(value) == count else value
    return dataclasses.replace(split, **values)


def _local_worker(index: int, fn, world_size: int, port: int, args: tuple) -> None:
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1: the processes share the cores
    fn(*args)


def spawn_local(fn, nprocs: int, *args) -> None:
    """Run ``fn(*args)`` in ``nprocs`` local processes wired as torchrun would (gloo on CPU, loopback).

    For tests and single-machine CPU runs; ``fn`` must be importable (a module-level function such as
    ``unetkit.training.loop.fit``). Raises if any process fails.
    """
    import socket

    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_local_worker, args=(fn, nprocs, port, args), nprocs=nprocs, join=True)
