"""Training throughput in patches per CPU-second, with the CPU it was measured on.

Budgets in BENCHMARKS.md are stated in CPU time, and the same budget buys a different number of patches
on an AVX2 EPYC, an AVX-512 EPYC or a Xeon: every run's summary therefore records how many patches a
CPU-second of training bought, and on which processor, so results from different machines can be told
apart and compared. CPU time is this process's (all its threads; DataLoader worker processes, if any,
are not counted); with several processes each is assumed to spend about as much as the first.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from unetkit.cpu.info import cpu_flags, cpu_model


def epoch_columns(patches: int, cpu_start: float) -> dict[str, Any]:
    """An epoch's row entries: patches trained and this process's CPU seconds since ``cpu_start``
    (a ``time.process_time()`` taken when the epoch's training began)."""
    return {"patches": patches, "train_cpu_s": round(time.process_time() - cpu_start, 3)}


def run_throughput(history: list[dict[str, Any]], world_size: int = 1) -> dict[str, Any]:
    """Summary entries over all epochs (resumed runs included): patches, training CPU-seconds, patches per
    CPU-second and per wall second, and the CPU model, flags and torch threads it ran with."""
    patches = sum(row.get("patches", 0) for row in history)
    cpu_s = sum(row.get("train_cpu_s", 0.0) for row in history) * world_size
    wall_s = sum(row.get("train_seconds", 0.0) for row in history)
    return {"train_patches": patches, "train_cpu_s": round(cpu_s, 3),
            "patches_per_cpu_s": round(patches / cpu_s, 3) if cpu_s > 0 else None,
            "patches_per_s": round(patches / wall_s, 3) if wall_s > 0 else None,
            "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "torch_threads": torch.get_num_threads()}


def describe_throughput(summary: dict[str, Any]) -> str:
    """One line for the end of a run, e.g. ``training throughput: 3.42 patches per CPU-second (1200
    patches, 351.2 CPU-s) on AMD EPYC, 2 torch threads``."""
    rate = summary.get("patches_per_cpu_s")
    shown = f"{rate:.2f}" if rate is not None else "n/a"
    return (f"training throughput: {shown} patches per CPU-second ({summary['train_patches']} patches, "
            f"{summary['train_cpu_s']:.1f} CPU-s) on {summary['cpu_model']}, {summary['torch_threads']} torch threads"
            + (f", {summary['precision']}" if summary.get("precision", "fp32") != "fp32" else ""))
