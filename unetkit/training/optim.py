"""Optimisation settings of a run: optimizer, learning-rate schedule, time-budget clocks, training layout."""

from __future__ import annotations

import math
import time

import torch

from unetkit.config import RunConfig
from unetkit.errors import InputError


def lr_lambda(total_steps: int, warmup_steps: int, schedule: str, time_progress=None):
    """Linear warm-up, then cosine decay to 1% of the peak (or constant).

    ``cosine-time`` decays over the time budget instead of the epochs (``time_progress()`` returns
    the elapsed share of the budget), or over the epochs when they end the run first (the larger of
    the two shares), so a run stopped by either limit has annealed; its learning rate
    then depends on the machine's speed, so resume is not bit-exact in that mode.
    """
    if schedule not in ("cosine", "constant", "cosine-time"):
        raise InputError(f"train.scheduler must be cosine, cosine-time or constant; got '{schedule}'")
    if schedule == "cosine-time" and time_progress is None:
        raise InputError("train.scheduler=cosine-time needs train.time_budget_s > 0")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "cosine-time":  # whichever ends the run first, the budget or the epochs
            progress = max(progress, min(1.0, time_progress()))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def budget_clock(kind: str):
    """The clock a time budget is measured on: wall time, or this process's CPU time (all threads)."""
    if kind not in ("wall", "cpu"):
        raise InputError(f"train.budget_clock must be wall or cpu; got '{kind}'")
    return time.monotonic if kind == "wall" else time.process_time


class BudgetClock:
    """The run's one time-budget clock: seconds spent on ``kind`` (wall or CPU time), carried over a resume.

    ``clock()`` is the elapsed share of the budget (what the cosine-time schedule reads);
    ``out_of_time()`` says when training should stop (never without a budget).
    """

    def __init__(self, budget_s: float, elapsed_before: float = 0.0, kind: str = "wall"):
        self.budget_s = budget_s
        self.elapsed_before = elapsed_before
        self.now = budget_clock(kind)
        self.restart()

    def restart(self) -> None:
        """Count from now on (plus the seconds of the run before a resume): setup time is not training."""
        self.started = self.now() - self.elapsed_before

    def elapsed(self) -> float:
        return self.now() - self.started

    def out_of_time(self) -> bool:
        return self.budget_s > 0 and self.elapsed() > self.budget_s

    def __call__(self) -> float:
        return self.elapsed() / self.budget_s


def train_channels_last(config: RunConfig, device_type: str = "cpu", spatial_dims: int = 2) -> bool:
    """Whether a 2D / 3D net trains channels-last (NHWC / NDHWC): ``train.channels_last`` true/false, or auto.

    auto on a CPU: 3D nets always (NDHWC steps measured 1.23-1.58x faster); 2D nets whenever the GEMM
    weight gradients of ``training/cpu_convs.py`` are on (NHWC steps then 1.12-1.49x faster than NCHW at
    16-64 base channels), else up to 32 base channels (plain oneDNN NHWC steps were 1.07-1.18x faster
    there and 1.5x slower at 64). auto on CUDA: up to 32 base channels. 1D nets: never.
    """
    if spatial_dims not in (2, 3):
        return False
    setting = str(config.train.channels_last).lower()
    if setting in ("true", "false"):
        return setting == "true"
    if setting != "auto":
        raise InputError(f"train.channels_last must be auto, true or false; got '{config.train.channels_last}'")
    if device_type == "cpu" and (spatial_dims == 3 or config.train.gemm_convs):
        return True
    return config.model.base_channels <= 32


def autocast_dtype(config: RunConfig, device_type: str) -> torch.dtype | None:
    """The dtype a training step's forward pass autocasts to, or None for float32.

    CUDA: bf16 (fp16 where the GPU lacks bf16) with ``train.amp``. CPU: ``train.precision`` bf16, or auto
    on a CPU with bf16 in hardware (``unetkit.cpu.info.native_bf16``): there a step of the DSB settings took
    0.58 instead of 1.12 CPU-s (2D) and a 3D step 1.9 instead of 4.2, with the same accuracy (BENCHMARKS.md);
    without it bf16 is emulated (no gain expected; not measured). Weights, gradients and AdamW stay float32.
    """
    if device_type == "cuda":
        if not config.train.amp:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device_type != "cpu":
        return None
    setting = str(config.train.precision).lower()
    if setting == "auto":
        from unetkit.cpu.info import native_bf16

        return torch.bfloat16 if native_bf16() else None
    return torch.bfloat16 if setting == "bf16" else None


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay) or SGD with momentum, from ``train``."""
    train = config.train
    if train.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    if train.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                               weight_decay=train.weight_decay)
    raise InputError(f"train.optimizer must be adamw or sgd; got '{train.optimizer}'")
