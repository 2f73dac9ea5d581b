"""Refuse to read an image whose header asks for more memory than the machine has, before allocating it.

A TIFF header can claim any size (a 1 KB file may ask for 9 GiB); reading it whole would either exhaust
memory or fail deep inside a library. Images larger than half the physical memory are for
``predict-large``, which reads them tile by tile.
"""

from __future__ import annotations

import os
from pathlib import Path

from unetkit.errors import InputError


def physical_memory_bytes() -> int:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def check_fits_in_memory(path: str | Path, shape: tuple[int, ...], itemsize: int, share: float = 0.5) -> None:
    """InputError when an array of ``shape`` x ``itemsize`` bytes needs more than ``share`` of the memory."""
    need = itemsize
    for n in shape:
        need *= int(n)
    limit = physical_memory_bytes() * share
    if limit and need > limit:
        raise InputError(f"{Path(path)}: the image needs {need / 2**30:.1f} GiB to read whole (shape {tuple(shape)}), "
                         f"more than half of this machine's memory; use predict-large, which reads it tile by tile")
