"""Training: ``fit`` runs a whole (resumable) run as named steps; ``train_one_epoch`` is one pass.

``fit`` reads top to bottom: ``start_run`` (resolve the config from the data, or restore it from
``last.pt``), ``build_run`` (process group, data, model, optimiser, the one budget clock),
``restore`` (resume state), then per epoch ``run_epoch`` -> ``validate_epoch`` -> ``save_epoch``, then
``finish_postprocess`` (instances: post-processing tuned on training images, ``unetkit.training.finalize``)
and ``write_summary``. What a task means (targets, loss, scores) comes from ``unetkit.tasks``; whole-image
validation uses the inference ``Predictor`` (``unetkit.training.validation``); optimiser, schedule and
clocks live in ``unetkit.training.optim``.

A run folder holds ``config.yaml`` (resolved), ``metrics.csv`` (a row per epoch), ``curves.png``,
``last.pt`` / ``best.pt`` (atomic checkpoints; best by the validation score), ``overlays/`` and
``summary.json``. ``fit(..., resume=True)`` continues from ``last.pt`` exactly where it stopped:
epoch, optimizer, scheduler, RNG; patches are seeded by (seed, epoch, index), so the data stream
continues identically too.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides, save_config, to_dict
from unetkit.config_rules import validate_training_config
from unetkit.data.axes import selection_of, use_selection
from unetkit.data.sampling import PatchDataset
from unetkit.data.splits import SplitData
from unetkit.devices import is_first_process, select_device
from unetkit.errors import InputError
from unetkit.inference.tile_plan import NetGeometry, patch_sizes, plan_tiles
from unetkit.metrics.writers import write_rows_csv
from unetkit.models.compiling import compiled
from unetkit.models.layout import to_channels_last
from unetkit.models.memory import check_training_memory
from unetkit.models.registry import build_model, resolve_model_config
from unetkit.models.ternaus import load_encoder_weights, set_encoder_frozen
from unetkit.safety.atomic import write_text
from unetkit.safety.finite import nan_policy
from unetkit.safety.runs import absolute, data_fingerprint, repair_on_resume, resume_data
from unetkit.tasks import Task, get_task
from unetkit.training.cpu_convs import accelerate_training_convs
from unetkit.training.data import prepare_data
from unetkit.training.finalize import finish_postprocess
from unetkit.training.init_weights import adopt_init_network, load_init_weights
from unetkit.training.optim import BudgetClock, autocast_dtype, build_optimizer, lr_lambda, train_channels_last
from unetkit.training.throughput import describe_throughput, epoch_columns, run_throughput
from unetkit.training.validation import validate_pooled
from unetkit.visualize.curves import plot_curves

RESUMABLE_OVERRIDES = ("train.epochs", "train.time_budget_s", "train.device", "data.num_workers", "train.compile",
                       "train.channels_last", "train.gemm_convs", "train.autotune", "train.precision")


@dataclass
class FitResult:
    """What a finished (or budget-stopped) run reached."""

    run_dir: Path
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]
    # last.pt scored on the validation images with the post-processing tuned at the end (instances runs):
    # {"val_dsb_score_tuned": ..., "val_ap50_tuned": ...}; what ``predict`` would give, unlike ``history``
    tuned_scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """What a training run holds between its steps (built by ``build_run``)."""

    config: RunConfig
    task: Task
    run_dir: Path
    train_dir: str | Path
    val_dir: str | Path | None
    ctx: Any  # unetkit.training.distributed.DistributedContext
    train: SplitData
    val: SplitData
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    dataset: PatchDataset
    loader: DataLoader
    model: torch.nn.Module  # the network (checkpoints, validation)
    train_model: torch.nn.Module  # what the steps call: DDP and/or torch.compile around ``model``
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    loss_fn: torch.nn.Module
    clock: BudgetClock  # the one budget clock (schedule and stopping)
    fingerprint: dict[str, Any] = field(default_factory=dict)  # of the data files, so a resume notices changes
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 1
    best_score: float = -math.inf
    best_epoch: int = 0
    elapsed_before: float = 0.0  # wall seconds of the run before a resume
    started: float = 0.0  # time.monotonic() at the (virtual) start of training
    tuned_scores: dict[str, float] = field(default_factory=dict)  # validation with the tuned post-processing
    postprocess_tuned: dict[str, Any] = field(default_factory=dict)  # the values tuning stored in last.pt
    resumes: list[dict[str, Any]] = field(default_factory=list)  # when the run was resumed, and what changed
    init_weights_sha256: str | None = None  # of the weights a fine-tune started from, hashed when they were loaded

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def precision(self) -> str:
        """What the steps computed in: fp32, or the autocast dtype (bfloat16, float16)."""
        return "fp32" if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch.")

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.loader))


def resolve_for_data(config: RunConfig, train_dir: str | Path,
                     val_dir: str | Path | None = None) -> RunConfig:
    """Fill in values that depend on the data (image channels, outputs; multiclass and regression also
    class names, class weights, target normalisation: ``Task.resolve``). The model's fixed geometry
    (unet3d: 3D; ternaus11: depth 6, same padding) is written in too; fine-tuning (``train.init_weights``)
    takes the network and normalisation of its checkpoint."""
    config = dataclasses.replace(config, model=resolve_model_config(config.model))
    config = get_task(config).resolve(config, train_dir, val_dir)
    return adopt_init_network(config) if config.train.init_weights else config


# --------------------------------------------------------------------------------------------------
# the run, step by step


def fit(config: RunConfig | None, train_dir: str | Path | None, out_dir: str | Path,
        val_dir: str | Path | None = None, resume: bool = False,
        resume_overrides: dict[str, Any] | list[str] | None = None, progress: bool = True) -> FitResult:
    """Train a network as configured; returns the best validation score and the per-epoch history."""
    run_dir = Path(out_dir)
    config, train_dir, val_dir, state = start_run(config, train_dir, run_dir, val_dir, resume, resume_overrides)
    finished = finished_note(config, run_dir, state)
    if finished:  # nothing to train, and its config.yaml and summary.json stay what was trained
        if is_first_process():
            print(f"note: {finished}", file=sys.stderr, flush=True)
        return FitResult(run_dir, int(state["best_epoch"]), float(state["best_score"]), list(state["history"]), {})
    with use_selection(selection_of(config.data)):  # the planes of microscopy files every image read uses
        run = build_run(config, train_dir, val_dir, run_dir, state)
        restore(run, state, resume_overrides)
        # DistributedDataParallel with several processes, then torch.compile on request; `model` is the network
        run.train_model = compiled(run.ctx.wrap(run.model), config.train.compile, "train.compile")
        progress = progress and run.ctx.is_main
        run.clock.restart()
        run.started = time.monotonic() - run.elapsed_before
        stopped = False
        for epoch in range(run.start_epoch, config.train.epochs + 1):
            if epoch > run.start_epoch and budget_spent(run):  # spent by the last epoch's validation or saving
                stopped = True
                validate_unvalidated_last(run, epoch - 1)
                break
            row, stopped = run_epoch(run, epoch, progress)
            stopped = stopped or budget_spent(run)  # spent as the epoch ended: validated as the last one
            validate_epoch(run, epoch, row, last=epoch == config.train.epochs or stopped)
            save_epoch(run, epoch, row, stopped)
            if stopped:
                break
        finish_postprocess(run)  # instances: post-processing tuned on training images, into best.pt / last.pt
        write_summary(run, stopped)
    return FitResult(run.run_dir, run.best_epoch, run.best_score, run.history, dict(run.tuned_scores))


def start_run(config: RunConfig | None, train_dir: str | Path | None, run_dir: Path, val_dir: str | Path | None,
              resume: bool, resume_overrides: dict[str, Any] | list[str] | None
              ) -> tuple[RunConfig, str | Path, str | Path | None, dict[str, Any] | None]:
    """(config, train folder, val folder, resume state): from ``last.pt`` when resuming, else the config
    resolved from the data; a run folder that already holds a run is refused unless resuming."""
    if resume:
        if not (run_dir / "last.pt").exists():
            raise InputError(f"{run_dir}: no run to resume (no last.pt: it is written at the end of the first "
                             "epoch); leave out --resume to start one")
        try:
            state = ckpt.load_checkpoint(run_dir / "last.pt")
        except InputError as error:  # damaged (a disk filled, a copy cut short): say how to go on
            best = run_dir / "best.pt"
            way = (f"resume from its best epoch by copying {best.name} over last.pt, or start a new run in another "
                   "--out" if best.is_file() else "start a new run in another --out")
            raise InputError(f"{error}; the run cannot resume from it: {way}") from error
        trained = ckpt.trained_config(state)  # not the tuned post-processing: validation goes on as it began
        config = apply_overrides(trained, resume_overrides or {})
        if not finished_note(config, run_dir, state):  # (a run with nothing to train says that alone)
            config = resume_schedule(trained, config)
        validate_training_config(config)  # also a config assembled in Python, behind from_dict's back
        train_dir, val_dir = resume_data(state, train_dir, val_dir)  # stored absolute, or a new location given
        return config, train_dir, val_dir, state
    if (run_dir / "last.pt").exists():
        raise InputError(f"{run_dir} already holds a run; use --resume to continue it or another --out")
    validate_training_config(config)  # before any image is decoded or the run folder is made
    with use_selection(selection_of(config.data)):  # channels are counted on the planes the run reads
        return resolve_for_data(config, train_dir, val_dir), train_dir, val_dir, None


def finished_note(config: RunConfig, run_dir: Path, state: dict[str, Any] | None) -> str:
    """Why a resumed run has nothing left to train (its epochs done, or its time budget spent), or ""."""
    if state is None or not (run_dir / "summary.json").is_file():
        return ""
    done = int(state.get("epoch", 0))
    if done >= config.train.epochs:
        return (f"{run_dir} has finished its {done} epochs: nothing to train (resume with --epochs larger than {done} "
                "to train it on)")
    budget, spent = config.train.time_budget_s, float(state.get("budget_elapsed_s", 0.0))
    try:  # a run its budget stopped once last.pt was written (its curves, the next epoch's start): that budget
        ended = json.loads((run_dir / "summary.json").read_text())
        stopped_at = float(ended["time_budget_s"]) if ended.get("stopped_by_time_budget") else -math.inf
    except (OSError, ValueError, KeyError, TypeError):
        stopped_at = -math.inf
    if budget > 0 and (spent >= budget or budget <= stopped_at):
        above = math.ceil(max(spent, stopped_at) * 10) / 10  # rounded up: a budget above it does train on
        return (f"{run_dir} has spent its time budget ({spent:.1f} of {budget:g} s, {done} epochs): nothing to "
                f"train (resume with a --time-budget larger than {above:g} s to train it on)")
    return ""


def resume_schedule(before: RunConfig, config: RunConfig) -> RunConfig:
    """The schedule of a resumed run whose time budget was given or taken away (``--time-budget``): a budget added
    to an epoch run anneals the learning rate over it (cosine-time, as a new run with a budget does), and a
    budget-annealed run without one anneals over its epochs (cosine), each said in a note."""
    budget, scheduler = config.train.time_budget_s, config.train.scheduler
    if budget > 0 and scheduler == "cosine" and before.train.time_budget_s <= 0:
        change, why = "cosine-time", f"the learning rate now anneals over the {budget:g} s budget"
    elif budget <= 0 and scheduler == "cosine-time":
        change, why = "cosine", f"without a time budget the learning rate anneals over the {config.train.epochs} epochs"
    else:
        return config
    if is_first_process():
        print(f"note: train.scheduler {scheduler} -> {change}: {why}", file=sys.stderr, flush=True)
    return apply_overrides(config, {"train.scheduler": change})


def budget_spent(run: Run) -> bool:
    """True on every process when the run has a time budget and it is spent."""
    if run.config.train.time_budget_s <= 0:
        return False
    return run.ctx.agree(run.clock.out_of_time())


def build_run(config: RunConfig, train_dir: str | Path, val_dir: str | Path | None, run_dir: Path,
              state: dict[str, Any] | None) -> Run:
    """Join the process group, write the config, seed, load the data, build model, loss and optimiser."""
    from unetkit.training.distributed import init_from_env

    ctx = init_from_env(select_device(config.train.device))  # torchrun: several processes, one group
    ctx.local_batch(config.train.batch_size)  # a batch the processes cannot share is named before any file is written
    if ctx.is_main:  # rank 0 alone writes the run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    random.seed(config.train.seed)
    np.random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)
    task = get_task(config)
    with nan_policy(config.data.nan_policy):  # NaN/Inf pixels: refused by name or replaced (safety/finite.py)
        train, val, _ = prepare_data(config, train_dir, val_dir)
    input_size, output_size = patch_sizes(config)
    wanted = tuple(config.data.patch_shape) or (config.data.patch_size,) * len(input_size)
    if ctx.is_main and state is None and tuple(input_size) != tuple(int(n) for n in wanted):
        print(f"note: patches of {' x '.join(map(str, wanted))} px do not fit this network's levels; "
              f"{' x '.join(map(str, input_size))} px are used (data.patch_size / patch_shape)", file=sys.stderr,
              flush=True)
    spare = config.data.samples_per_epoch % config.train.batch_size
    if ctx.is_main and ctx.world_size == 1 and state is None and spare:
        print(f"note: data.samples_per_epoch={config.data.samples_per_epoch} is not a multiple of train.batch_size="
              f"{config.train.batch_size}; each epoch trains {config.data.samples_per_epoch - spare} patches "
              "(whole batches)", file=sys.stderr, flush=True)
    dataset, loader = _patch_loader(config, task, train, input_size, output_size, ctx)
    model = _build_model(config, input_size, ctx, pretrained=state is None)
    started_from = _init_weights_sha256(config) if state is None else (state or {}).get("init_weights_sha256")
    optimizer = build_optimizer(model, config)
    steps = max(1, len(loader))
    elapsed_before = float(state["elapsed_s"]) if state is not None else 0.0
    budget_before = float(state.get("budget_elapsed_s", elapsed_before)) if state is not None else 0.0
    budget = config.train.time_budget_s
    clock = BudgetClock(budget, budget_before, config.train.budget_clock)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(
        config.train.epochs * steps, config.train.warmup_epochs * steps, config.train.scheduler,
        clock if budget > 0 else None))
    amp_dtype = autocast_dtype(config, ctx.device.type)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp_dtype == torch.float16)
    return Run(config, task, run_dir, train_dir, val_dir, ctx, train, val, input_size, output_size, dataset,
               loader, model, model, optimizer, scheduler, scaler, amp_dtype,
               task.loss(config).to(ctx.device), clock,
               state["data_fingerprint"] if state is not None else data_fingerprint(train_dir, val_dir),
               elapsed_before=elapsed_before, init_weights_sha256=started_from)


def _init_weights_sha256(config: RunConfig) -> str | None:
    """sha256 of the file ``train.init_weights`` names, as the run loads it (None without one)."""
    if not config.train.init_weights:
        return None
    from unetkit.pretrained import sha256_of

    try:
        return sha256_of(ckpt.resolve_path(config.train.init_weights))
    except (InputError, OSError):
        return None


def _patch_loader(config: RunConfig, task: Task, train: SplitData, input_size: tuple[int, ...],
                  output_size: tuple[int, ...], ctx) -> tuple[PatchDataset, DataLoader]:
    """The seeded patch dataset and a loader giving this process its share of every global batch."""
    from unetkit.training.distributed import StepShardSampler
    from unetkit.transforms.build import build_transforms

    dataset = PatchDataset(
        train.images, train.targets, input_size, output_size, config.data.samples_per_epoch,
        config.data.foreground_fraction, train.weights, build_transforms(config.augment, len(input_size)),
        config.train.seed, ignore_label=task.patch_ignore_label(config), balance_classes=config.data.balance_classes,
    )
    # train.batch_size is the global batch: each of N processes takes its 1/N of every step's patches
    sampler = StepShardSampler(len(dataset), config.train.batch_size, ctx.rank, ctx.world_size)
    loader = DataLoader(dataset, batch_size=ctx.local_batch(config.train.batch_size), sampler=sampler,
                        drop_last=True, num_workers=config.data.num_workers, pin_memory=ctx.device.type == "cuda",
                        persistent_workers=False)
    return dataset, loader


def _build_model(config: RunConfig, input_size: tuple[int, ...], ctx, pretrained: bool) -> torch.nn.Module:
    """The network on its device, in the training layout, with pretrained encoder weights on a new run;
    3D runs first check that a step fits the memory budget (an error naming a patch that fits)."""
    device, dims = ctx.device, len(input_size)
    model = build_model(config.model).to(device)
    if pretrained and config.train.init_weights:
        load_init_weights(model, config.train.init_weights)
    if train_channels_last(config, device.type, dims):  # NHWC / NDHWC convolutions (see benchmarks/peers.py)
        to_channels_last(model, dims)
        if dims == 2 and device.type == "cpu" and config.train.gemm_convs:
            accelerate_training_convs(model, autotune=config.train.autotune)
    if pretrained and config.model.encoder_weights:
        load_encoder_weights(model, config.model.encoder_weights)
    if dims == 3:
        check_training_memory(config.model, input_size, ctx.local_batch(config.train.batch_size), device,
                              config.train.memory_limit_gb)
    return model


def restore(run: Run, state: dict[str, Any] | None, overrides: dict[str, Any] | list[str] | None = None) -> None:
    """Load the resume state of ``last.pt`` (weights, optimiser, schedule, scaler, RNG, history) and record the
    resume (after which epoch, with which ``overrides``) beside the earlier ones."""
    if state is None:
        return
    changed = dict(overrides) if isinstance(overrides, dict) else list(overrides or [])
    run.resumes = [*state.get("resumes", []), {"after_epoch": int(state["epoch"]), "changed": changed}]
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    # the rate of the next step from this run's schedule, not the one stored: a resume with more epochs (or a budget)
    # started at the old schedule's last rate (1 % of the peak); with the same limits the two are the same number
    for group, base, factor in zip(run.optimizer.param_groups, run.scheduler.base_lrs, run.scheduler.lr_lambdas,
                                   strict=True):
        group["lr"] = base * factor(run.scheduler.last_epoch)
    run.scheduler._last_lr = [group["lr"] for group in run.optimizer.param_groups]  # noqa: SLF001 - get_last_lr's
    run.scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    run.history = list(state["history"])
    run.start_epoch = state["epoch"] + 1
    run.best_score, run.best_epoch = state["best_score"], state["best_epoch"]
    if run.ctx.is_main:
        print(f"resuming {run.run_dir} at epoch {run.start_epoch} (best {run.task.score_key} {run.best_score:.4f})")
        repair_on_resume(run.run_dir, state)  # best.pt / summary.json in line with last.pt (safety/runs.py)
        write_rows_csv(run.history, run.run_dir / "metrics.csv")  # rows of epochs after last.pt are dropped


def run_epoch(run: Run, epoch: int, progress: bool) -> tuple[dict[str, Any], bool]:
    """Train one epoch; returns its metrics row and whether the time budget stopped it."""
    config, ctx = run.config, run.ctx
    run.dataset.set_epoch(epoch)
    set_encoder_frozen(run.model, epoch <= config.model.freeze_encoder_epochs)  # pretrained encoder warm-up
    epoch_start, cpu_start = time.monotonic(), time.process_time()
    lr = run.scheduler.get_last_lr()[0]  # the rate of the epoch's first step (the schedule moves on every step)
    bar = tqdm(total=run.steps_per_epoch * config.train.batch_size, desc=f"epoch {epoch}/{config.train.epochs}",
               unit="patch", disable=not progress, leave=False)
    # several processes check the budget together between epochs, so that they stop at the same step
    out_of_time = (lambda: False) if ctx.distributed else run.clock.out_of_time
    train_loss, seen, stopped = train_one_epoch(run.train_model, run.loader, run.loss_fn, run.optimizer,
                                                run.scheduler, run.device, run.scaler, run.amp_dtype, out_of_time,
                                                bar, config.train.grad_clip)
    bar.close()
    if ctx.distributed:  # ranks stop together; losses averaged over ranks
        stopped = ctx.agree(run.clock.out_of_time())
        train_loss, seen = ctx.mean(train_loss, seen), seen * ctx.world_size
    seconds = time.monotonic() - epoch_start
    row = {"epoch": epoch, "train_loss": round(train_loss, 6), "lr": lr,
           "train_seconds": round(seconds, 4), "patches_per_s": round(seen / max(seconds, 1e-9), 2),
           **epoch_columns(seen, cpu_start)}  # patches per CPU-second, summed in summary.json
    return row, stopped


def validate_epoch(run: Run, epoch: int, row: dict[str, Any], last: bool) -> None:
    """Whole-image validation every ``train.val_every`` epochs and at the end; scores go into ``row``."""
    from unetkit.training.distributed import shard_split

    config, ctx = run.config, run.ctx
    if run.val.images and (epoch % config.train.val_every == 0 or last):
        mine = shard_split(run.val, ctx.rank, ctx.world_size)  # each rank validates every N-th image
        # the overlays of the first train.overlays images, each drawn by the rank that validates it
        drawn = len(range(ctx.rank, config.train.overlays, ctx.world_size))
        local = apply_overrides(config, {"train.overlays": drawn}) if ctx.distributed else config
        scores, pooled = validate_pooled(run.model, mine, local, run.device, run.run_dir / "overlays")
        row.update(ctx.mean_dict(scores, len(mine.images)))
        if pooled is not None and ctx.distributed:  # pixels pooled over every image, not a mean of ranks' scores
            row.update(run.task.pooled_row(ctx.total(pooled), config))
    row["elapsed_s"] = round(time.monotonic() - run.started, 1)
    run.history.append(row)


def validate_unvalidated_last(run: Run, epoch: int) -> None:
    """The run's last epoch validated (as the last one) and saved again when it was no validation epoch and the
    budget ran out while it was saved: best.pt and the summary then see the final weights too."""
    row = run.history[-1]
    if not run.val.images or run.task.score_key in row:
        return
    run.history.pop()
    validate_epoch(run, epoch, row, last=True)
    save_epoch(run, epoch, row, True)


def save_epoch(run: Run, epoch: int, row: dict[str, Any], stopped: bool) -> None:
    """Keep the best score; rank 0 writes metrics.csv, last.pt, best.pt when improved (in that order),
    curves.png (the best epoch marked) and, with ``train.tensorboard``, the TensorBoard scalars and overlays."""
    score = row.get(run.task.score_key, -row["train_loss"] if not run.val.images else None)
    improved = score is not None and score > run.best_score
    if improved:
        run.best_score, run.best_epoch = score, epoch
    if not run.ctx.is_main:
        return
    payload = {
        "config": to_dict(run.config), "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "rng": ckpt.rng_state(),
        "epoch": epoch, "best_score": run.best_score, "best_epoch": run.best_epoch, "history": run.history,
        "elapsed_s": time.monotonic() - run.started, "budget_elapsed_s": run.clock.elapsed(),
        "train_dir": absolute(run.train_dir), "val_dir": absolute(run.val_dir) if run.val_dir else None,
        "data_fingerprint": run.fingerprint, "resumes": run.resumes, "init_weights_sha256": run.init_weights_sha256,
    }
    # order: metrics.csv, last.pt (the commit point), best.pt; a kill in between is repaired on resume
    write_rows_csv(run.history, run.run_dir / "metrics.csv")
    ckpt.save_checkpoint(run.run_dir / "last.pt", payload)
    if improved:
        ckpt.save_checkpoint(run.run_dir / "best.pt", payload)
    plot_curves(run.history, run.run_dir / "curves.png", run.best_epoch)
    if run.config.train.tensorboard:  # scalars and overlays for TensorBoard (unetkit.integrations.tensorboard)
        from unetkit.integrations import tensorboard

        tensorboard.log_epoch(run.run_dir, row, run.config.train.overlays)
    shown = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("val_"))
    print(f"epoch {epoch}: loss {row['train_loss']:.4f} {shown} ({row['train_seconds']:.1f}s, "
          f"{row['patches_per_s']} patch/s)" + (" [time budget reached]" if stopped else ""), flush=True)


def run_records(run: Run) -> dict[str, Any]:
    """What summary.json keeps to repeat the run: software, machine and command, the tuned post-processing (which
    config.yaml leaves out), the weights it started from, its resumes, and a split's validation images."""
    from unetkit.training.records import environment

    records: dict[str, Any] = {"environment": environment(str(run.device), run.precision)}
    if run.postprocess_tuned:
        records["postprocess_tuned"] = run.postprocess_tuned
    if run.config.train.init_weights:  # hashed when the run loaded them (a later change of the file is not its)
        records["init_weights_sha256"] = run.init_weights_sha256
    if run.resumes:
        records["resumes"] = run.resumes
    if run.val_dir is None and run.val.names:  # split from the training folder: which images it held out
        records["validation_images"] = list(run.val.names)
    return records


