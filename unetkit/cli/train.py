"""`unetkit train`: train a U-Net on a dataset folder into a run folder."""

from __future__ import annotations

import argparse
import sys

from unetkit.cli.selection import add_selection_arguments, selection_overrides
from unetkit.config import TASKS, split_override  # the task names, without importing torch
from unetkit.errors import InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network (recipes: default, paper)",
        description="Example: unetkit train --data data/train --val data/val --out runs/nuclei "
                    "--set train.epochs=30 --set model.base_channels=32")
    parser.add_argument("--data", help="training dataset folder (images/+masks/, DSB, or ISBI stack)")
    parser.add_argument("--val", help="validation folder (default: a fixed-seed split, --val-fraction)")
    parser.add_argument("--val-fraction", type=float, help="share of --data held out (default 0.15)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, metrics.csv, curves.png")
    parser.add_argument("--task", choices=TASKS,
                        help="default binary; multiclass: class-id/colour masks or one mask folder per class; "
                             "regression: images/ + targets/ (float outputs)")
    parser.add_argument("--class-names", help="multiclass: comma-separated class names, background first "
                        "(class-folders: the mask folder names)")
    parser.add_argument("--recipe", default="default", help="default (modern) | paper (Ronneberger 2015)")
    parser.add_argument("--config", help="YAML file of config values (sections data/model/loss/train/...)")
    parser.add_argument("--layout", help="auto | folders | dsb | isbi-stack | class-folders")
    parser.add_argument("--model", help="unet (default) | unet3d | ternaus11")
    parser.add_argument("--encoder-weights", help="ternaus11: torchvision VGG11 state dict file (local path)")
    parser.add_argument("--freeze-encoder-epochs", type=int, help="ternaus11: train only the decoder at first")
    parser.add_argument("--init-weights", help="fine-tune: start from a checkpoint, run folder or packaged model "
                        "(e.g. nuclei); its network and normalisation are kept (train.init_weights)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--nan-policy", choices=["error", "zero", "nearest"],
                        help="NaN/Inf pixels: error (refuse, default), zero, or nearest finite pixel (data.nan_policy)")
    parser.add_argument("--time-budget", type=float, help="stop training after this many seconds; the learning "
                        "rate then anneals over the budget (cosine-time) unless train.scheduler is set")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set train.lr=0.01 (repeatable)")
    parser.add_argument("--no-autotune", action="store_true",
                        help="CPU: no timing of the fast conv paths on this machine (`unetkit tune-cpu`); "
                             "they run as switched (train.gemm_convs), the same on every CPU")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                        help="CPU training: bf16 autocast (~2x faster steps on CPUs with bf16 instructions,"
                             " emulated without them); auto (default): bf16 where the CPU has them")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_selection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import unetkit
    from unetkit.devices import is_first_process

    shortcuts = {"data.layout": args.layout, "model.name": args.model, "model.encoder_weights": args.encoder_weights,
                 "model.freeze_encoder_epochs": args.freeze_encoder_epochs, "data.val_fraction": args.val_fraction,
                 "data.nan_policy": args.nan_policy, "train.init_weights": args.init_weights,
                 "train.precision": args.precision}
    settings = {key: value for key, value in shortcuts.items() if value is not None}
    if args.no_autotune:
        settings["train.autotune"] = False
    if args.class_names:
        settings["data.class_names"] = [name.strip() for name in args.class_names.split(",") if name.strip()]
    for item in selection_overrides(args) + args.overrides:  # --channel/--axes/--time/--plane: data.* values
        key, value = split_override(item)
        if key in ("task", "recipe"):  # options of their own; as settings they would reach train() twice
            raise InputError(f"--set {key}={value}: give it as --{key} {value}")
        settings[key] = value  # parsed like the config's own type (unetkit.config.apply_overrides)
    try:
        result = unetkit.train(args.data, args.out, args.task, val=args.val, epochs=args.epochs, recipe=args.recipe,
                               config=args.config, time_budget_s=args.time_budget, device=args.device,
                               resume=args.resume, progress=not args.quiet, **settings)
    except KeyboardInterrupt:
        print(_interrupted(args.out), file=sys.stderr)
        return 130
    if is_first_process():  # under torchrun only the first process reports
        if any(key.startswith("val_") for row in result.history for key in row):
            print(f"best epoch {result.best_epoch}: score {result.best_score:.4f}; run folder {result.run_dir}")
        else:  # the score is the training loss, negated: say so rather than print "score -1.1"
            print(f"best epoch {result.best_epoch}: no validation images, so chosen by training loss "
                  f"({-result.best_score:.4f}); run folder {result.run_dir}")
    return 0


def _interrupted(out: str) -> str:
    """The line for Ctrl-C: where the run stands and the command that continues it."""
    from pathlib import Path

    from unetkit import checkpoint as ckpt

    last = Path(out) / "last.pt"
    if not last.is_file():
        return "unetkit train: interrupted before the first epoch ended (nothing to resume); run it again"
    try:  # last.pt is the commit point: the epoch a resume starts after
        done = f" after epoch {ckpt.load_checkpoint(last)['epoch']}"
    except Exception:  # noqa: BLE001 - a checkpoint being replaced: say less, never fail here
        done = ""
    import shlex

    return f"unetkit train: interrupted{done}; continue it with: unetkit train --out {shlex.quote(str(out))} --resume"
