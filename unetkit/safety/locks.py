"""One process at a time per run or output folder: a lock file holding the owner's pid.

``train --out RUN`` and ``predict --out DIR`` hold ``RUN/.unetkit.lock`` while they run;
``predict-large --out slide.npy`` holds ``slide.npy.lock`` beside its output file. A second command into
the same folder (or output file) is refused with the owner's pid and command. A lock whose process no
longer runs on this machine (killed, crashed) is stale: it is taken over, with a note on stderr, and
temporary files the dead process left in the folder are removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from unetkit.errors import InputError
from unetkit.safety.atomic import _pid_alive, ensure_folder, remove_stale_temporaries
from unetkit.safety.paths import PREDICTION_FOLDERS

try:
    import fcntl  # POSIX: the kernel lock beside the record
except ImportError:  # pragma: no cover - Windows: the record alone
    fcntl = None  # type: ignore[assignment]

HELD_ERRNOS = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)  # flock's "another process holds it"

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
    lock = _acquire(folder / LOCK_NAME, folder, command)
    for name in PREDICTION_FOLDERS:  # masks/, probabilities/, overlays/: where a killed writer left its files too
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            remove_stale_temporaries(folder / name)
    return lock


def lock_path_of(output: str | Path) -> Path:
    """The lock file of an output file: ``slide.npy`` -> ``slide.npy.lock`` (beside it)."""
    output = Path(output)
    return output.with_name(f"{output.name}.lock")


def _acquire(lock: Path, folder: Path, command: str) -> Path:
    """Create ``lock`` for this process (taking over a stale one); ``folder`` is what it protects.

    The lock file is also held with ``flock`` while the command runs, so that two processes starting at once
    never both take it: one holds the kernel lock and the other is refused, whatever the file says yet (it is
    written after the kernel lock is taken). A record of a live process that holds no kernel lock (an older
    unetkit) is still respected; a dead one's is written over in place, never deleted from under another."""
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for _ in range(20):
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in HELD_ERRNOS:  # another process holds it now
                os.close(fd)
                _refuse(lock, folder, _owner(lock))
            # a file system without flock (Lustre's noflock, NFS without lockd): the record alone decides, as
            # before the kernel lock was added
        if not _same_file(lock, fd):  # released (and removed) between our open and our lock: open it anew
            os.close(fd)
            continue
        owner = _owner(lock)
        if owner and _is_live(owner):  # a live process that holds no kernel lock (an older unetkit, or a test)
            os.close(fd)
            _refuse(lock, folder, owner)
        if owner:  # a record, and no process holding the kernel lock: a killed run's
            print(f"{folder}: taking over a stale lock of pid {owner.get('pid', '?')} (no longer running)",
                  file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        _HELD[str(lock)] = fd
        remove_stale_temporaries(lock.parent)  # files of a killed writer, never of a live one
        return lock
    raise InputError(f"{folder}: could not take the lock {lock}; another process keeps creating it")


_HELD: dict[str, int] = {}  # lock path -> the open file holding its kernel lock, until release


def _same_file(lock: Path, fd: int) -> bool:
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _refuse(lock: Path, folder: Path, owner: dict | None) -> None:
    who = (f"`unetkit {owner.get('command')}` (pid {owner.get('pid')} on {owner.get('host')}, since "
           f"{owner.get('started')})" if owner else "another unetkit process")
    raise InputError(f"{folder} is in use by {who}; wait for it to finish, or write elsewhere (if that process is "
                     f"gone, delete {lock})") from None


def release(lock: Path) -> None:
    """Remove ``lock`` if this process holds it (then let go of its kernel lock)."""
    fd = _HELD.pop(str(lock), None)
    owner = _owner(lock)
    if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
    if fd is not None:
        os.close(fd)


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
