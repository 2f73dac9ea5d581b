"""Range checks of command-line options that are not config keys (counts, chunk sizes).

Called at the top of a subcommand's ``run``, before any file is read or written, so that a bad value is
one line naming the option, the value and the allowed range.
"""

from __future__ import annotations

from unetkit.errors import InputError


def check_int(option: str, value: int | None, minimum: int, maximum: int | None = None) -> None:
    """Refuse ``value`` outside ``[minimum, maximum]`` (None: not given, nothing to check)."""
    if value is None:
        return
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"{option} {value}: expected an integer {allowed}")
