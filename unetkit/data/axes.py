"""Pick the planes a network reads from a microscopy array whose axes are named (TCZYX and friends).

Microscopy files hold more than one 2D image: time points (T), focal planes (Z), channels (C, or S for
the samples of an RGB page). A :class:`Selection` says which of them to use — channels by index or by
name, one time point, one plane — and :func:`select` applies it, returning the project's layout:
``(C, Y, X)`` for 2D networks, ``(C, Z, Y, X)`` for 3D ones. Whatever is ambiguous is an error that
names the axes found and the option that resolves it, e.g.::

    cells.ome.tif: axes TCYX, shape (5, 2, 64, 64): 5 time points (T); choose one with --time N (0..4)

The selection in force is set by :func:`use_selection`, so the readers in
``unetkit.data.io`` apply it without every caller passing it through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from unetkit.errors import InputError

# tifffile's axis letters: T time, C channel, S sample (RGB), Z depth, Y/X plane, Q/I/... unknown.
KNOWN_AXES = "TCSZYX"


@dataclass(frozen=True)
class Selection:
    """Which planes of a multi-dimensional image a network reads (empty: the file as it is)."""

    channels: tuple[int | str, ...] = ()  # channel indices or names (OME channel names); () = all
    axes: str = ""  # the file's axis letters when its metadata lacks or misnames them, e.g. "TYX"
    time: int | None = None  # time point to read from a T axis
    plane: int | None = None  # Z plane to read for a 2D network

    @property
    def empty(self) -> bool:
        return not self.channels and not self.axes and self.time is None and self.plane is None

    @classmethod
    def from_values(cls, channels: Sequence[int | str] | str | None = None, axes: str | None = None,
                    time: int | None = None, plane: int | None = None) -> Selection:
        """Build from CLI/config values: ``channels`` "1", "DAPI", "0,2" or a list; time/plane -1 = none."""
        for name, value in (("time", time), ("plane", plane)):
            if value is not None and int(value) < -1:
                raise InputError(f"--{name} {value}: expected an index of 0 or more (-1: none)")
        return cls(parse_channels(channels), (axes or "").upper(),
                   None if time is None or time < 0 else int(time),
                   None if plane is None or plane < 0 else int(plane))


def parse_channels(value: Sequence[int | str] | str | None) -> tuple[int | str, ...]:
    """``"1"`` -> (1,), ``"DAPI,GFP"`` -> ("DAPI", "GFP"), ``[0, "2"]`` -> (0, 2); digits mean indices."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    parsed: list[int | str] = []
    for item in items:
        text = str(item).strip()
        if text:
            parsed.append(int(text) if text.lstrip("-").isdigit() else text)
    return tuple(parsed)


# A process-wide setting rather than a context variable: training reads images in worker threads
# (and forked DataLoader workers), which must see the selection the run was started with.
_ACTIVE: list[Selection] = []


def active_selection() -> Selection:
    """The selection set by the innermost :func:`use_selection` (empty outside any)."""
    return _ACTIVE[-1] if _ACTIVE else Selection()


@contextlib.contextmanager
def use_selection(selection: Selection) -> Iterator[Selection]:
    """Make ``selection`` apply to every image read (in any thread) inside the ``with`` block."""
    _ACTIVE.append(selection)
    try:
        yield selection
    finally:
        for i in range(len(_ACTIVE) - 1, -1, -1):  # this entry, even if another thread set one since
            if _ACTIVE[i] is selection:
                del _ACTIVE[i]
                break


def _describe(source: str, axes: str, shape: tuple[int, ...]) -> str:
    return f"{source}: axes {axes}, shape {tuple(shape)}"


def resolve_axes(shape: tuple[int, ...], axes: str, override: str, source: str) -> tuple[tuple[int, ...], str]:
    """The axes to use: the file's own, or ``override`` (--axes) for all axes or for those longer than 1."""
    if not override:
        return shape, axes
    if len(override) == len(shape):
        return shape, override
    squeezed = tuple(n for n in shape if n > 1)
    if len(override) == len(squeezed):
        return squeezed, override
    raise InputError(
        f"{_describe(source, axes, shape)}: --axes {override} names {len(override)} axes but the image has "
        f"{len(shape)} ({len(squeezed)} longer than 1); give one letter per axis from {KNOWN_AXES}"
    )


def _channel_index(wanted: int | str, names: Sequence[str], count: int, where: str) -> int:
    if isinstance(wanted, int):
        if not -count <= wanted < count:
            raise InputError(f"{where}: channel {wanted} requested but the image has {count} channel(s) "
                             f"(0..{count - 1}{'; names ' + ', '.join(names) if names else ''}); fix --channel")
        return wanted % count
    matches = [i for i, name in enumerate(names) if name.lower() == wanted.lower()]
    if not matches:
        known = ", ".join(f"{i}={n}" for i, n in enumerate(names)) if names else "none stored in the file"
        raise InputError(f"{where}: no channel named '{wanted}' (channel names: {known}); use --channel with "
                         "a name from that list or an index")
    return matches[0]


