"""`unetkit tune-cpu`: time the CPU fast paths for a configuration now, show the cached choices, or clear them."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune-cpu", help="choose CPU conv kernels by timing them on this machine (cached; --clear to reset)",
        description="Example: unetkit tune-cpu --set model.base_channels=32 --set data.patch_size=256. "
                    "Training and prediction tune themselves at first use; this does it ahead of time for the "
                    "nets of one configuration and prints this machine's table.")
    parser.add_argument("--recipe", default="default", help="default | paper: the configuration to tune for")
    parser.add_argument("--config", help="YAML file of config values, as for `unetkit train`")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set model.base_channels=32 (repeatable)")
    parser.add_argument("--show", action="store_true", help="only print the cached table, time nothing")
    parser.add_argument("--clear", action="store_true", help="delete the cache (every machine's table) and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.cpu import autotune
    from unetkit.cpu.info import describe

    if args.clear:
        print(f"removed {autotune.clear()} cached decision(s) from {autotune.cache_path()}")
        return 0
    if args.show:
        table = autotune.load_table().get(autotune.machine_key(), {})
    else:
        from unetkit.recipes import resolve_config
        from unetkit.training.cpu_tuning import tune_for_config

        if not autotune.env_allows():
            print(f"note: {autotune.ENV_SWITCH}=0 is set: nothing is timed")
        table = tune_for_config(resolve_config(args.recipe, args.config, args.overrides))
    print(f"{describe()}\n{autotune.machine_key()}\ncache: {autotune.cache_path()}")
    if not table:
        print("no decisions cached for this machine yet")
        return 0
    width = max(len(key) for key in table)
    # best call of each path; the speed-up of the worse of two rounds (what decided)
    print(f"{'layer shape class':<{width}}  {'fast ms':>9s}  {'plain ms':>9s}  {'speed-up':>8s}  runs")
    for key in sorted(table):
        row = table[key]
        chosen = "fast path" if row["fast"] else "plain PyTorch" + (f" ({row['note']})" if row.get("note") else "")
        print(f"{key:<{width}}  {row['fast_ms']:9.2f}  {row['plain_ms']:9.2f}  {row['speedup']:7.2f}x  {chosen}")
    return 0
