"""Atomic file writes: a temporary name in the target's folder, renamed over the target when complete.

A process killed mid-write leaves the previous file (or no file) under the final name, never a
truncated one; the temporary file it leaves is named ``.<name>.<pid>.tmp<suffix>`` and removed by
``remove_stale_temporaries`` the next time a command writes into that folder. The suffix is kept so
that libraries choosing the format by extension (Pillow, tifffile, nibabel) still see ``.png`` /
``.tif``; compound suffixes stay whole (``.x.nii.gz.<pid>.tmp.nii.gz``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from unetkit.errors import InputError

# .<name>.<pid>.tmp<suffix>, e.g. ".img_0.png.4242.tmp.png", ".v.nii.gz.4242.tmp.nii.gz"
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]*){0,2}$")
COMPOUND_SUFFIXES = (".nii.gz", ".ome.tiff", ".ome.tif")  # kept whole: the format is read from both parts


def _suffix(path: Path) -> str:
    name = path.name.lower()
    compound = next((s for s in COMPOUND_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)
    return path.name[-len(compound):] if compound else path.suffix


def temporary_path(path: str | Path) -> Path:
    """The temporary name ``path`` is written under before the rename (same folder, same suffix)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{_suffix(path)}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed.

    Example: ``with atomic_path(out / "mask.png") as tmp: image.save(tmp, format="PNG")``.
    """
    path = Path(path)
    ensure_folder(path.parent)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError) and not error.filename:  # a full disk met through a file handle: say where
            error.filename = str(path)
        raise


def ensure_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents); a file in the way is an InputError naming it."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise InputError(f"{part} is a file, not a folder; choose an output path outside it")
            break
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_ours(name: str, match: re.Match) -> bool:
    """True when ``name`` is what ``temporary_path`` makes: its ending repeats the inner name's own
    (``.img.png.42.tmp.png``), which ``.thesis.1999.tmp.txt`` or ``.budget.2024.tmp.xlsx`` of a user does not."""
    inner = name[1:match.start(1) - 1]  # between the leading dot and ".<pid>"
    return bool(inner) and name[match.end(1) + len(".tmp"):] == _suffix(Path(inner))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by processes that no longer run; returns them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and _is_ours(entry.name, match) and entry.is_file() and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed
