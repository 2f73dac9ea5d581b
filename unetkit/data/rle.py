"""Run-length encoding of the 2018 Data Science Bowl (Kaggle) and its submission CSV files.

Pixels are numbered column-major from 1: down the first column, then down the second, and so on (a
3 x 3 image numbers (row 0, col 0) = 1, (row 1, col 0) = 2, (row 0, col 1) = 4, (row 0, col 2) = 7).
A mask is written as space-separated ``start length`` pairs of its runs, e.g. the mask with pixels
(0, 0), (1, 0) and (0, 2) is ``"1 2 7 1"``. A submission has the header ``ImageId,EncodedPixels`` and
one row per object; an image without objects has one row with an empty ``EncodedPixels``.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np

from unetkit.data.formats import extensions
from unetkit.errors import InputError
from unetkit.safety.atomic import atomic_path

SUBMISSION_HEADER = ("ImageId", "EncodedPixels")
LABEL_FILE_EXTENSIONS = extensions("labels")  # unetkit.data.formats
# File-name endings removed to get the ImageId: "abc123_labels.tif" -> "abc123".
ID_SUFFIXES = ("_labels", "_label", "_instances", "_prediction", "_pred", "_mask")


def _runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values of a 1D array: (start indices 0-based, lengths, values)."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    return starts, lengths, flat[starts]


def _format(starts: np.ndarray, lengths: np.ndarray) -> str:
    """'s1 l1 s2 l2 ...' with 1-based starts."""
    pairs = np.stack([starts + 1, lengths], axis=1).ravel()
    return " ".join(map(str, pairs.tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle RLE of a 2D boolean ``mask`` (H, W); an empty mask gives ``""``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"RLE encodes 2D masks (H, W); got shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        return ""
    starts, lengths, values = _runs(flat)
    return _format(starts[values], lengths[values])


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of ``shape`` (H, W) from a Kaggle RLE string (empty or blank string: empty mask)."""
    height, width = (int(v) for v in shape)
    tokens = str(rle).split()
    try:
        numbers = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError as error:
        raise InputError(f"RLE {rle[:60]!r}: expected integers 'start length ...' ({error})") from error
    if numbers.size % 2:
        raise InputError(f"RLE {rle[:60]!r}: odd number of values; expected 'start length' pairs")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    size = height * width
    if numbers.size and (starts.min() < 0 or lengths.min() < 1 or (starts + lengths).max() > size):
        raise InputError(
            f"RLE {rle[:60]!r}: runs must have starts >= 1, lengths >= 1 and end within the "
            f"{height} x {width} = {size} pixels of the image; is the image shape right?"
        )
    # +1 at each run start, -1 after each run end; the running sum is 1 inside runs.
    steps = np.zeros(size + 1, dtype=np.int32)
    np.add.at(steps, starts, 1)
    np.add.at(steps, starts + lengths, -1)
    coverage = np.cumsum(steps[:-1])
    if coverage.size and coverage.max() > 1:
        raise InputError(f"RLE {rle[:60]!r}: runs overlap; each pixel may appear once")
    return coverage.astype(bool).reshape((height, width), order="F")


