"""Outputs never overwrite inputs: checks run before any image is read or any file is written.

Rules (refused with an ``InputError`` naming the paths and the fix):

- an output folder must not be an input, hold an input (at any depth), or be a dataset folder
  (one with an ``images/`` sub-folder, whose ``masks/`` or ``labels/`` the outputs would replace), nor hold images
  that no unetkit command wrote (a dataset's ``masks/`` given as ``--out``); a training run's folder must not lie
  inside its data;
- an output file must not be one of the input files, and must not be an existing folder;
- a single-file output (an export, a weight map, a large image's prediction) must not exist already, unless it is
  recognisably the same command's own earlier output of that kind (then it is replaced, atomically);
- an output folder must not be an existing file;
- predictions never go into a training run's folder, nor a run into a folder of predictions (both write
  ``overlays/``);
- an evaluation's output folder must not be, hold or lie inside the truth, must not hold the predictions
  (it may be the predictions' folder itself, the default), and must not write over a file it reads;
- input images written to one folder by stem must have distinct stems (``a/x.png`` and ``b/x.png``,
  or ``x.png`` next to ``x.tif``, would both be written to ``masks/x.png``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from unetkit.errors import InputError

DATASET_MARKERS = ("images",)  # a folder with one of these sub-folders is a dataset, never an output folder


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def check_output_folder(out_dir: str | Path, inputs: Iterable[str | Path] = (), option: str = "--out",
                        inside_inputs: bool = True) -> Path:
    """Refuse an output folder that is a file, holds an input, is a dataset folder, or holds images that no unetkit
    command wrote (a folder of images or masks); with ``inside_inputs`` False (a training run) also one that lies
    inside an input folder. Returns it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out} is an existing file; give a folder for the outputs")
    target = _resolved(out)
    for item in inputs:
        source = _resolved(item)
        if source == target or source.is_relative_to(target):
            raise InputError(
                f"{option} {out} holds the input {item}; outputs would overwrite inputs (or a dataset's "
                "masks); choose an output folder outside the inputs")
        if not inside_inputs and source.is_dir() and target.is_relative_to(source):
            raise InputError(
                f"{option} {out} lies inside the data folder {item}; the run's files would mix with the data (and "
                "replace any file of the same name): choose a folder outside it")
    for marker in DATASET_MARKERS:
        if (out / marker).is_dir():
            raise InputError(
                f"{option} {out} is a dataset folder (it has {marker}/); its masks/labels would be overwritten; "
                "choose another output folder")
    for name in PREDICTION_FOLDERS:  # a dangling link where an output folder goes failed after the first outputs
        sub = out / name
        if sub.is_symlink() and not sub.exists():
            raise InputError(f"{option} {out}: {name}/ is a link to {os.readlink(sub)}, which does not exist; fix or "
                             "remove the link")
    _check_no_foreign_images(out, option)
    return out


def _check_no_foreign_images(out: Path, option: str) -> None:
    """Refuse a folder that holds images, directly or in the folders outputs go to (``PREDICTION_FOLDERS``),
    unless a unetkit run or prediction wrote it: a dataset's ``masks/``, ``labels/`` or ``images/`` given as
    ``--out``, or a folder whose ``masks/`` holds hand-made masks, would have the outputs written among its files."""
    from unetkit.data.formats import extension, extensions

    if not out.is_dir() or any((out / name).is_file() for name in (*RUN_MARKERS, PREDICTION_MARKER)):
        return
    if is_run_config(out / "config.yaml"):  # a run that failed before its first checkpoint
        return
    suffixes = extensions("image") + extensions(name="nifti")
    folders = [out, *(out / name for name in PREDICTION_FOLDERS if (out / name).is_dir())]
    for folder in folders:
        found = next((path for path in sorted(folder.iterdir()) if path.is_file() and extension(path) in suffixes),
                     None)
        if found is not None:
            raise InputError(f"{option} {out} holds images that no unetkit command wrote (e.g. "
                             f"{found.relative_to(out)}): a folder of images or masks is never an output folder; "
                             "choose a new or empty folder")


def is_run_config(path: Path) -> bool:
    """True for a ``config.yaml`` that a unetkit run wrote: a mapping with its task, recipe and sections."""
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(values, dict) and {"task", "recipe", "data", "model", "train"} <= set(values)


def check_new_run_folder(out_dir: str | Path, pairs_marker: str, option: str = "--out") -> None:
    """Refuse to start a run in a folder of files that no unetkit run wrote (a run writes ``config.yaml``,
    ``summary.json`` and ``curves.png`` over any there). A folder left by a run that failed before its first
    checkpoint (its own ``config.yaml``), or holding only the pairs ``unetkit.train`` wrote, is started again."""
    out = Path(out_dir)
    if not out.is_dir() or (out / "last.pt").exists():  # a whole run is refused or resumed by the caller
        return
    config = out / "config.yaml"
    if config.exists():
        if is_run_config(config):
            return
        raise InputError(f"{option} {out} holds a config.yaml that no unetkit run wrote; a run would replace it: "
                         "choose a new or empty folder")
    entries = sorted(path for path in out.iterdir() if not path.name.startswith("."))
    foreign = [path for path in entries if not (path.name == "data" and _holds_pairs(path, pairs_marker))]
    if foreign:
        raise InputError(f"{option} {out} holds files that no unetkit run wrote (e.g. {foreign[0].name}); a run "
                         "would write among them: choose a new or empty folder")