def select(array: np.ndarray, axes: str, selection: Selection, channel_names: Sequence[str] = (),
           spatial_dims: int = 2, source: str = "image", full_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Apply ``selection`` to ``array`` with axis letters ``axes``; returns (C, Y, X) or (C, Z, Y, X).

    ``array`` may be a lazy array (zarr): it is indexed before it is read, so only the chosen plane of a
    long time series is loaded. Length-1 axes other than Y/X are dropped first; S (RGB samples) counts
    as channels. Raises :class:`InputError` naming the axes and the option to use when a T, Z (for a
    2D net) or unknown axis is left with more than one entry (``full_shape``: the shape those messages
    name when ``array`` is a box of a larger image).
    """
    shape, axes = resolve_axes(tuple(array.shape), axes.upper(), selection.axes, source)
    where = _describe(source, axes, full_shape or shape)
    if len(set(axes)) != len(axes) or "Y" not in axes or "X" not in axes:
        raise InputError(f"{where}: the axes must name Y and X once each; pass --axes, e.g. --axes CYX")
    array = array.reshape(shape) if tuple(array.shape) != shape else array
    axes = axes.replace("S", "C") if "C" not in axes else axes
    index: list[int | slice] = []
    kept = ""
    for letter, length in zip(axes, shape, strict=True):
        if letter == "T":
            index.append(_pick(selection.time, length, where, "--time",
                               f"{length} time points (T); choose one with --time N (0..{length - 1})"))
            continue
        if letter == "Z" and spatial_dims == 2:
            index.append(_pick(selection.plane, length, where, "--plane",
                               f"{length} planes (Z) but the network is 2D; choose one with --plane N "
                               f"(0..{length - 1}) or train a 3D model (--model unet3d)"))
            continue
        if letter in "CZYX":
            index.append(slice(None))
            kept += letter
            continue
        if length > 1:
            raise InputError(f"{where}: axis '{letter}' (length {length}) has no known meaning; name the axes "
                             f"with --axes (letters {KNOWN_AXES}), e.g. --axes {'T' + axes[1:]}")
        index.append(0)
    if selection.time is not None and "T" not in axes:
        raise InputError(f"{where}: --time given but the image has no time axis (T)")
    if selection.plane is not None and "Z" not in axes:
        raise InputError(f"{where}: --plane given but the image has no Z axis")
    data = np.asarray(array[tuple(index)])
    wanted_axes = "C" + kept_spatial_axes(spatial_dims)
    if spatial_dims == 3 and selection.plane is not None:
        raise InputError(f"{where}: --plane picks one Z plane for a 2D network; a 3D network reads every plane")
    if spatial_dims == 3 and "Z" not in kept:
        raise InputError(f"{where}: no Z axis for a 3D network; name it with --axes (e.g. --axes ZYX)")
    if "C" not in kept:
        data, kept = data[None], "C" + kept
    data = np.moveaxis(data, [kept.index(a) for a in wanted_axes], range(len(wanted_axes)))
    if selection.channels:
        count = data.shape[0]
        names = list(channel_names) if len(channel_names) == count else []
        picks = [_channel_index(c, names, count, where) for c in selection.channels]
        data = data[picks]
    return np.ascontiguousarray(data)


def kept_spatial_axes(spatial_dims: int) -> str:
    """Axis letters of the spatial part of :func:`select`'s result: "YX" or "ZYX"."""
    return "ZYX" if spatial_dims == 3 else "YX"


def selection_of(data_config) -> Selection:
    """The selection stored in a run's ``data`` config (``channels``, ``axes``, ``time``, ``plane``)."""
    return Selection.from_values(getattr(data_config, "channels", None), getattr(data_config, "axes", ""),
                                 getattr(data_config, "time", -1), getattr(data_config, "plane", -1))


def merged(base: Selection, override: Selection) -> Selection:
    """``base`` (e.g. the checkpoint's) with the fields that ``override`` (the command line) sets."""
    return Selection(override.channels or base.channels, override.axes or base.axes,
                     base.time if override.time is None else override.time,
                     base.plane if override.plane is None else override.plane)


def _pick(chosen: int | None, length: int, where: str, option: str, when_many: str) -> int:
    """The index along a time or plane axis: the chosen one (checked against ``length``), else 0 when
    the axis has one entry; several entries and no choice is an error (``when_many``)."""
    if chosen is None:
        if length > 1:
            raise InputError(f"{where}: {when_many}")
        return 0
    if not 0 <= chosen < length:
        raise InputError(f"{where}: {option} {chosen} is outside 0..{length - 1}")
    return chosen
