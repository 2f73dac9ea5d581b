"""Which exceptions are a user's to fix, and their one-line message.

The CLI prints ``unetkit <command>: error: <message>`` and exits with code 2 for these; any other
exception is a bug in unetkit and keeps its traceback. ``--debug`` (or ``UNETKIT_DEBUG=1``) shows the
traceback of every error.
"""

from __future__ import annotations

import errno
import os

from unetkit.errors import InputError

DEBUG_ENV = "UNETKIT_DEBUG"

# OSError numbers that come from the user's paths or disk, with the fix to suggest
_OS_FIXES = {
    errno.ENOSPC: "free disk space or write to another disk",
    errno.EFBIG: "the file system refuses files this large: write to another disk",
    errno.EDQUOT: "disk quota exceeded: free space or write elsewhere",
    errno.EROFS: "the file system is read-only: choose a writable --out",
    errno.EACCES: "permission denied: choose a path you may write/read",
    errno.EPERM: "operation not permitted: choose a path you may write/read",
    errno.EEXIST: "it exists already: choose another name or remove it",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder where a file is expected",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EINVAL: "the path is not valid on this file system",
}


def debug_requested(flag: bool = False) -> bool:
    """--debug given or UNETKIT_DEBUG set to a non-empty value other than 0."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def user_error_message(error: BaseException) -> str | None:
    """One-line message for an error in the user's input, paths, disk or memory; None for a bug."""
    if isinstance(error, InputError):
        return _one_line(error)
    if isinstance(error, OSError):
        if error.errno is None and isinstance(error, (FileNotFoundError, NotADirectoryError, FileExistsError)):
            return _one_line(error)  # raised by unetkit with its own message
        fix = _OS_FIXES.get(error.errno)
        said = error.strerror or " ".join(str(arg) for arg in error.args)
        if fix is None and error.errno is None and " requested and " in said and " written" in said:
            fix = _OS_FIXES[errno.ENOSPC]  # tifffile's short write, without an errno: the disk filled up
        if fix is None:
            return None
        where = f"{error.filename}: " if error.filename else ""
        return _one_line(f"{where}{said}; {fix}")
    if isinstance(error, MemoryError):
        return ("out of memory (an image, tile or network larger than this machine holds); use smaller tiles "
                "(--tile), a smaller batch (--batch), predict-large for huge images, or a smaller network")
    try:
        from PIL import Image

        if isinstance(error, Image.DecompressionBombError):
            return _one_line(f"{error}; the image is too large to read whole: use predict-large with a .npy/.tif")
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    try:
        import torch

        if isinstance(error, torch.OutOfMemoryError):
            return "the device ran out of memory; use smaller tiles (--tile), a smaller batch or --device cpu"
    except ImportError:  # pragma: no cover
        pass
    return None
