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
from unetkit.safety.errors import debug_requested, user_error_message


def _version() -> str:
    """The installed version, read from the package metadata (importing unetkit would import torch)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unetkit")
    except PackageNotFoundError:
        return "(not installed)"


class OneLineParser(argparse.ArgumentParser):
    """An option the command does not know, or a value it cannot take, is one line naming the command, the nearest
    option and where the options are listed (argparse prints the whole usage first)."""

    given: list[str] = []  # the command line being parsed: a required option's typo is named too

    def error(self, message: str):  # type: ignore[override]
        import difflib

        options = [option for action in self._actions for option in action.option_strings]
        unknown = message.partition("unrecognized arguments: ")[2].split() or [
            item for item in self.given if item.startswith("--") and item.partition("=")[0] not in options]
        near = [(item.partition("=")[0], difflib.get_close_matches(item.partition("=")[0], options, n=1))
                for item in unknown]
        hint = "; ".join(f"{item}: did you mean {match[0]}?" for item, match in near if match)
        self.exit(2, f"{self.prog}: error: {message}{'; ' + hint if hint else ''} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand module found in this package."""
    parser = OneLineParser(
        prog="unetkit", description="U-Net biomedical image segmentation: train, predict, evaluate."
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: environment variable UNETKIT_DEBUG=1)")
    parser.add_argument("--version", action="version", version=f"unetkit {_version()}")
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
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the subcommand
    parser = build_parser()
    OneLineParser.given = argv
    args, unknown = parser.parse_known_args([item for item in argv if item != "--debug"])
    if unknown:  # named by the subcommand's own parser, with the nearest of its options
        command = parser._subparsers._group_actions[0].choices[args.command]  # noqa: SLF001 - argparse keeps it there
        options = {option for action in command._actions for option in action.option_strings}  # noqa: SLF001
        misplaced = [item for item in unknown if item.partition("=")[0] in options]
        if misplaced:  # `unetkit --quiet predict ...`: an option of the command given before it
            command.exit(2, f"{command.prog}: error: {' '.join(misplaced)} is an option of the command: give it after "
                            f"the command name ({command.prog} {misplaced[0]} ...)\n")
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.debug = debug
    configure_progress(getattr(args, "quiet", False))  # --quiet silences every bar; logs get few lines
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"unetkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `unetkit models | head`: the reader left; nothing more to say, and no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again
        return 0
    except Exception as error:  # user errors: one line, exit 2; bugs keep their traceback (unetkit.safety.errors)
        message = user_error_message(error)
        if message is None or debug_requested(args.debug):
            raise
        print(f"unetkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
