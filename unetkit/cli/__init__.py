"""The `unetkit` command: one module per subcommand, discovered automatically.

Each module in this package defines ``add_parser(subparsers)`` which registers its subcommand and sets
``run=<function(args) -> int>`` as a default. Modules keep heavy imports (torch) inside ``run`` so that
``unetkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from unetkit.cli._progress import configure_progress
from unetkit.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand module found in this package."""
    parser = argparse.ArgumentParser(
        prog="unetkit", description="U-Net biomedical image segmentation: train, predict, evaluate."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    configure_progress(getattr(args, "quiet", False))  # --quiet silences every bar; logs get few lines
    try:
        return int(args.run(args) or 0)
    except (InputError, FileNotFoundError, NotADirectoryError) as error:
        print(f"unetkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unetkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
