"""Training: ``train_one_epoch`` and ``fit`` (the whole run, resumable).

Optimizer, schedule and budget clocks live in ``unetkit.training.optim``; whole-image validation in
``unetkit.training.validation``.

A run folder holds ``config.yaml`` (resolved), ``metrics.csv`` (a row per epoch), ``curves.png``,
``last.pt`` / ``best.pt`` (atomic checkpoints; best by the validation score), ``overlays/`` and
``summary.json``. ``fit(..., resume=True)`` continues from ``last.pt`` exactly where it stopped:
epoch, optimizer, scheduler, RNG; patches are seeded by (seed, epoch, index), so the data stream
continues identically too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from unetkit.config import RunConfig, apply_overrides, save_config, to_dict
from unetkit.data.sampling import PatchDataset
from unetkit.errors import InputError
from unetkit.inference.predict import NetGeometry, plan_tiles
from unetkit.models import sizes
from unetkit.models.compiling import compiled
from unetkit.models.layout import to_channels_last
from unetkit.models.memory import check_training_memory
from unetkit.models.registry import build_model, resolve_model_config
from unetkit.models.ternaus import load_encoder_weights, set_encoder_frozen
from unetkit.training import checkpoint as ckpt
from unetkit.training.cpu_convs import accelerate_training_convs
from unetkit.training.data import TARGET_CLASSES, detect_channels, prepare_data, target_kind
from unetkit.training.optim import BudgetClock, budget_clock, build_optimizer, lr_lambda, train_channels_last
from unetkit.training.tasks import NEW_TASKS, build_loss, resolve_task, score_key
from unetkit.training.validation import validate
from unetkit.visualize.curves import plot_curves

RESUMABLE_OVERRIDES = ("train.epochs", "train.time_budget_s", "train.device", "data.num_workers", "train.compile",
                       "train.channels_last", "train.gemm_convs")


@dataclass
class FitResult:
    """What a finished (or budget-stopped) run reached."""

    run_dir: Path
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device '{name}' requested but CUDA is not available; use --set train.device=cpu")
    return torch.device(name)


def patch_sizes(config: RunConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input, output) patch sizes: valid nets round the patch to a valid input size.

    ``data.patch_shape`` gives one size per axis (e.g. [32, 96, 96] for stacks with few slices);
    otherwise ``data.patch_size`` is used on every axis.
    """
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


def train_one_epoch(model, loader, loss_fn, optimizer, scheduler, device, scaler, amp_dtype,
                    out_of_time, bar: tqdm, grad_clip: float = 0.0) -> tuple[float, int, bool]:
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


def _score_key(config: RunConfig) -> str:
    return score_key(config)


