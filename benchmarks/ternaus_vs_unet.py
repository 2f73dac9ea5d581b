"""Benchmark: TernausNet11 (VGG11 encoder, trained from scratch) against the plain U-Net at equal CPU time.

Data: a fixed subset of the DSB 2018 nuclei (``../shared/data/dsb2018/stage1_train``): images no larger
than 360 x 360 px, shuffled with seed 0, the first ``--train`` for training and the next ``--test`` held
out. Both networks learn the three-class target (background / interior / boundary) of the instances
task with the same data pipeline, optimizer (AdamW, lr 1e-3, cosine schedule over the budget), patches
(128 px, batch 4) and the same budget of process CPU time on one thread. The U-Net is the toolkit's
default (depth 5, 64 base channels, batch norm, same padding; 31.0 M parameters); TernausNet11 from
scratch uses He initialisation (it has no batch norm; 22.9 M parameters). The final model of each is scored once
on the held-out images by overlap-tile prediction: foreground Dice and the DSB instance score (mean over
IoU 0.5 .. 0.95 of TP / (TP + FP + FN)) after seeded watershed.

No ImageNet weights exist on this machine, so TernausNet trains from scratch here; with weights, add
``--encoder-weights vgg11.pth`` (a torchvision VGG11 state dict, see the README).

Usage::

    .venv/bin/python benchmarks/ternaus_vs_unet.py --budget 300 --out runs/bench_ternaus
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from fit_rows import SCORE_COLUMNS, held_out_scores, print_table

from unetkit.config import RunConfig, apply_overrides
from unetkit.cpu.info import describe, torch_threads
from unetkit.data.io import image_shape
from unetkit.models.registry import build_model
from unetkit.training.loop import fit

DSB = Path(__file__).resolve().parents[1] / "../shared/data/dsb2018/stage1_train"
MAX_SIDE = 360


def subset(out: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """Symlink a fixed random subset of small DSB images into ``out/train`` and ``out/test`` (dsb layout)."""
    ids = sorted(p.name for p in DSB.iterdir() if p.is_dir())
    small = [i for i in ids if max(image_shape(DSB / i / "images" / f"{i}.png")) <= MAX_SIDE]
    order = np.random.default_rng(0).permutation(len(small))
    chosen = [small[k] for k in order[: n_train + n_test]]
    for name, part in (("train", chosen[:n_train]), ("test", chosen[n_train:])):
        (out / name).mkdir(parents=True, exist_ok=True)
        for image_id in part:
            (out / name / image_id).symlink_to((DSB / image_id).resolve(), target_is_directory=True)
    return out / "train", out / "test"


def config(model: str, budget_s: float, unet_base: int, encoder_weights: str) -> RunConfig:
    values = {
        "task": "instances", "model.name": model, "data.patch_size": 128, "data.samples_per_epoch": 64,
        "train.batch_size": 4, "train.lr": 1e-3, "train.epochs": 10_000, "train.time_budget_s": budget_s,
        "train.budget_clock": "cpu", "train.scheduler": "cosine-time", "train.warmup_epochs": 0,
        "train.val_every": 10_000, "train.overlays": 2, "train.device": "cpu", "inference.tile_size": 256,
    }
    if model == "unet":
        values.update({"model.depth": 5, "model.base_channels": unet_base, "model.norm": "batch"})
    elif encoder_weights:
        values.update({"model.encoder_weights": encoder_weights, "model.freeze_encoder_epochs": 1})
    else:
        values["model.init"] = "he"  # no batch norm in VGG11: from scratch it needs He-scaled weights
    return apply_overrides(RunConfig(), values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="CPU seconds of training per network")
    parser.add_argument("--train", type=int, default=60, help="training images")
    parser.add_argument("--test", type=int, default=20, help="held-out images")
    parser.add_argument("--unet-base", type=int, default=64, help="U-Net first-level width (paper: 64)")
    parser.add_argument("--models", nargs="+", default=["ternaus11", "unet"], choices=["ternaus11", "unet"])
    parser.add_argument("--encoder-weights", default="", help="torchvision VGG11 state dict for ternaus11")
    parser.add_argument("--out", default="runs/bench_ternaus")
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    if not DSB.is_dir():
        print(f"{DSB} not found: this benchmark needs the shared DSB 2018 images")
        return 1
    torch.set_num_threads(1)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    train_dir, test_dir = subset(out / "data", args.train, args.test)
    results = []
    for model in args.models:
        run_config = config(model, args.budget, args.unet_base, args.encoder_weights)
        started = time.monotonic()
        result = fit(run_config, train_dir, out / model, test_dir, progress=False)
        with torch.device("meta"):
            parameters = sum(p.numel() for p in build_model(apply_overrides(
                run_config, {"model.in_channels": 3, "model.out_channels": 3}).model).parameters())
        row = {"model": model, "parameters": parameters, "epochs": len(result.history),
               "patches": int(round(sum(r["patches_per_s"] * r["train_seconds"] for r in result.history))),
               "wall_s": round(time.monotonic() - started, 1), **held_out_scores(result, ("dice", "dsb_score", "ap50"))}
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nDSB subset ({args.train} train / {args.test} test images <= {MAX_SIDE} px), "
          f"{args.budget:.0f} CPU-s of training each on 1 thread")
    print_table(results, ("model", "model", 10), [("parameters", "params", 11, ","), ("patches", "patches", 8, ""),
                                                  ("test_dice", "Dice", 7, ".3f")] + SCORE_COLUMNS)
    (out / "results.json").write_text(json.dumps({"budget_cpu_s": args.budget, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
