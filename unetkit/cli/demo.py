"""`unetkit demo`: the whole journey on synthetic nuclei in a few CPU minutes."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="generate synthetic nuclei, train, predict, evaluate (a few minutes on a CPU)",
        description="Runs the main job on an embedded default and prints where the outputs are.")
    parser.add_argument("--out", default="runs/demo", help="demo folder (cleared if it holds an earlier demo)")
    parser.add_argument("--time-budget", type=float, default=240.0, help="training seconds (default 240)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (>= 0)")
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], default="binary",
                        help="binary: nuclei (default); multiclass: cells with cytoplasm and nucleus; "
                             "regression: virtual staining, compared with identity and Gaussian baselines")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.demo import describe, run_demo

    metrics = run_demo(args.out, args.time_budget, args.seed, progress=not args.quiet, task=args.task)
    print(describe(args.task, metrics, args.out))
    return 0