def write_summary(run: Run, stopped: bool) -> None:
    """Rank 0 writes summary.json (and closes the TensorBoard log); every rank then leaves the process group."""
    config = run.config
    if config.train.tensorboard and run.ctx.is_main:
        from unetkit.integrations import tensorboard

        tensorboard.close(run.run_dir)
    tile = list(config.inference.tile_shape) or config.inference.tile_size
    plan = plan_tiles(run.input_size, NetGeometry.from_config(config.model), tile)[:2]
    summary = {"best_epoch": run.best_epoch, f"best_{run.task.score_key}": run.best_score,
               "epochs_run": len(run.history), "stopped_by_time_budget": stopped,
               "time_budget_s": config.train.time_budget_s,
               "elapsed_s": round(time.monotonic() - run.started, 1), "input_patch": list(run.input_size),
               "output_patch": list(run.output_size), "tile_plan_example": [list(t) for t in plan],
               **run_throughput(run.history, run.ctx.world_size),
               "precision": run.precision,
               **run.tuned_scores, **run_records(run)}
    if run.ctx.is_main:
        write_text(run.run_dir / "summary.json", json.dumps(summary, indent=2))
        print(describe_throughput(summary), flush=True)
    run.ctx.barrier()  # other ranks return once rank 0 has written everything
    # Free DDP's reducer while the process group is alive and every rank is here: left to the garbage
    # collector after fit returns, it destroyed the group's last reference when the other rank had
    # already exited, and gloo's teardown then waited for that rank (seen as a rare hang in a test).
    run.train_model = run.model
    gc.collect()
    run.ctx.barrier()
    run.ctx.close()


# --------------------------------------------------------------------------------------------------
# one epoch


def train_one_epoch(model: torch.nn.Module, loader: DataLoader, loss_fn: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                    device: torch.device, scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None,
                    out_of_time: Callable[[], bool], bar: tqdm, grad_clip: float = 0.0) -> tuple[float, int, bool]:
    """One pass over the loader; returns (mean loss, patches seen, stopped by the time budget)."""
    model.train()
    total, count, stopped = 0.0, 0, False
    for batch in loader:
        image = batch["image"].to(device, non_blocking=True)  # (B, C, *S_in)
        target = batch["target"].to(device, non_blocking=True)  # (B, *S_out)
        weights = batch["weights"].to(device, non_blocking=True) if "weights" in batch else None
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(image)
        loss = loss_fn(logits.float(), target, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}; lower train.lr or enable grad_clip")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total += loss.item() * image.shape[0]
        count += image.shape[0]
        bar.update(image.shape[0])
        bar.set_postfix(loss=f"{total / count:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                        refresh=False)  # drawn by update() at its own rate (a log: every 30 s)
        if out_of_time():
            stopped = True
            break
    return total / max(count, 1), count, stopped
