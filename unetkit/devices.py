"""Which torch device a run or a prediction uses, and which share of the work a torchrun process takes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from unetkit.errors import InputError


def select_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without CUDA is an error naming the fix."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device '{name}' requested but CUDA is not available; use --device cpu (or auto)")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"device '{name}' is not a torch device; use auto, cpu, cuda or cuda:N") from error
    if device.type not in ("cpu", "cuda"):  # mps, xla, meta...: not a device unetkit trains or predicts on
        raise InputError(f"device '{name}' is not one unetkit runs on; use auto, cpu, cuda or cuda:N")
    return device


def device_type(name: str) -> str:
    """The kind of device ``name`` (``train.device``) runs on: ``cpu``, ``cuda`` ... (``auto``: CUDA when
    present), without ``select_device``'s checks (a missing CUDA is refused there, when training starts)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name.split(":")[0]


def is_first_process() -> bool:
    """True in a single process, and in torchrun's first (RANK 0): the one that writes shared files and says notes."""
    return os.environ.get("RANK", "0") == "0"


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the variables torchrun sets; (0, 1, 0) without them."""
    try:
        rank = int(os.environ.get("RANK", 0))
        world = int(os.environ.get("WORLD_SIZE", 1))
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError as error:
        raise InputError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({error})") from error
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return rank, world, local


class ObjectGroup:
    """torchrun's processes, joined to pass Python objects between them (gloo: no tensors, no GPU needed)."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    def broadcast(self, value: Any) -> Any:
        """The first process's ``value``, in every process."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, items: list) -> list:
        """Every process's ``items``, joined in rank order, in every process."""
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, items)
        return [item for part in parts for item in part]


@contextlib.contextmanager
def object_group() -> Iterator[ObjectGroup | None]:
    """Under torchrun, the processes joined as an ``ObjectGroup`` (a gloo group made here unless one exists);
    None for a single process. Why: prediction shares its checks and its results across the processes (the
    first one's refusal stops all, and one ``classes.csv`` covers every image)."""
    rank, world, _ = env_world()
    if world == 1 or "MASTER_ADDR" not in os.environ:
        yield None
        return
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        yield ObjectGroup(rank, world)
    finally:
        if owns:
            dist.destroy_process_group()


def shard(items: Sequence, rank: int | None = None, world_size: int | None = None) -> list:
    """This rank's share of a list (every ``world_size``-th item from ``rank``), e.g. files to predict.

    Without arguments, rank and world size come from torchrun's environment (no process group needed).
    """
    if rank is None or world_size is None:
        rank, world_size, _ = env_world()
    return list(items[rank::world_size])
