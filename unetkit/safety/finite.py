"""Non-finite pixels (NaN, +-Inf) in float images: named and refused, or replaced by a documented rule.

One NaN pixel would otherwise make the percentile normalisation NaN, hence every probability NaN and
the mask empty; in training the loss becomes NaN. Policies (``data.nan_policy``, ``--nan-policy``):

- ``error`` (default): refuse the image, naming the file and the count of non-finite pixels;
- ``zero``: set them to 0 in the raw image (before normalisation);
- ``nearest``: give each the value of the nearest finite pixel of its channel (Euclidean distance).

Replacements are reported on stderr with the file and the count. The policy in force is set for the
duration of a command with ``nan_policy(...)``; image loaders call ``apply_nan_policy`` (loaders run in
worker threads, which is why the setting is process-wide rather than a context variable).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from unetkit.errors import InputError

POLICIES = ("error", "zero", "nearest")
_policy = "error"


@contextlib.contextmanager
def nan_policy(name: str) -> Iterator[None]:
    """Apply policy ``name`` to every image loaded inside the ``with`` block."""
    global _policy
    if name not in POLICIES:
        raise InputError(f"nan policy '{name}': expected one of {', '.join(POLICIES)}")
    previous, _policy = _policy, name
    try:
        yield
    finally:
        _policy = previous


def apply_nan_policy(image: np.ndarray, where: str | Path, policy: str | None = None,
                     quiet: bool = False) -> np.ndarray:
    """``image`` (C, *S) with non-finite values refused or replaced; integer images pass unchanged."""
    if not np.issubdtype(image.dtype, np.floating) and not np.issubdtype(image.dtype, np.complexfloating):
        return image
    policy = policy or _policy
    bad = ~np.isfinite(image)
    count = int(bad.sum())
    if count == 0:
        return image
    if policy == "error":
        raise InputError(f"{where}: {count} non-finite pixel value(s) (NaN/Inf) of {image.size}; fix the image, "
                         "or choose --nan-policy zero|nearest (training: --set data.nan_policy=zero|nearest)")
    out = np.array(image, copy=True)
    if policy == "zero":
        out[bad] = 0
    elif policy == "nearest":
        for channel in range(out.shape[0]):
            holes = bad[channel]
            if holes.all():
                raise InputError(f"{where}: channel {channel} has no finite pixel to take values from; "
                                 "use --nan-policy zero or fix the image")
            if holes.any():
                nearest = ndi.distance_transform_edt(holes, return_distances=False, return_indices=True)
                out[channel] = out[channel][tuple(nearest)]
    else:
        raise InputError(f"nan policy '{policy}': expected one of {', '.join(POLICIES)}")
    if not quiet:
        print(f"{where}: replaced {count} non-finite pixel value(s) ({policy})", file=sys.stderr)
    return out
