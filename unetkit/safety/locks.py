"""One process at a time per run or output folder: a lock file holding the owner's pid.

``train --out RUN`` and ``predict --out DIR`` hold ``RUN/.unetkit.lock`` while they run;
``predict-large --out slide.npy`` holds ``slide.npy.lock`` beside its output file. A second command into
the same folder (or output file) is refused with the owner's pid and command. A lock whose process no
longer runs on this machine (killed, crashed) is stale: it is taken over, with a note on stderr, and
temporary files the dead process left in the folder are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from unetkit.errors import InputError
from unetkit.safety.atomic import _pid_alive, ensure_folder, remove_stale_temporaries

LOCK_NAME = ".unetkit.lock"


def _owner(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None  # unreadable or half-written by a process killed while creating it: stale


def _is_live(owner: dict | None) -> bool:
    if owner is None:
        return False
    if owner.get("host") != socket.gethostname():
        return True  # a process on another machine (shared disk): cannot be checked, so it is respected
    return _pid_alive(int(owner.get("pid", -1)))


def acquire(folder: str | Path, command: str) -> Path:
    """Create the lock file of ``folder`` for this process; InputError when a live process holds it."""
    folder = ensure_folder(folder)
    return _acquire(folder / LOCK_NAME, folder, command)


def lock_path_of(output: str | Path) -> Path:
    """The lock file of an output file: ``slide.npy`` -> ``slide.npy.lock`` (beside it)."""
    output = Path(output)
    return output.with_name(f"{output.name}.lock")


def _acquire(lock: Path, folder: Path, command: str) -> Path:
    """Create ``lock`` for this process (taking over a stale one); ``folder`` is what it protects."""
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if _is_live(owner):
                raise InputError(
                    f"{folder} is in use by `unetkit {owner.get('command')}` (pid {owner.get('pid')} on "
                    f"{owner.get('host')}, since {owner.get('started')}); wait for it to finish, or write elsewhere "
                    f"(if that process is gone, delete {lock})") from None
            print(f"{folder}: taking over a stale lock of pid {(owner or {}).get('pid', '?')} (no longer running)",
                  file=sys.stderr)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(record)
        remove_stale_temporaries(lock.parent)  # files of a killed writer, never of a live one
        return lock
    raise InputError(f"{folder}: could not take the lock {lock}; another process keeps creating it")


def release(lock: Path) -> None:
    """Remove ``lock`` if this process holds it."""
    owner = _owner(lock)
    if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@contextlib.contextmanager
def folder_lock(folder: str | Path, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of ``folder`` inside the ``with`` block (``enabled=False``: a no-op, e.g. non-zero ranks)."""
    if not enabled:
        yield
        return
    created = not Path(folder).exists()
    lock = acquire(folder, command)
    try:
        yield
    finally:
        release(lock)
        if created:  # a command refused before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                Path(folder).rmdir()  # only succeeds when empty


@contextlib.contextmanager
def file_lock(output: str | Path, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``<output>.lock`` inside the ``with`` block: one writer per output file (``predict-large``)."""
    if not enabled:
        yield
        return
    output = Path(output)
    ensure_folder(output.parent)
    lock = _acquire(lock_path_of(output), output, command)
    try:
        yield
    finally:
        release(lock)
