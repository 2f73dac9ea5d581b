"""Make an image's channel count match what a network expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.data.io import holds_colour
from unetkit.errors import InputError
from unetkit.notes import note_once, said

RGB_NOTE = "channels as RGB"  # said once per process, for the first file: the header read is skipped after


def is_colour(image: np.ndarray) -> bool:
    """Whether a (3, *S) image's channels differ (colour), not one gray repeated (DSB stores gray as RGB).

    Differences under 1 % of the image's range on average (JPEG chroma noise) count as gray.
    """
    span = float(image.max() - image.min())
    return span > 0 and float(np.abs(image - image.mean(axis=0)).mean()) > 0.01 * span


def match_channels(image: np.ndarray, channels: int, path: str | Path | None = None,
                   colour: bool | None = None) -> np.ndarray:
    """(C, *S) -> (channels, *S): gray is replicated to RGB, RGB averaged to gray; nothing else is guessed (a gray
    image is not copied into every marker channel of a 2- or 5-channel model).

    Mixed datasets (the DSB set has gray images stored as RGB) can then train one network. Three channels
    are averaged only when they are colours: a PNG / JPEG, an RGB TIFF (``unetkit.data.io.holds_colour``), or
    an in-memory array whose caller says so (``colour``: True for the last axis of an (H, W, 3) array, the RGB
    convention of image readers; False for a first axis, planes or a channel axis); three gray TIFF pages or a
    channel axis are refused. Any other mismatch is an error naming the file.
    """
    have = image.shape[0]
    if have == channels:
        if have == 3 and path is not None and not said(RGB_NOTE) and holds_colour(path) is False:  # the mirror
            note_once(RGB_NOTE, f"{path}: its 3 channels {_what_channels(path)} and are read as the R, G, B of "
                      "this model's images (said once, for the first such file); pick other ones with --channel")
        return image
    if have == 1 and channels == 3:  # gray as the R, G, B of a colour model (DSB stores gray images both ways)
        return np.repeat(image, channels, axis=0)
    where = f"{path}: " if path else ""
    if channels == 1 and have == 3:
        if colour is False:
            raise InputError(f"{where}its 3 channels come on the first axis of an array (planes or a channel axis, "
                             "not the (H, W, 3) of an RGB image), so they are not averaged into the model's 1 "
                             "channel; choose one (API: channels=[N], or image[N]), or give an RGB image as (H, W, 3)")
        if colour is None and path is not None and holds_colour(path) is False:
            raise InputError(f"{where}its 3 channels {_what_channels(path)}, so they are not averaged into the "
                             "model's 1 channel; choose one with --channel N (API: channels=[N]), or save the image as "
                             "a gray or RGB PNG / TIFF")
        return image[:3].mean(axis=0, keepdims=True).astype(image.dtype)
    if have == 1:  # gray for a model of 2, 4, 5 ... channels: nothing to guess them from
        raise InputError(f"{where}a gray image (1 channel) but the model expects {channels} channels; give the image "
                         f"with its {channels} channels, or repeat the gray one on purpose with --channel "
                         f"{','.join(['0'] * channels)} (API: channels=[{', '.join(['0'] * channels)}])")
    # 4 channels reach here only when they are 4 real channels (tagged alpha is dropped on reading):
    # averaging 3 of them, as before, silently discarded the 4th
    one = " (one is repeated)" if channels > 1 else ""
    raise InputError(f"{where}image has {have} channels but the model expects {channels}; choose channels with "
                     f"--channel N[,...]{one} (API: channels=[N, ...]), save the image with {channels} channel(s)"
                     f"{' (gray or RGB)' if channels in (1, 3) else ''}, or train a model on {have}-channel images")


def _what_channels(path: str | Path) -> str:
    """What is known of a file's 3 non-colour channels: a TIFF says they are not RGB; an array format (.npy,
    .zarr) says nothing of what they are."""
    from unetkit.data.formats import format_of

    if format_of(path) == "tiff":
        return "are not RGB colours (gray pages or a channel axis)"
    kind = format_of(path) or Path(path).suffix.lstrip(".")
    return f"carry no colour tag (a .{kind} array may hold colours or stains alike)"