def labels_to_rles(labels: np.ndarray) -> list[str]:
    """One RLE per object of the 2D label image ``labels`` (H, W), in increasing id order.

    All objects are encoded in one pass over the column-major pixels (runs of equal id), not one pass
    per object: a 1000 x 1000 image with 400 nuclei costs one scan instead of 400.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"labels of shape {labels.shape} and dtype {labels.dtype}; expected integer (H, W)")
    flat = labels.ravel(order="F")
    if flat.size == 0:
        return []
    starts, lengths, values = _runs(flat)
    keep = values > 0
    starts, lengths, values = starts[keep], lengths[keep], values[keep]
    if values.size == 0:
        return []
    order = np.argsort(values, kind="stable")  # by id, runs of one id stay in pixel order
    starts, lengths, values = starts[order], lengths[order], values[order]
    bounds = np.flatnonzero(np.diff(values)) + 1
    return [_format(s, n) for s, n in zip(np.split(starts, bounds), np.split(lengths, bounds), strict=True)]


def rles_to_labels(rles: list[str], shape: tuple[int, int]) -> np.ndarray:
    """Label image (H, W) int32 with object ``i + 1`` from ``rles[i]`` (empty strings are skipped).

    Objects may not overlap (the competition's rule); an overlap raises an InputError naming both.
    """
    labels = np.zeros(tuple(int(v) for v in shape), dtype=np.int32)
    next_id = 1
    for index, rle in enumerate(rles):
        if not str(rle).strip():
            continue
        mask = rle_decode(rle, shape)
        clash = labels[mask]
        if clash.any():
            raise InputError(
                f"RLE number {index + 1} overlaps object {int(clash[clash > 0][0])}; objects must not overlap"
            )
        labels[mask] = next_id
        next_id += 1
    return labels


def image_id(path: str | Path) -> str:
    """ImageId of a prediction file: its stem without a known suffix ("abc_labels.tif" -> "abc")."""
    stem = Path(path).name
    for ext in LABEL_FILE_EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    for suffix in ID_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _label_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(LABEL_FILE_EXTENSIONS))


def _read_2d_labels(path: Path) -> np.ndarray:
    """A 2D label image; a volume is named as such (the reader's hint about --plane is not an option of submit)."""
    from unetkit.data.io import read_labels, tiff_pages

    try:
        return read_labels(path)
    except InputError:
        pages = 1
        if path.suffix.lower() in (".tif", ".tiff"):
            with contextlib.suppress(InputError):  # a corrupt file: the reader's own message stands
                pages = tiff_pages(path)
        if pages > 1:
            raise InputError(f"{path}: a volume of {pages} pages; a DSB 2018 submission encodes 2D label images "
                             "only") from None
        raise


def is_submission(path: str | Path) -> bool:
    """Whether ``path`` is a submission CSV (its first line the header ``ImageId,EncodedPixels``): one that
    ``unetkit submit`` may replace with a new one."""
    try:
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return header is not None and tuple(h.strip() for h in header) == SUBMISSION_HEADER


def write_submission(pred_dir: str | Path, out_csv: str | Path) -> dict[str, int]:
    """Write the Kaggle CSV for every label image (.tif/.tiff/.png) in ``pred_dir``, or in its ``labels/`` (the
    folder ``unetkit predict`` writes) when ``pred_dir`` holds none; creates the CSV's folder. ``out_csv`` must end
    .csv and may replace only an earlier submission.

    Returns counts ``{"images": .., "objects": .., "rows": ..}``. Label files are read with
    :func:`unetkit.data.io.read_labels` (2D integer ids, 0 = background).
    """
    from unetkit.data.components import instance_labels
    from unetkit.safety.paths import check_new_output, check_output_file

    check_output_file(out_csv, [pred_dir])
    if Path(out_csv).suffix.lower() != ".csv":
        raise InputError(f"--out {out_csv}: a submission is a CSV file; name it .csv")
    check_new_output(out_csv, owned=is_submission, kind="an earlier submission (header ImageId,EncodedPixels)")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    files = _label_files(pred_dir)
    if not files and (pred_dir / "labels").is_dir():  # a folder written by `unetkit predict`: its labels/
        files = _label_files(pred_dir / "labels")
    if not files:
        raise InputError(
            f"{pred_dir}: no label images ({', '.join(LABEL_FILE_EXTENSIONS)}) found; point --pred at the "
            "folder of predicted instance labels (e.g. the labels written by `unetkit predict`)"
        )
    seen: dict[str, Path] = {}
    for path in files:
        name = image_id(path)
        if name in seen:
            raise InputError(
                f"{path}: ImageId '{name}' is also given by {seen[name].name}; keep one label file per image"
            )
        seen[name] = path

    out_csv = Path(out_csv)
    counts = {"images": 0, "objects": 0, "rows": 0}
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUBMISSION_HEADER)
        for name, path in seen.items():
            rles = labels_to_rles(instance_labels(_read_2d_labels(path)))  # binary masks: components, as evaluate
            for rle in rles or [""]:
                writer.writerow((name, rle))
            counts["images"] += 1
            counts["objects"] += len(rles)
            counts["rows"] += max(len(rles), 1)
    return counts


def read_submission(path: str | Path, shapes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """Label images (H, W) int32 by ImageId from a submission CSV; ``shapes`` gives each image's size.

    Every ImageId in the file must be in ``shapes``; images of ``shapes`` absent from the file are
    absent from the result too. Objects are numbered 1..N in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"submission file not found: {path}")
    rles: dict[str, list[str]] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:2]) != SUBMISSION_HEADER:
            raise InputError(f"{path}: first line must be the header 'ImageId,EncodedPixels', got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            name, rle = row[0].strip(), (row[1] if len(row) > 1 else "")
            if name not in shapes:
                raise InputError(f"{path}, line {line}: ImageId '{name}' has no shape in the given shapes")
            rles.setdefault(name, []).append(rle)
    out = {}
    for name, strings in rles.items():
        try:
            out[name] = rles_to_labels(strings, shapes[name])
        except InputError as error:
            raise InputError(f"{path}, ImageId '{name}': {error}") from error
    return out
