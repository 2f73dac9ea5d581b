"""Range checks of command-line options that are not config keys (counts, chunk sizes).

Called at the top of a subcommand's ``run``, before any file is read or written, so that a bad value is
one line naming the option, the value and the allowed range.
"""

from __future__ import annotations

from typing import Any

from unetkit.config import plain_value
from unetkit.errors import InputError


def check_flag(option: str, value: Any) -> bool | None:
    """``value`` as a bool (numpy's ``np.bool_`` too; None stays None); anything else is refused by name:
    ``instances="no"`` is truthy in Python, and read as YAML's False by ``--set``."""
    value = plain_value(value)
    if value is None or isinstance(value, bool):
        return value
    raise InputError(f"{option}={value!r}: give True or False")


def check_int(option: str, value: int | None, minimum: int, maximum: int | None = None) -> None:
    """Refuse ``value`` outside ``[minimum, maximum]`` (None: not given, nothing to check)."""
    if value is None:
        return
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"{option} {value}: expected an integer {allowed}")
