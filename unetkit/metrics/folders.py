"""Folder evaluation: score a folder of predictions against the truth, per image and overall.

Pairing. Truth is a folder of label/mask images, or a dataset folder that
``unetkit.data.layouts.find_samples`` reads (``folders`` with images/ + masks/ or labels/,
``dsb`` with ``<id>/masks/*.png``, ``isbi-stack``); for multiclass also a class-folders dataset
(``unetkit.data.class_folders``: an image folder plus one binary mask folder per class, merged into
one class map per image, paired by the image's name). Predictions are image files (.png, .tif,
.tiff) in ``pred_dir`` and in its ``masks/``, ``probabilities/`` and ``labels/`` sub-folders (the
layout ``unetkit predict`` writes). Files are paired by name without extension (and without ``.ome``, as
``predict`` names its outputs: ``s.ome.tif`` pairs with ``s.tif``), after removing one
known suffix from the end of the name on both sides: ``_mask``, ``_labels``, ``_prob``, ``_pred``
(so ``cell1.png`` pairs with ``cell1_mask.png`` or ``probabilities/cell1.tif``). Files in the
sub-folders count as carrying the suffix of their folder (``masks/`` = ``_mask``,
``probabilities/`` = ``_prob``, ``labels/`` = ``_labels``). Names ending in ``_overlay`` and
non-image files (.csv, .json) are ignored. When one image has several predictions, each task takes
the first kind in its order of preference (``PREFER``).

Every truth image needs a prediction and every prediction a truth image; otherwise an InputError
names the unpaired files (at most 10).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.data.formats import extension, extensions, format_of, without_ome
from unetkit.errors import InputError
from unetkit.metrics.intervals import add_intervals, interval_key, pooled_interval
from unetkit.metrics.writers import is_evaluation_picture

PAIR_EXTENSIONS = extensions("labels") + extensions(name="nifti")  # .png .tif .tiff .nii .nii.gz (data.formats)
# pictures an evaluation writes beside the predictions (the default --out): when marked as its own
# (``writers.is_evaluation_picture``), never read back as images to pair, and replaced by the next evaluation
EVALUATION_PICTURES = frozenset({"confusion_matrix.png"})
PRED_SUFFIXES = ("_mask", "_labels", "_label", "_prob", "_pred")  # stripped from the end of names when pairing
SUBFOLDER_SUFFIX = {"masks": "_mask", "probabilities": "_prob", "labels": "_labels",
                    "predictions": "_pred"}  # the sub-folders `unetkit predict` writes
IGNORED_ENDINGS = ("_overlay",)
# Which prediction kind a task takes when an image has several ("" = a file without suffix).
PREFER = {
    "binary": ("", "_mask", "_prob", "_pred", "_labels"),
    "instances": ("_labels", "", "_mask", "_pred"),
    "multiclass": ("", "_labels", "_mask", "_pred"),
    "regression": ("", "_pred", "_prob"),
}


@dataclass
class EvaluationResult:
    """Per-image rows (one dict per image, with ``name``) and the dataset summary."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    written: list[Path] = field(default_factory=list)  # files written by ``unetkit.evaluate(..., out=...)``
    notes: list[str] = field(default_factory=list)  # what a reader should know of these scores (``evaluation_notes``)