def _holds_pairs(folder: Path, marker: str) -> bool:
    return folder.is_dir() and all((part / marker).is_file() for part in folder.iterdir() if part.is_dir())


PREDICTION_FOLDERS = ("masks", "probabilities", "overlays", "labels", "instances", "objects", "predictions")  # what
#   predict writes one file per image into (a training run: overlays/)
RUN_MARKERS = ("last.pt", "best.pt")  # a folder holding one of these is a training run's
PREDICTION_MARKER = "prediction.json"  # the record `predict` writes (unetkit.safety.records)


def check_not_a_run_folder(out_dir: str | Path, option: str = "--out") -> None:
    """Refuse to predict into a training run's folder: both write ``overlays/`` (and the run's would be lost)."""
    out = Path(out_dir)
    marker = next((name for name in RUN_MARKERS if (out / name).is_file()), None)
    if marker:
        raise InputError(f"{option} {out} is a training run's folder (it holds {marker}); predictions would overwrite "
                         f"its overlays/: predict into a folder of their own, e.g. {out / 'predictions'}")


def check_not_a_prediction_folder(out_dir: str | Path, option: str = "--out") -> None:
    """Refuse to train into a folder of predictions: both write ``overlays/`` (and the predictions' would be lost)."""
    out = Path(out_dir)
    if (out / PREDICTION_MARKER).is_file():
        raise InputError(f"{option} {out} holds predictions ({PREDICTION_MARKER}); a training run would overwrite "
                         "their overlays/: train into a new folder")


def check_output_file(output: str | Path, inputs: Iterable[str | Path] = (), option: str = "--out") -> Path:
    """Refuse an output file that is one of the inputs or an existing folder (zarr stores excepted)."""
    out = Path(output)
    target = _resolved(out)
    for item in inputs:
        if _resolved(item) == target:
            raise InputError(f"{option} {out} is also an input; writing it would destroy the input: choose "
                             "another output name")
    if out.is_dir() and out.suffix.lower() != ".zarr":
        raise InputError(f"{option} {out} is an existing folder; give a file name")
    return out


def check_new_output(output: str | Path, option: str = "--out", owned: Callable[[Path], bool] | None = None,
                     kind: str = "") -> Path:
    """Refuse an output file (or store) that exists already, unless ``owned(path)`` says it is an earlier output
    of this kind (``kind`` names it in the message, e.g. "a unetkit ONNX export"); returns the path."""
    out = Path(output)
    if not out.exists() or (owned is not None and owned(out)):
        return out
    other = f" and is not {kind}" if owned is not None and kind else ""
    raise InputError(f"{option} {out} already exists{other}; unetkit writes no file over another: give a new name, "
                     "or move that file away first")


def check_evaluation_output(out_dir: str | Path, truth: str | Path, pred: str | Path, files: Iterable[str | Path],
                            option: str = "--out", not_read: Callable[[Path], bool] = lambda path: False) -> Path:
    """Refuse an evaluation output folder that overlaps the truth or the predictions; returns it.

    ``files`` are the files the evaluation will write into ``out_dir``. The truth is never written
    into or beside (a CSV or PNG there would be read as truth next time); ``out_dir`` may be the
    predictions' folder (the CSV sits beside the predictions, the CLI default) but not a folder above
    it, and no written file may replace an existing image the evaluation reads (``not_read(path)``: True for a
    picture never read back, an earlier evaluation's own, so that an evaluation can run again into the folder).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out} is an existing file; give a folder for the evaluation files")
    target = _resolved(out)
    truth_path, pred_path = _resolved(truth), _resolved(pred)
    if target == truth_path or truth_path.is_relative_to(target) or target.is_relative_to(truth_path):
        raise InputError(f"{option} {out} overlaps the truth {truth}; evaluation files must never be written "
                         "into the truth: choose an output folder outside it")
    if target != pred_path and pred_path.is_relative_to(target):
        raise InputError(f"{option} {out} holds the prediction folder {pred}; choose the prediction folder itself "
                         "or a folder outside the inputs")
    for file in files:
        path = Path(file)
        # images are read; earlier CSVs are not, nor what ``not_read`` says (an earlier evaluation's own picture)
        read = path.suffix.lower() not in (".csv", ".json") and not not_read(path)
        if read and path.is_file() and _resolved(path).is_relative_to(pred_path):
            raise InputError(f"{option}: writing {path} would overwrite an input file of the evaluation; choose "
                             "another output folder")
    return out


def check_unique_stems(paths: Iterable[Path], stem: Callable[[Path], str] = lambda path: path.stem) -> None:
    """Refuse inputs whose outputs would share a name (same file stem from different files).

    ``stem`` is the output name of an input, as the writer names it (e.g. ``a.nii.gz`` -> ``a``,
    ``cells.ome.tif`` -> ``cells``).
    """
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_stem[stem(Path(path))].append(Path(path))
    clashes = {stem: files for stem, files in by_stem.items() if len(files) > 1}
    if clashes:
        stem, files = next(iter(sorted(clashes.items())))
        more = f" (and {len(clashes) - 1} more name(s))" if len(clashes) > 1 else ""
        raise InputError(
            f"inputs {', '.join(map(str, files))} would all be written as '{stem}'{more}; outputs are named by "
            "file stem: rename them or predict each folder into its own --out")
