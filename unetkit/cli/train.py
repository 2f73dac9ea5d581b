"""`unetkit train`: train a U-Net on a dataset folder into a run folder."""

from __future__ import annotations

import argparse
import os

from unetkit.cli.selection import add_selection_arguments, selection_overrides


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network (recipes: default, paper)",
        description="Example: unetkit train --data data/train --val data/val --out runs/nuclei "
                    "--set train.epochs=30 --set model.base_channels=32")
    parser.add_argument("--data", help="training dataset folder (images/+masks/, DSB, or ISBI stack)")
    parser.add_argument("--val", help="validation folder (default: a fixed-seed split, --val-fraction)")
    parser.add_argument("--val-fraction", type=float, help="share of --data held out (default 0.15)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, metrics.csv, curves.png")
    parser.add_argument("--task", choices=["binary", "instances", "multiclass", "regression"],
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
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--time-budget", type=float, help="stop training after this many seconds")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set train.lr=0.01 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_selection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from unetkit.data.axes import selection_of, use_selection
    from unetkit.errors import InputError
    from unetkit.recipes import resolve_config
    from unetkit.training.loop import RESUMABLE_OVERRIDES, fit

    shortcuts = []
    if args.task:
        shortcuts.append(f"task={args.task}")
    if args.layout:
        shortcuts.append(f"data.layout={args.layout}")
    if args.model:
        shortcuts.append(f"model.name={args.model}")
    if args.encoder_weights:
        shortcuts.append(f"model.encoder_weights={args.encoder_weights}")
    if args.freeze_encoder_epochs is not None:
        shortcuts.append(f"model.freeze_encoder_epochs={args.freeze_encoder_epochs}")
    if args.class_names:
        names = [name.strip() for name in args.class_names.split(",") if name.strip()]
        shortcuts.append(f"data.class_names={json.dumps(names)}")  # JSON is YAML: names may hold spaces
    if args.val_fraction is not None:
        shortcuts.append(f"data.val_fraction={args.val_fraction}")
    if args.epochs is not None:
        shortcuts.append(f"train.epochs={args.epochs}")
    if args.time_budget is not None:
        shortcuts.append(f"train.time_budget_s={args.time_budget}")
    if args.device:
        shortcuts.append(f"train.device={args.device}")
    overrides = shortcuts + selection_overrides(args) + args.overrides
    if args.resume:
        resumable = {}
        for item in overrides:
            key, _, value = item.partition("=")
            if key not in RESUMABLE_OVERRIDES:
                raise InputError(f"--resume keeps the run's config; only {', '.join(RESUMABLE_OVERRIDES)} may change")
            resumable[key] = value
        with _run_selection(os.path.join(args.out, "config.yaml")):
            result = fit(None, None, args.out, resume=True, resume_overrides=resumable, progress=not args.quiet)
    else:
        if not args.data:
            raise InputError("--data is required (a dataset folder), unless --resume")
        config = resolve_config(args.recipe, args.config, overrides)
        with use_selection(selection_of(config.data)):  # channels/time/plane of microscopy files
            result = fit(config, args.data, args.out, val_dir=args.val, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only the first process reports
        print(f"best epoch {result.best_epoch}: score {result.best_score:.4f}; run folder {result.run_dir}")
    return 0


def _run_selection(config_path: str):
    """The channel/time/plane selection of a run folder being resumed (none when it has no config yet)."""
    from unetkit.config import load_config
    from unetkit.data.axes import Selection, selection_of, use_selection

    selection = selection_of(load_config(config_path).data) if os.path.isfile(config_path) else Selection()
    return use_selection(selection)
