"""Notes to the user on stderr that a command may meet again and again (a file read by every epoch, every
process): said once per process for their key."""

from __future__ import annotations

import sys

_SAID: set[str] = set()


def said(key: str) -> bool:
    """Whether the note of ``key`` was printed already (so that the check behind it can be skipped)."""
    return key in _SAID


def note_once(key: str, line: str) -> None:
    """Print ``note: <line>`` on stderr the first time ``key`` (e.g. a file's path and what is said of it) comes."""
    if key in _SAID:
        return
    _SAID.add(key)
    print(f"note: {line}", file=sys.stderr)