def _write_metrics(rows: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(key for row in rows for key in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def resolve_for_data(config: RunConfig, train_dir: str | Path,
                     val_dir: str | Path | None = None) -> RunConfig:
    """Fill in values that depend on the data: image channels and output classes (multiclass and
    regression: also class names, class weights, target normalisation; see ``tasks.resolve_task``).
    The model's fixed geometry (unet3d: 3D; ternaus11: depth 6, same padding) is written in too."""
    config = dataclasses.replace(config, model=resolve_model_config(config.model))
    if config.task in NEW_TASKS:
        return resolve_task(config, train_dir, val_dir)
    channels = detect_channels(train_dir, config)
    classes = TARGET_CLASSES[target_kind(config)]
    return apply_overrides(config, {"model.in_channels": channels, "model.out_channels": classes})


def fit(config: RunConfig, train_dir: str | Path, out_dir: str | Path, val_dir: str | Path | None = None,
        resume: bool = False, resume_overrides: dict[str, Any] | None = None, progress: bool = True) -> FitResult:
    """Train a network as configured; returns the best validation score and the per-epoch history."""
    run_dir = Path(out_dir)
    state: dict[str, Any] | None = None
    if resume:
        state = ckpt.load_checkpoint(run_dir / "last.pt")
        config = apply_overrides(ckpt.config_of(state), resume_overrides or {})
        train_dir, val_dir = state["train_dir"], state.get("val_dir")
    else:
        if (run_dir / "last.pt").exists():
            raise InputError(f"{run_dir} already holds a run; use --resume to continue it or another --out")
        config = resolve_for_data(config, train_dir, val_dir)
    from unetkit.training.distributed import StepShardSampler, init_from_env, shard_split

    ctx = init_from_env(select_device(config.train.device))  # torchrun: several processes, one group
    progress = progress and ctx.is_main
    if ctx.is_main:  # rank 0 alone writes the run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")

    random.seed(config.train.seed)
    np.random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)
    device = ctx.device
    train, val, _ = prepare_data(config, train_dir, val_dir)
    input_size, output_size = patch_sizes(config)
    out_channels = config.model.out_channels

    from unetkit.transforms.build import build_transforms

    dims = len(input_size)
    dataset = PatchDataset(
        train.images, train.targets, input_size, output_size, config.data.samples_per_epoch,
        config.data.foreground_fraction, train.weights, build_transforms(config.augment, dims), config.train.seed,
        ignore_label=config.data.ignore_label if config.data.sparse_labels or config.task == "multiclass" else None,
        balance_classes=config.data.balance_classes,
    )
    # train.batch_size is the global batch: each of N processes takes its 1/N of every step's patches
    sampler = StepShardSampler(len(dataset), config.train.batch_size, ctx.rank, ctx.world_size)
    loader = DataLoader(dataset, batch_size=ctx.local_batch(config.train.batch_size), sampler=sampler, drop_last=True,
                        num_workers=config.data.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=False)
    steps_per_epoch = max(1, len(loader))
    model = build_model(config.model).to(device)
    if train_channels_last(config, device.type, dims):  # NHWC / NDHWC convolutions (see benchmarks/peers.py)
        to_channels_last(model, dims)
        if dims == 2 and device.type == "cpu" and config.train.gemm_convs:
            accelerate_training_convs(model)
    if state is None and config.model.encoder_weights:
        load_encoder_weights(model, config.model.encoder_weights)
    if dims == 3:  # a clear error naming a patch that fits, instead of running out of memory mid-run
        check_training_memory(config.model, input_size, ctx.local_batch(config.train.batch_size), device,
                              config.train.memory_limit_gb)
    optimizer = build_optimizer(model, config)
    elapsed_before = float(state["elapsed_s"]) if state is not None else 0.0
    budget_before = float(state.get("budget_elapsed_s", elapsed_before)) if state is not None else 0.0
    budget = config.train.time_budget_s
    clock = BudgetClock(budget, budget_before, config.train.budget_clock) if budget > 0 else None
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(
        config.train.epochs * steps_per_epoch, config.train.warmup_epochs * steps_per_epoch, config.train.scheduler,
        clock))
    amp_dtype = None
    if config.train.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loss_fn = build_loss(config).to(device)

    history: list[dict[str, Any]] = []
    start_epoch, best_score, best_epoch = 1, -math.inf, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        history = list(state["history"])
        start_epoch = state["epoch"] + 1
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        if ctx.is_main:
            print(f"resuming {run_dir} at epoch {start_epoch} (best {_score_key(config)} {best_score:.4f})")
    # DistributedDataParallel with several processes, then torch.compile on request; `model` is the network
    train_model = compiled(ctx.wrap(model), config.train.compile, "train.compile")

    started = time.monotonic() - elapsed_before
    budget_now = budget_clock(config.train.budget_clock)
    budget_started = budget_now() - budget_before

    def out_of_time() -> bool:
        return budget > 0 and budget_now() - budget_started > budget

    key = _score_key(config)
    stopped = False
    for epoch in range(start_epoch, config.train.epochs + 1):
        if stopped:
            break
        dataset.set_epoch(epoch)
        set_encoder_frozen(model, epoch <= config.model.freeze_encoder_epochs)  # pretrained encoder warm-up
        epoch_start = time.monotonic()
        bar = tqdm(total=steps_per_epoch * config.train.batch_size, desc=f"epoch {epoch}/{config.train.epochs}",
                   unit="patch", disable=not progress, leave=False)
        train_loss, seen, stopped = train_one_epoch(train_model, loader, loss_fn, optimizer, scheduler, device,
                                                    scaler, amp_dtype, (lambda: False) if ctx.distributed else
                                                    out_of_time, bar, config.train.grad_clip)
        bar.close()
        if ctx.distributed:  # ranks stop together (budget checked between epochs); losses averaged over ranks
            stopped = ctx.agree(out_of_time())
            train_loss, seen = ctx.mean(train_loss, seen), seen * ctx.world_size
        train_seconds = time.monotonic() - epoch_start
        row: dict[str, Any] = {
            "epoch": epoch, "train_loss": round(train_loss, 6), "lr": scheduler.get_last_lr()[0],
            "train_seconds": round(train_seconds, 2), "patches_per_s": round(seen / max(train_seconds, 1e-9), 2),
        }
        last_epoch = epoch == config.train.epochs or stopped
        if val.images and (epoch % config.train.val_every == 0 or last_epoch):
            mine = shard_split(val, ctx.rank, ctx.world_size)  # each rank validates every N-th image
            scores = validate(model, mine, config, device, out_channels, run_dir / "overlays" if ctx.is_main else None)
            row.update(ctx.mean_dict(scores, len(mine.images)))
        row["elapsed_s"] = round(time.monotonic() - started, 1)
        history.append(row)
        score = row.get(key, -train_loss if not val.images else None)
        improved = score is not None and score > best_score
        if improved:
            best_score, best_epoch = score, epoch
        payload = {
            "config": to_dict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": ckpt.rng_state(),
            "epoch": epoch, "best_score": best_score, "best_epoch": best_epoch, "history": history,
            "elapsed_s": time.monotonic() - started, "budget_elapsed_s": budget_now() - budget_started,
            "train_dir": str(train_dir),
            "val_dir": str(val_dir) if val_dir else None,
        }
        if not ctx.is_main:
            continue
        ckpt.save_checkpoint(run_dir / "last.pt", payload)
        if improved:
            ckpt.save_checkpoint(run_dir / "best.pt", payload)
        _write_metrics(history, run_dir / "metrics.csv")
        plot_curves(history, run_dir / "curves.png", best_epoch)
        if config.train.tensorboard:  # scalars and overlays for TensorBoard (unetkit.integrations.tensorboard)
            from unetkit.integrations import tensorboard

            tensorboard.log_epoch(run_dir, row, config.train.overlays)
        shown = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("val_"))
        print(f"epoch {epoch}: loss {train_loss:.4f} {shown} ({train_seconds:.1f}s, {row['patches_per_s']} patch/s)"
              + (" [time budget reached]" if stopped else ""), flush=True)

    if config.train.tensorboard and ctx.is_main:
        from unetkit.integrations import tensorboard

        tensorboard.close(run_dir)
    summary = {"best_epoch": best_epoch, f"best_{key}": best_score, "epochs_run": len(history),
               "stopped_by_time_budget": stopped, "elapsed_s": round(time.monotonic() - started, 1),
               "input_patch": list(input_size), "output_patch": list(output_size),
               "tile_plan_example": [list(t) for t in plan_tiles(input_size, NetGeometry.from_config(config.model),
                                                                 list(config.inference.tile_shape)
                                                                 or config.inference.tile_size)[:2]]}
    if ctx.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    ctx.barrier()  # other ranks return once rank 0 has written everything
    ctx.close()
    return FitResult(run_dir, best_epoch, best_score, history)