def evaluation_notes(summary: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """What the numbers of an evaluation do not say by themselves: images left out, an option that changed nothing,
    predictions scored in a way their look suggests was not meant. ``options``: the task options given."""
    notes = []
    left_out = summary.get("truth_left_out", 0)
    if left_out:
        notes.append(f"{left_out} truth image(s) without a prediction left out (--only-predicted)")
    threshold, ignore_label = options.get("threshold"), options.get("ignore_label")
    if threshold is not None and summary.get("probability_maps") == 0:
        notes.append(f"--threshold {threshold} applies to probability maps (float TIFFs); these predictions are "
                     "masks (non-zero = foreground), so it changed nothing: give probabilities/ to threshold them")
    if summary.get("ignored_pixels") and not any(sum(row) for row in summary["confusion_matrix"][1:]):
        notes.append(f"the {summary['ignored_pixels']} truth pixels of the ignore label "
                     f"({255 if ignore_label is None else ignore_label}) were left out and no other class is left in "
                     "the truth; 0/255 masks are scored with --task binary, or give --ignore-label")
    empty = summary.get("empty_prediction_names", [])
    if empty:
        notes.append(f"{len(empty)} prediction(s) hold no foreground where the truth has some (e.g. {empty[0]}): "
                     "Dice 0, but the thinned Rand / info and warping errors see one segment over the image, which "
                     "scores well against a truth of one object")
    graded = summary.get("graded_mask_names", [])
    if graded:
        notes.append(f"{len(graded)} 8-bit prediction(s) hold many grey levels, mostly non-zero (e.g. {graded[0]}), "
                     "and were scored as masks (non-zero = foreground); if they are probabilities x 255, save them "
                     "as float TIFFs in [0, 1] (or threshold them) to score them as such")
    if summary.get("probability_maps_swept") == 0 and "rand_error_original" in summary:
        notes.append("these predictions are masks: the ISBI errors score them as they are, where on probability maps "
                     "they take the best of many thresholds (the challenge's way): their *_threshold values are 0, "
                     "and the scores differ from those of the probabilities/ folder")
    if ignore_label is not None and summary.get("ignored_pixels") == 0:
        notes.append(f"--ignore-label {ignore_label}: no truth pixel has this value, so none was left out")
    return notes


# --------------------------------------------------------------------------------------------------
# pairing


@dataclass(frozen=True)
class _TruthItem:
    name: str  # pairing name (suffix stripped)
    path: Path  # label file, or the dataset sample folder (shown to users)
    sample: Any = None  # unetkit.data.layouts.Sample when read through a dataset layout
    priority: tuple[int, ...] = ()  # class-folders sample: class ids highest first, to merge its masks


def _name_list(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _split_suffix(stem: str) -> tuple[str, str]:
    """('cell1', '_mask') for 'cell1_mask'; (stem, '') without a known suffix."""
    for suffix in PRED_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], "_labels" if suffix == "_label" else suffix  # one kind, two spellings
    return stem, ""


def _stem(path: Path) -> str:
    """The file name without its extension, multi-part ones whole (``v.nii.gz`` -> ``v``), and without ``.ome``
    (``s.ome.tif`` -> ``s``), as ``predict`` names its outputs: an OME-TIFF truth pairs with its prediction."""
    return without_ome(path.name[: len(path.name) - len(extension(path))])


def _image_files(folder: Path) -> list[Path]:
    """Pairable image files directly in ``folder`` (hidden files, ``*_overlay`` and an evaluation's pictures skipped),
    sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and extension(p) in PAIR_EXTENSIONS
        and not _stem(p).endswith(IGNORED_ENDINGS)
        and not (p.name in EVALUATION_PICTURES and is_evaluation_picture(p))
    )


def _check_folder(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} folder not found: {path}")
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: is a file; the {what} must be a folder of images")
    return path


def _truth_items(truth: str | Path) -> dict[str, _TruthItem]:
    """Truth images by pairing name: the image files of ``truth``, or the samples of a dataset folder."""
    from unetkit.data.class_folders import is_class_folders
    from unetkit.data.layouts import detect_layout, find_samples

    root = _check_folder(truth, "truth")
    if is_class_folders(root):
        raise InputError(f"{root}: a class-folders dataset (one mask folder per class) is truth for "
                         "--task multiclass only; give a folder of masks or label images for this task")
    try:
        layout = detect_layout(root)
    except InputError:  # label files the dataset layouts do not read (NIfTI volumes) are still truth to pair
        if not _image_files(root):
            raise
        layout = "images"
    if layout == "images":  # a plain folder of label images
        from unetkit.data.io import check_lossless

        for path in sorted(root.iterdir()):  # JPEG truth is not paired: named rather than left out unsaid
            if extension(path) in extensions(name="jpeg"):
                check_lossless(path)
        files = _image_files(root)
        if not files:
            raise InputError(f"{root}: no truth images ({', '.join(PAIR_EXTENSIONS)}) in this folder")
        entries = [(_split_suffix(_stem(p))[0], p, None) for p in files]
    else:  # a dataset folder: folders (images/ + masks/), dsb or isbi-stack
        samples = find_samples(root, layout="auto", require_labels=True)
        entries = []
        for sample in samples:
            first = sample.label_paths[0]
            # dsb: <id>/masks/*.png -> show the <id> folder; otherwise the label file itself.
            is_dsb = first.parent.name == "masks" and first.parent.parent.name == sample.name
            shown = first.parent.parent if is_dsb else first
            entries.append((_split_suffix(without_ome(sample.name))[0], shown, sample))
    return _unique_items(root, [_TruthItem(name, path, sample) for name, path, sample in entries])


def _unique_items(root: Path, entries: Sequence[_TruthItem]) -> dict[str, _TruthItem]:
    """Truth items by pairing name; two items pairing as the same name are an error."""
    items: dict[str, _TruthItem] = {}
    for item in entries:
        if item.name in items:
            raise InputError(
                f"{root}: '{items[item.name].path.name}' and '{item.path.name}' both pair as '{item.name}'; keep "
                f"one truth file per image (the endings {', '.join(PRED_SUFFIXES)} are ignored when pairing)"
            )
        items[item.name] = item
    return items


def _class_folder_items(root: Path, class_names: Sequence[str], priority: Sequence[int]) -> dict[str, _TruthItem]:
    """Truth items of a class-folders dataset: one per image (shown as the image file), masks in class order."""
    from unetkit.data.class_folders import find_class_folder_samples

    samples = find_class_folder_samples(root, class_names=class_names)
    return _unique_items(
        root, [_TruthItem(_split_suffix(s.name)[0], s.image_path, s, tuple(priority)) for s in samples]
    )


def _prediction_candidates(pred_dir: str | Path) -> dict[str, dict[str, Path]]:
    """Prediction files by pairing name, then by kind (suffix): {'cell1': {'_mask': ..., '_prob': ...}}."""
    root = _check_folder(pred_dir, "prediction")
    found: list[tuple[Path, str]] = [(p, "") for p in _image_files(root)]
    for folder, suffix in SUBFOLDER_SUFFIX.items():
        if (root / folder).is_dir():
            found += [(p, suffix) for p in _image_files(root / folder)]
    candidates: dict[str, dict[str, Path]] = {}
    for path, folder_suffix in found:
        name, suffix = _split_suffix(_stem(path))
        suffix = suffix or folder_suffix
        kinds = candidates.setdefault(name, {})
        if suffix in kinds:
            raise InputError(
                f"{kinds[suffix]} and {path} are both the '{suffix or 'plain'}' prediction of '{name}'; "
                "keep one file per image and kind"
            )
        kinds[suffix] = path
    if not candidates:
        raise InputError(
            f"{root}: no prediction images ({', '.join(PAIR_EXTENSIONS)}) here or in "
            f"{', '.join(s + '/' for s in SUBFOLDER_SUFFIX)}"
        )
    return candidates


# ``predicted_only``: truth images without a prediction are left out (their count recorded here) instead of refused
_PREDICTED_ONLY: ContextVar[list[int] | None] = ContextVar("predicted_only", default=None)


@contextmanager
def predicted_only(enabled: bool = True) -> Iterator[list[int]]:
    """Within the block, score only the truth images that have a prediction (a subset of a dataset was predicted);
    yields a list that receives the number of truth images left out. Predictions without a truth stay refused."""
    record: list[int] = []
    token = _PREDICTED_ONLY.set(record if enabled else None)
    try:
        yield record
    finally:
        _PREDICTED_ONLY.reset(token)


def _match(
    truth: str | Path, pred_dir: str | Path, prefer: Sequence[str], items: dict[str, _TruthItem] | None = None
) -> list[tuple[_TruthItem, dict[str, Path], Path]]:
    """(truth item, all its prediction candidates, the preferred one) per image, sorted by name.

    ``items`` are the truth items when already found (class-folders), else read from ``truth``.
    """
    items = _truth_items(truth) if items is None else items
    candidates = _prediction_candidates(pred_dir)
    missing, pairs = [], []
    for name in sorted(items):
        kinds = candidates.get(name, {})
        chosen = next((kinds[s] for s in prefer if s in kinds), None)
        if chosen is None:
            missing.append(items[name].path.name)
        else:
            pairs.append((items[name], kinds, chosen))
    extra = sorted(min(path.name for path in kinds.values())  # one file per image: masks/ and labels/ count once
                   for name, kinds in candidates.items() if name not in items)
    left_out = _PREDICTED_ONLY.get()
    if left_out is not None and pairs:
        left_out.append(len(missing))
        missing = []
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} truth image(s) without a prediction in {pred_dir}: {_name_list(missing)}"
        )
    if extra:
        problems.append(f"predictions of {len(extra)} image(s) without a truth image in {truth}: {_name_list(extra)}")
    truth_files = {path.resolve() for item, _, _ in pairs
                   for path in (item.path, *(item.sample.label_paths if item.sample is not None else ()))}
    same = next((chosen for _, _, chosen in pairs if chosen.resolve() in truth_files), None)
    if same is not None:
        raise InputError(f"{same} is a truth file, found again as a prediction in {pred_dir}: the truth would be "
                         "scored against itself; give the folder of predictions as --pred")
    if problems:
        subset = " (or, when you predicted part of a dataset on purpose, score that part with --only-predicted)" \
            if missing and pairs and not extra else ""
        raise InputError(
            "; ".join(problems) + ". Files are paired by name without extension (endings "
            f"{', '.join(PRED_SUFFIXES)} are ignored); predict the missing images or remove the extra files" + subset
        )
    return pairs


def pair_files(
    truth_dir: str | Path, pred_dir: str | Path, prefer: Sequence[str] = PREFER["binary"]
) -> list[tuple[str, Path, Path]]:
    """(name, truth path, prediction path) per image, sorted by name (see the module docstring).

    The truth path is the label file, or the ``<id>`` folder of a dsb dataset. ``prefer`` orders the
    prediction kinds ("" plain, "_mask", "_labels", "_prob", "_pred") when an image has several.
    Raises InputError naming unpaired files.
    """
    return [(item.name, item.path, chosen) for item, _, chosen in _match(truth_dir, pred_dir, prefer)]


# --------------------------------------------------------------------------------------------------
# reading


def _is_tiff(path: Path) -> bool:
    return format_of(path) == "tiff"


def _read_2d_or_volume(path: Path, read_2d, read_3d, volume: bool = False) -> np.ndarray:
    """``read_2d(path)``, or ``read_3d(path)`` for a multi-page TIFF that the 2D reader refuses. A one-page
    TIFF that both refuse is named by the 2D reader's reason (its values), not the volume reader's.
    ``volume``: the truth is a volume, so a TIFF of 2 to 4 pages is its slices, not channels."""
    if format_of(path) == "nifti" or (volume and _is_tiff(path)):  # always a volume
        return read_3d(path)
    try:
        return read_2d(path)
    except InputError as flat_error:
        if not _is_tiff(path):
            raise
        try:
            return read_3d(path)
        except InputError:
            from unetkit.data.io import tiff_pages

            pages = 0
            with contextlib.suppress(InputError):  # unreadable: the volume reader's message stands
                pages = tiff_pages(path)
            if pages == 1:
                raise flat_error from None
            raise


def _check_finite(array: np.ndarray, path: Path, what: str) -> None:
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise InputError(f"{path}: {bad} NaN/Inf value(s) in {what}; it must be finite everywhere (a NaN pixel "
                         "would leave the image out of the means, or make its score meaningless)")


def _read_array(path: Path, volume: bool = False) -> np.ndarray:
    """An image as channels-first (C, H, W), or a 3D TIFF as (C, D, H, W), native dtype (``volume``: the
    truth is a volume, so this is one too)."""
    from unetkit.data.io import read_image, read_volume

    return _read_2d_or_volume(path, read_image, read_volume, volume)


def _read_label_array(path: Path, volume: bool = False) -> np.ndarray:
    """A label image (H, W) or a 3D label TIFF (D, H, W) as int32 (``volume``: as in ``_read_array``)."""
    from unetkit.data.io import read_label_volume, read_labels

    return _read_2d_or_volume(path, read_labels, read_label_volume, volume)


def _truth_labels(item: _TruthItem) -> np.ndarray:
    if item.priority:  # class-folders: one binary mask per class, merged by priority, checked against the image
        from unetkit.data.class_folders import load_class_folder_labels
        from unetkit.data.io import image_shape

        return load_class_folder_labels(item.sample, item.priority, image_shape(item.sample.image_path))
    if item.sample is not None:
        from unetkit.data.layouts import load_labels

        return load_labels(item.sample)
    return _read_label_array(item.path)


def _colour_truth(item: _TruthItem, table) -> np.ndarray:
    """The class map of a colour-coded (or gray class-id) truth mask, by the class table's colours."""
    from unetkit.data.masks import read_class_mask

    return read_class_mask(item.path if item.sample is None else item.sample.label_paths[0], table)


def _on_truth_grid(pred: np.ndarray, pred_path: Path, item: _TruthItem) -> np.ndarray:
    """``pred`` put on its truth's voxel grid when both are NIfTI files (``data.volumes.align_nifti``: reoriented to
    the truth's orientation, refused when spacing or origin differ); other files as they are."""
    from unetkit.data.volumes import align_nifti

    truth_path = item.path if item.sample is None else item.sample.label_paths[0]
    return align_nifti(pred, pred_path, truth_path, "a prediction must lie on its truth's voxel grid: resample it "
                       "onto the truth (e.g. nibabel.processing.resample_from_to with order=0)")


def _check_same_shape(truth: np.ndarray, pred: np.ndarray, item: _TruthItem, pred_path: Path) -> None:
    if truth.shape != pred.shape:
        raise InputError(
            f"{pred_path}: prediction of shape {pred.shape} but its truth {item.path} is {truth.shape}; "
            "predictions must cover the whole image"
        )


def looks_graded(array: np.ndarray) -> bool:
    """Whether an 8-bit mask looks like probabilities x 255 (an export of a probability map): many grey levels and
    mostly non-zero, where masks hold two values and label images are mostly background (0)."""
    return (array.dtype == np.uint8 and np.count_nonzero(array) > array.size // 2
            and len(np.unique(array[:, ::7, ::7] if array.ndim == 3 else array)) > 16)


def _binary_prediction(path: Path, volume: bool = False) -> tuple[np.ndarray, bool, bool]:
    """(spatial array, is_probability, graded): float files are probabilities in [0, 1], others masks (``volume``:
    the truth is a volume); ``graded``: an 8-bit mask that ``looks_graded``, for a note."""
    array = _read_array(path, volume)
    if np.issubdtype(array.dtype, np.floating):
        if array.shape[0] != 1:
            raise InputError(
                f"{path}: probability image with {array.shape[0]} channels; binary evaluation needs one "
                "foreground probability per pixel (H, W)"
            )
        prob = array[0]
        _check_finite(prob, path, "the probabilities")
        if prob.size and (prob.min() < -1e-6 or prob.max() > 1 + 1e-6):
            raise InputError(
                f"{path}: float values range {np.nanmin(prob):.3g}..{np.nanmax(prob):.3g}, not probabilities "
                "in [0, 1]; save foreground probabilities, or a mask (non-zero = foreground) as PNG or "
                "integer TIFF"
            )
        return prob, True, False
    if array.shape[0] > 1 and np.any(array != array[:1]):  # channels that differ: a picture, not a mask
        raise InputError(
            f"{path}: a colour image (its channels differ), not a mask; binary evaluation reads masks (non-zero = "
            "foreground; gray, or RGB with equal channels) or foreground probabilities: unetkit predict writes "
            "them to masks/, probabilities/ and labels/ (instances/ and overlays/ are pictures)"
        )
    return (array != 0).any(axis=0), False, looks_graded(array)


def _instance_labels(labels: np.ndarray) -> np.ndarray:
    """A binary mask (one non-zero value) split into its 4-connected (6 in 3D) components; ids kept
    otherwise. A label image with a single object stays one object only if that object is connected."""
    from unetkit.data.components import instance_labels  # the rule submit uses too

    return instance_labels(labels)


# --------------------------------------------------------------------------------------------------
# evaluation per task


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    """Mean of ``key`` over rows holding a finite value (NaN when none)."""
    values = [r[key] for r in rows if key in r and r[key] is not None and math.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def evaluate_binary(truth_dir: str | Path, pred_dir: str | Path, threshold: float = 0.5) -> EvaluationResult:
    """Dice, IoU, precision, recall, pixel error and ISBI Rand error per image, and their means.

    Truth: non-zero = foreground. Predictions: masks (non-zero = foreground) or float probability
    TIFFs in [0, 1], foreground = ``prob > threshold``. When a probability map is available (the
    prediction itself, or a ``_prob`` / ``probabilities/`` file next to the mask), rows also give
    ``rand_error_best`` and ``rand_error_best_threshold``: the minimum Rand error over 10 thresholds
    0.05..0.95; the summary gives their means over those images. Both generations of the ISBI 2012
    challenge's metrics (``unetkit.metrics.isbi``: ``rand_error_original``, ``pixel_error_original``,
    ``rand_error_thinned``, ``info_error_thinned``; the Rand errors with split / merge parts; all with
    their thresholds) are given
    per image and, one threshold for the whole folder as the challenge does, in the summary; they
    sweep the probability map when there is one, else score the mask.
    """
    from unetkit.metrics.binary import binary_counts, binary_scores
    from unetkit.metrics.isbi import isbi_curves, isbi_scores
    from unetkit.metrics.rand import rand_error, rand_error_sweep

    if not 0 <= threshold < 1:
        raise InputError(f"threshold must be in [0, 1), got {threshold}")
    rows, curves, empty, graded, probability_maps, swept = [], [], [], [], 0, 0
    for item, kinds, chosen in _match(truth_dir, pred_dir, PREFER["binary"]):
        truth = _truth_labels(item) != 0
        pred, is_prob, looks_like_probabilities = _binary_prediction(chosen, volume=truth.ndim == 3)
        pred = _on_truth_grid(pred, chosen, item)
        if looks_like_probabilities:
            graded.append(chosen.name)
        probability_maps += int(is_prob)
        _check_same_shape(truth, pred, item, chosen)
        mask = pred > threshold if is_prob else pred
        row: dict[str, Any] = {"name": item.name, **binary_scores(binary_counts(truth, mask))}
        row["rand_error"] = rand_error(truth, mask)
        prob = pred if is_prob else None
        if prob is None and "_prob" in kinds:
            prob, prob_ok, _ = _binary_prediction(kinds["_prob"], volume=truth.ndim == 3)
            prob = _on_truth_grid(prob, kinds["_prob"], item) if prob_ok else None
            if prob is not None:
                _check_same_shape(truth, prob, item, kinds["_prob"])
        if prob is not None:
            row["rand_error_best"], row["rand_error_best_threshold"] = rand_error_sweep(truth, prob)
        swept += int(prob is not None)  # the prediction's map, or the probabilities/ file beside its mask
        curves.append(isbi_curves(truth, mask if prob is None else prob, is_probability=prob is not None))
        row.update(isbi_scores(curves[-1:]))
        rows.append(row)
        if truth.any() and not mask.any():
            empty.append(item.name)
    # probability_maps: predictions that are maps (thresholded for Dice); probability_maps_swept: images whose
    # ISBI errors swept a map, the prediction's own or the probabilities/ file beside a mask
    summary: dict[str, Any] = {"images": len(rows), "probability_maps": probability_maps,
                               "probability_maps_swept": swept}
    if empty:  # Dice 0, but after thinning one segment over the image: a perfect V_rand for a one-object truth
        summary["empty_predictions"] = len(empty)
        summary["empty_prediction_names"] = empty
    if graded:  # scored as masks (non-zero = foreground): probabilities x 255 would be all foreground
        summary["graded_mask_names"] = graded
    for key in ("dice", "iou", "precision", "recall", "pixel_error", "rand_error"):
        summary[key] = _mean(rows, key)
    if any("rand_error_best" in r for r in rows):
        summary["rand_error_best"] = _mean(rows, "rand_error_best")
        summary["rand_error_best_threshold"] = round(_mean(rows, "rand_error_best_threshold"), 6)
    if curves:
        summary.update(isbi_scores(curves))
    return EvaluationResult(rows, add_intervals(summary, rows, ("dice", "iou")))


def evaluate_instances(
    truth: str | Path, pred_dir: str | Path, thresholds: Sequence[float] | np.ndarray | None = None
) -> EvaluationResult:
    """2018 Data Science Bowl scores per image (DSB score over IoU 0.5..0.95, AP/precision/recall/F1
    at IoU 0.5, object counts) and their means over images.

    Truth: a folder of instance label images or a dsb dataset folder (``<id>/masks/*.png`` merged).
    Predictions: integer label images (``labels/`` of ``unetkit predict --instances``). A truth or
    prediction holding a single non-zero value (a binary mask) is split into connected components.
    """
    from unetkit.metrics.instances import DSB_THRESHOLDS, instance_scores, instance_scores_dataset

    thresholds = DSB_THRESHOLDS if thresholds is None else thresholds
    rows, scores = [], []
    for item, _, chosen in _match(truth, pred_dir, PREFER["instances"]):
        labels = _instance_labels(_truth_labels(item))
        pred = _instance_labels(_on_truth_grid(_read_label_array(chosen, volume=labels.ndim == 3), chosen, item))
        _check_same_shape(labels, pred, item, chosen)
        result = instance_scores(labels, pred, thresholds)
        scores.append(result)
        rows.append({"name": item.name, **result.summary()})
    return EvaluationResult(rows, add_intervals(instance_scores_dataset(scores), rows, ("dsb_score", "ap50")))


def _class_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    if not class_names:
        return ["background"] + [f"class{c}" for c in range(1, num_classes)]
    if len(class_names) != num_classes:
        raise InputError(
            f"{len(class_names)} class names ({', '.join(class_names)}) for {num_classes} classes; "
            "give one name per class, background first"
        )
    return list(class_names)


def _multiclass_truth(
    truth_dir: str | Path,
    num_classes: int | None,
    class_names: Sequence[str] | None,
    class_priority: Sequence[str],
) -> tuple[list[str], dict[str, _TruthItem] | None]:
    """(class names, class-folders truth items or None for class-id images) of a multiclass truth folder."""
    from unetkit.data.class_folders import class_folder_names, is_class_folders
    from unetkit.data.masks import priority_order

    root = _check_folder(truth_dir, "truth")
    if not is_class_folders(root):
        if class_priority:
            raise InputError(f"{root}: --class-priority applies to a class-folders truth (one mask folder per "
                             "class); this folder holds class-id images, so leave the priority out")
        if num_classes is None and class_names:  # one name per class, background first
            num_classes = len(class_names)
        if num_classes is None:
            raise InputError(f"{root}: class-id truth images need --num-classes K (background included) or "
                             "--class-names")
        return _class_names(num_classes, class_names), None
    # names after the first are folder names; without class_names every mask folder, sorted
    names = class_folder_names(root, class_names=class_names or ())
    if num_classes is not None and num_classes != len(names):
        raise InputError(
            f"{root}: --num-classes {num_classes} but this class-folders truth has {len(names)} classes "
            f"({', '.join(names)}); leave --num-classes out or make it match"
        )
    try:
        priority = priority_order(names, class_priority)
    except InputError as error:
        raise InputError(f"{root}: {error}") from error
    return names, _class_folder_items(root, names, priority)


def evaluate_multiclass(
    truth_dir: str | Path,
    pred_dir: str | Path,
    num_classes: int | None,
    ignore_label: int | None = 255,
    class_names: Sequence[str] | None = None,
    class_priority: Sequence[str] = (),
    class_colors: Sequence[Sequence[int]] = (),
) -> EvaluationResult:
    """Per-class Dice/IoU from one confusion matrix pooled over all images, per-image Dice rows.

    ``class_colors`` (one [R, G, B] per class, background first; the training's ``data.class_colors``) reads
    colour-coded truth masks, each colour as its class (gray truth images stay class ids).

    Truth and predictions are class-id images (0 = background, 1..K-1; truth pixels equal to
    ``ignore_label`` are left out). The truth may also be a class-folders dataset: each image's class
    masks are merged (``class_priority`` names first win overlaps), classes are ``class_names`` or the
    mask folders sorted, and ``num_classes`` may be None.

    Summary: ``per_class_dice`` / ``per_class_iou`` (K values, background first, NaN for a class absent
    from truth and prediction), ``mean_dice`` / ``mean_iou`` (classes 1..K-1), ``pixel_accuracy``,
    ``confusion_matrix`` (K x K nested list, rows truth), ``class_names``, ``ignored_pixels`` (truth pixels
    equal to ``ignore_label``, left out; an ignore label that is a class id is refused), and from 10 images
    ``mean_dice_ci95`` (``pooled_interval``: images resampled, their matrices summed). Rows: ``dice_<class
    name>`` per class and the image's ``mean_dice``.
    """
    from unetkit.metrics.multiclass import (
        confusion_matrix,
        mean_foreground,
        per_class_dice,
        per_class_iou,
        pixel_accuracy,
    )

    if class_colors and num_classes is None:
        num_classes = len(class_colors)
    names, items = _multiclass_truth(truth_dir, num_classes, class_names, class_priority)
    num_classes = len(names)
    table = None
    if class_colors:
        from unetkit.config import DataConfig
        from unetkit.data.masks import ClassTable

        table = ClassTable.from_config(DataConfig(class_names=list(names), class_colors=[list(c) for c in class_colors],
                                                  ignore_label=255 if ignore_label is None else ignore_label))
    if num_classes < 2:
        raise InputError(f"multiclass evaluation needs at least 2 classes (background first), got {names}")
    if ignore_label is not None and 0 <= ignore_label < num_classes:
        raise InputError(f"ignore label {ignore_label} is the class '{names[ignore_label]}' (classes "
                         f"0..{num_classes - 1}): its truth pixels would be left out and the class scored on "
                         "none; give a value outside the classes with --ignore-label (API: ignore_label=; default "
                         "255)")
    total = np.zeros((num_classes, num_classes), dtype=np.int64)
    rows, matrices, ignored = [], [], 0
    for item, _, chosen in _match(truth_dir, pred_dir, PREFER["multiclass"], items):
        truth = _truth_labels(item) if table is None else _colour_truth(item, table)
        pred = _on_truth_grid(_read_label_array(chosen, volume=truth.ndim == 3), chosen, item)
        _check_same_shape(truth, pred, item, chosen)
        if ignore_label is not None:
            ignored += int(np.count_nonzero(truth == ignore_label))
        try:
            cm = confusion_matrix(truth, pred, num_classes, ignore_label)
        except InputError as error:
            raise InputError(f"{item.path} / {chosen}: {error}") from error
        total += cm
        matrices.append(cm)
        dice = per_class_dice(cm)
        row: dict[str, Any] = {"name": item.name}
        row.update({f"dice_{name}": float(value) for name, value in zip(names, dice, strict=True)})
        row["mean_dice"] = mean_foreground(dice)
        rows.append(row)
    dice, iou = per_class_dice(total), per_class_iou(total)
    summary = {
        "images": len(rows),
        "class_names": names,
        "per_class_dice": [float(v) for v in dice],
        "per_class_iou": [float(v) for v in iou],
        "mean_dice": mean_foreground(dice),
        "mean_iou": mean_foreground(iou),
        "pixel_accuracy": pixel_accuracy(total),
        "confusion_matrix": total.tolist(),
    }
    if ignore_label is not None:
        summary["ignored_pixels"] = ignored  # truth pixels left out: 0 says the ignore label is not in the truth
    found = pooled_interval(matrices, lambda cm: mean_foreground(per_class_dice(cm)))  # images resampled
    if found is not None:
        summary[interval_key("mean_dice")] = [found[0], found[1]]
    return EvaluationResult(rows, summary)


def evaluate_regression(
    truth_dir: str | Path, pred_dir: str | Path, data_range: float | None = None
) -> EvaluationResult:
    """MAE, RMSE, PSNR and SSIM per image and their means (images read as float, channels-first).

    ``data_range`` defaults per image to the truth's max - min (see ``unetkit.metrics.regression``).
    Identical images have PSNR inf; the summary mean of PSNR leaves infinite values out.
    """
    from unetkit.metrics.regression import regression_scores

    rows = []
    for item, _, chosen in _match(truth_dir, pred_dir, PREFER["regression"]):
        truth_path = item.path if item.sample is None else item.sample.label_paths[0]
        truth = _read_array(truth_path).astype(np.float64)
        pred = _on_truth_grid(_read_array(chosen, volume=truth.ndim == 4), chosen, item).astype(np.float64)
        _check_finite(truth, truth_path, "the truth")
        _check_finite(pred, chosen, "the prediction")
        _check_same_shape(truth, pred, item, chosen)
        scores = regression_scores(truth, pred, data_range=data_range, spatial_dims=truth.ndim - 1)
        rows.append({"name": item.name, **scores})
    summary: dict[str, Any] = {"images": len(rows)}
    for key in ("mae", "rmse", "psnr", "ssim"):
        summary[key] = _mean(rows, key)
    return EvaluationResult(rows, add_intervals(summary, rows, ("mae", "ssim")))
