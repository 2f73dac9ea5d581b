"""The public Python API: ``load``, ``train``, ``evaluate``, ``predict_files``, ``predict_large``, ``export_model``.

The main ``unetkit`` subcommands (train, predict, predict-large, evaluate, export) are thin layers over these
functions, so a notebook and the CLI get the same results; the smaller ones (info, models, synth, weights, submit,
tune-postprocess, tune-cpu) call the library module their help names. Heavy modules (torch) are imported inside
the functions, so ``import unetkit`` stays quick.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from unetkit.inference.predictor import Predictor
    from unetkit.metrics.folders import EvaluationResult
    from unetkit.training.loop import FitResult

# (image, mask) pairs for ``train``: image (H, W), (C, H, W) or (H, W, C); mask (H, W) integer labels
Pairs = Sequence[tuple[np.ndarray, np.ndarray]]


def load(model: str | Path, device: str = "auto", engine: str = "torch", **inference: Any) -> Predictor:
    """Load a trained model for prediction: a checkpoint (``best.pt``), a run folder, or an exported file.

    Args:
        model: a packaged model's name (``nuclei``, ``em-membranes``, ``em-organelles``: ``unetkit models``),
            ``runs/nuclei/best.pt``, the run folder ``runs/nuclei`` (its ``best.pt``), or with
            ``engine="onnxruntime"`` / ``"torchscript"`` a file written by ``unetkit export``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        engine: ``torch`` | ``onnxruntime`` | ``torchscript``.
        **inference: overrides of the checkpoint's inference settings, e.g. ``tile_size=512``,
            ``overlap=0.25``, ``batch_size=8``, ``tta=True``; and which planes of an image to read:
            ``channels=[0, 2]`` (indices, or names of microscopy files), ``axes="CYX"``, ``time=0``, ``plane=3``.

    Returns:
        A ``Predictor``: ``predictor.predict(image)`` normalises the image by its percentiles as
        training did (any dtype), predicts it tile by tile (any size, 2D or 3D as the model) and
        returns a ``Result`` with ``probabilities`` (K, *S), ``mask`` (*S), ``labels`` (*S, instance
        models, or ``predict(image, instances=True)``) and ``values`` (regression, target units).

    Example::

        model = unetkit.load("runs/nuclei/best.pt")
        result = model.predict(image)            # image: (H, W) uint8/uint16/float, or (C, H, W)
        print(result.mask.mean(), result.num_objects)
    """
    from unetkit.inference.predictor import Predictor

    # names resolve in checkpoint.resolve_path
    return Predictor.load(_path_of("model", model), device, engine, **inference)


def train(data: str | Path | Pairs | None, out: str | Path, task: str | None = None, *,
          val: str | Path | Pairs | None = None, epochs: int | None = None, recipe: str = "default",
          config: str | Path | None = None, time_budget_s: float | None = None, device: str | None = None,
          resume: bool = False, progress: bool = True, **settings: Any) -> FitResult:
    """Train a network into the run folder ``out`` (checkpoints, ``metrics.csv``, curves, overlays).

    Args:
        data: a dataset folder (``images/`` + ``masks/``, DSB, ISBI stack, class folders, or
            ``images/`` + ``targets/`` for regression), or in-memory (image, mask) pairs of numpy
            arrays (written once as TIFFs to ``out/data/``; masks hold instance ids, a 0/1 mask, class
            ids, or regression targets).
        out: the run folder.
        task: ``binary`` (the default) | ``instances`` | ``multiclass`` | ``regression``.
        val: a validation folder or pairs (default: a fixed-seed split of ``data``).
        epochs: number of epochs (``train.epochs``).
        recipe: ``default`` (modern) or ``paper`` (Ronneberger 2015).
        config: a YAML file of config values.
        time_budget_s: stop training after this many seconds.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        resume: continue the run in ``out`` from ``last.pt`` (only epochs, budget, device may change).
        progress: progress bars (on stderr); the run's log (a line per epoch, the throughput at its end) is
            printed to stdout either way, as ``unetkit train`` prints it.
        **settings: any config value by its dotted name, e.g. ``**{"model.base_channels": 32}``
            (strings are parsed as in ``--set``, e.g. ``"[16, 64, 64]"``).

    Returns:
        ``FitResult`` with ``run_dir``, ``best_epoch``, ``best_score``, the per-epoch ``history`` and, for
        instances runs, ``tuned_scores``: the validation scores with the post-processing tuned at the end.

    Example::

        run = unetkit.train("data/train", out="runs/x", task="instances", epochs=30,
                            **{"model.base_channels": 32})
    """

    from unetkit.checkpoint import callers_random_state
    from unetkit.devices import is_first_process
    from unetkit.errors import InputError
    from unetkit.recipes import resolve_config
    from unetkit.safety.locks import folder_lock
    from unetkit.safety.paths import check_new_run_folder, check_not_a_prediction_folder, check_output_folder
    from unetkit.training.loop import RESUMABLE_OVERRIDES, fit

    data, val, out = _expanded(data), _expanded(val), _path_of("out", out)
    config = _path_of("config", config, optional=True)
    if val is not None and "data.val_fraction" in settings:  # the fraction splits data only without --val
        raise InputError("--val-fraction holds images out of --data when no --val is given; with --val it would be "
                         "unused: give one or the other")
    for name in ("task", "recipe"):  # `--set task=...`: a parameter of its own, which would be given twice
        if name in settings:
            raise InputError(f"'{name}' is not a config key; give it as --{name} (API: {name}=...)")
    overrides: dict[str, Any] = {"task": task} if task is not None else {}
    for key, value in (("train.epochs", epochs), ("train.time_budget_s", time_budget_s),
                       ("train.device", device)):
        if value is not None:
            if key in settings and str(settings[key]) != str(value):
                raise InputError(f"{key} is given twice ({value} and {settings[key]}); give it once")
            overrides[key] = value
    overrides.update(settings)
    for key in ("train.init_weights", "model.encoder_weights"):  # files: stored absolute, as data paths are
        value = overrides.get(key)
        if isinstance(value, (str, Path)) and str(value) and Path(value).expanduser().exists():
            overrides[key] = str(Path(value).expanduser().resolve())
    folders = [item for item in (data, val) if isinstance(item, (str, Path))]
    files_read = [item for item in (config, overrides.get("train.init_weights"), overrides.get("model.encoder_weights"))
                  if isinstance(item, (str, Path)) and str(item) and Path(item).expanduser().exists()]
    check_output_folder(out, folders, inside_inputs=False)  # never into the data, never a file
    check_output_folder(out, files_read)  # nor over the config or the weights it reads (best.pt, config.yaml)
    check_not_a_prediction_folder(out)  # nor over a prediction's overlays/
    lock = folder_lock(out, "train", enabled=is_first_process())  # one run per folder
    if resume:
        given = [option for option, value in (("--config", config), ("--recipe", recipe != "default" and recipe))
                 if value]
        if given:
            raise InputError(f"--resume keeps the run's config; leave out {' and '.join(given)}")
        fixed = _changed_on_resume(Path(out), [key for key in overrides if key not in RESUMABLE_OVERRIDES],
                                   overrides)
        if fixed:
            raise InputError(f"--resume keeps the run's config; only {', '.join(RESUMABLE_OVERRIDES)} may change "
                             f"(not {', '.join(fixed)})")
        resumable = {key: value if isinstance(value, str) else str(value) for key, value in overrides.items()}
        moved = data if isinstance(data, (str, Path)) else None  # the data's new location, if moved
        with lock, callers_random_state():  # training seeds the global generators; the caller's come back
            return fit(None, moved, out, val_dir=val if isinstance(val, (str, Path)) else None, resume=True,
                       resume_overrides=resumable, progress=progress)
    if data is None:
        raise InputError("--data is required (a dataset folder), unless --resume")
    if (Path(out) / "last.pt").exists():  # before in-memory pairs are written into it
        raise InputError(f"{out} already holds a run; use --resume to continue it or another --out")
    check_new_run_folder(out, PAIRS_MARKER)  # nor among files that no run wrote (config.yaml, summary.json)
    resolved = resolve_config(recipe, str(config) if config else None, _as_strings(overrides))
    with lock, callers_random_state():
        train_dir = _as_folder(data, Path(out) / "data" / "train", resolved)
        val_dir = None if val is None else _as_folder(val, Path(out) / "data" / "val", resolved)
        return fit(resolved, train_dir, out, val_dir=val_dir, progress=progress)


def _expanded(path: Any) -> Any:
    """A path given as ``~/...`` with the home folder in place of ``~`` (the shell does it for the CLI; without
    it, ``out="~/x"`` made a folder named ``~`` in the working folder); anything else as given."""
    if isinstance(path, Path):
        return path.expanduser()
    return os.path.expanduser(path) if isinstance(path, str) else path


def _path_of(name: str, value: Any, optional: bool = False) -> Any:
    """A path argument, ``~`` expanded; anything but a str or Path (None where ``optional``) is refused by name
    (``load(None)`` and ``predict_large(model, array, ...)`` ended in pathlib's TypeError)."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, Path)):
        from unetkit.errors import InputError

        kind = type(value).__name__
        raise InputError(f"{name}: expected a file or folder path (str or pathlib.Path), got a {kind}"
                         + ("; predict arrays with unetkit.load(MODEL).predict(array)" if hasattr(value, "shape")
                            else ""))
    return _expanded(value)


def _changed_on_resume(out: Path, keys: list[str], overrides: dict[str, Any]) -> list[str]:
    """Of ``keys`` given on a resume, those whose value differs from the run's (the same value again is no change)."""
    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.errors import InputError

    if not keys or not (out / "last.pt").is_file():
        return keys
    try:
        stored = ckpt.trained_config(ckpt.load_checkpoint(out / "last.pt"))
    except InputError:  # a damaged last.pt is named where the run resumes
        return keys
    changed = []
    for key in keys:
        try:
            same = apply_overrides(stored, _as_strings({key: overrides[key]})) == stored
        except InputError:
            same = False
        if not same:
            changed.append(key)
    return changed


def _as_strings(values: dict[str, Any]) -> list[str]:
    """``section.key=value`` overrides (values as YAML/JSON text, so lists and strings survive)."""
    import json

    from unetkit.config import plain_value

    return [f"{key}={value if isinstance(value, str) else json.dumps(plain_value(value))}"
            for key, value in values.items()]


PAIRS_MARKER = ".unetkit-pairs"  # in a folder of in-memory pairs that ``train`` wrote, and may write again


def _as_folder(data: str | Path | Pairs, folder: Path, config) -> str | Path:
    """A dataset folder for ``data``: itself, or in-memory pairs written as ``images/`` + labels TIFFs.

    The pairs are written into a new folder renamed into place when complete; the pairs of an earlier call that
    failed before its run began are replaced (they were trained on before: 4 stale pairs beside 2 new ones).
    ``(H, W, C)`` images (a mask of ``(H, W)``) are written channels-first, so that they are read as colour.
    """
    import shutil

    if isinstance(data, (str, Path)):
        return data
    from unetkit.data.io import MAX_PAGE_CHANNELS, to_label_dtype, write_tiff
    from unetkit.errors import InputError
    from unetkit.tasks import get_task

    pairs = list(data)
    if not pairs or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise InputError("train(data=...) takes a dataset folder or a non-empty list of (image, mask) numpy "
                         "array pairs")
    partial = folder.with_name(folder.name + ".partial")
    for existing in (folder, partial):
        if existing.exists():
            if not (existing / PAIRS_MARKER).is_file():
                raise InputError(f"{existing} exists and was not written by unetkit.train; the in-memory pairs are "
                                 "written there: move it away, or give another out")
            shutil.rmtree(existing)
    partial.mkdir(parents=True)
    (partial / PAIRS_MARKER).write_text("in-memory (image, mask) pairs written by unetkit.train\n")
    task = get_task(config)
    labels_dir = partial / task.label_folder(config)
    for index, (image, mask) in enumerate(pairs):
        image, mask = np.asarray(image), np.asarray(mask)
        if mask.ndim == 3 and mask.shape[-1] == 1:  # (H, W, 1), as many readers give a gray mask
            mask = mask[..., 0]
        if task.labels_are_ids:  # named by their pair, not by the TIFF written for them
            to_label_dtype(mask, f"pair {index}")
        if image.ndim == 3 and mask.shape[-2:] != image.shape[-2:] and mask.shape[-2:] == image.shape[:2]:
            image = np.moveaxis(image, -1, 0)  # (H, W, C) -> (C, H, W): a TIFF's leading axis of 3 is colour
        if mask.shape[-2:] != image.shape[-2:]:
            raise InputError(f"pair {index}: image of shape {image.shape} and mask of shape {mask.shape} differ "
                             "in size; each mask must cover its image")
        many = image.ndim == mask.ndim + 1 == 3 and image.shape[0] > MAX_PAGE_CHANNELS  # 5 stains: not a z-stack
        write_tiff(partial / config.data.image_dir / f"{index:04d}.tif", image, channels=many)
        write_tiff(labels_dir / f"{index:04d}.tif", mask)
    partial.rename(folder)
    return folder


def evaluate(truth: str | Path, pred: str | Path, task: str = "binary", out: str | Path | None = None,
             only_predicted: bool = False, **options: Any) -> EvaluationResult:
    """Score a folder of predictions against the truth; per-image rows and a dataset summary.

    Args:
        truth: a folder of masks / label images, or a dataset folder.
        pred: a folder of predictions, or the output folder of ``unetkit predict``.
        task: ``binary`` (Dice, IoU, Rand error ...), ``instances`` (DSB score, AP50 ...),
            ``multiclass`` (per-class Dice/IoU, confusion matrix), ``regression`` (MAE, PSNR, SSIM).
        out: write the per-image CSV (and the confusion matrix) into this folder; None: write nothing.
            It may be the ``pred`` folder, but must not overlap the truth, hold the ``pred`` folder or
            replace a file the evaluation reads (an InputError, before anything is read).
        only_predicted: score only the truth images that have a prediction (part of a dataset was predicted);
            ``summary["truth_left_out"]`` counts the others. Off: a truth image without a prediction is refused.
        **options: per task: binary ``threshold``; instances ``thresholds``; multiclass
            ``num_classes``, ``class_names``, ``ignore_label``, ``class_priority``, ``class_colors``;
            regression ``data_range``.

    Returns:
        ``EvaluationResult`` with ``rows`` (one dict per image), ``summary`` (e.g. ``summary["dice"]``) and
        ``notes``: what the numbers do not say by themselves (images left out, an option that changed nothing).

    Example::

        scores = unetkit.evaluate(truth="data/val/masks", pred="runs/x/val/masks", task="binary")
        print(scores.summary["dice"])
    """
    from unetkit.config import TASKS, plain_value
    from unetkit.errors import InputError
    from unetkit.safety.paths import check_evaluation_output
    from unetkit.safety.records import recorded_task
    from unetkit.tasks import get_task

    truth, pred, out = _path_of("truth", truth), _path_of("pred", pred), _path_of("out", out, optional=True)
    options = {key: plain_value(value) for key, value in options.items()}  # np.linspace thresholds, np.float64
    task_object = get_task(task)
    recorded = recorded_task(pred)  # the model that predicted them says what they are
    if recorded is not None and recorded[0] in TASKS:
        made_by, record = get_task(recorded[0]), recorded[1]
        allowed = made_by.scored_as or (made_by.name,)
        if task_object.name not in allowed:
            raise InputError(f"{pred} holds the predictions of a {made_by.name} model ({record}); score them with "
                             f"--task {' or --task '.join(allowed)}")
    if out is not None:  # before reading: the outputs never overlap the inputs
        from unetkit.metrics.writers import is_evaluation_picture

        check_evaluation_output(out, truth, pred, task_object.evaluation_files(Path(out)),
                                not_read=is_evaluation_picture)
    from unetkit.metrics.folders import predicted_only

    with predicted_only(only_predicted) as left_out:
        result = task_object.evaluate(truth, pred, **options)
    if only_predicted:
        result.summary["truth_left_out"] = int(sum(left_out))
    from unetkit.metrics.folders import evaluation_notes

    result.notes = evaluation_notes(result.summary, options)
    if out is not None:
        result.written = task_object.write_evaluation(result, Path(out))
    return result


def export_model(model: str | Path, out: str | Path | None = None, format: str = "onnx", *,
                 tile_size: int | None = None, name: str | None = None, authors: Sequence[str] | None = None,
                 license: str = "CC-BY-4.0", test_image: str | Path | None = None) -> Any:
    """Export a checkpoint (a .pt file, run folder or packaged model's name) for other tools, verified against
    PyTorch before it is renamed into place.

    Args:
        format: ``onnx`` (onnxruntime; ``predict --engine onnxruntime``), ``torchscript`` or ``bioimageio`` (a
            BioImage Model Zoo package for Fiji, QuPath, ilastik and napari).
        out: the file to write; None: ``model.onnx`` / ``model.ts`` / ``bioimageio.zip`` beside the checkpoint
            (in the current folder for a packaged model's name).
        tile_size: the input size the export is verified on (None: the checkpoint's tile).
        name, authors, license, test_image: the bioimage.io package's description and test input.

    Returns:
        ``unetkit.export.ExportResult`` (path, format, max_abs_diff, input_shapes, seconds), or for ``bioimageio``
        ``unetkit.export.BioimageioResult`` (path, weights, max_abs_diff, left_out).

    Example::

        result = unetkit.export_model("runs/nuclei", format="onnx")
        print(result.path, result.max_abs_diff)
    """
    from unetkit.errors import InputError
    from unetkit.export.formats import FORMATS, default_suffix
    from unetkit.export.formats import export_model as export_checkpoint

    if format not in (*FORMATS, "bioimageio"):  # before a default name is made from it
        raise InputError(f"export format '{format}': choose one of {', '.join((*FORMATS, 'bioimageio'))}")
    source, out = Path(_path_of("model", model)), _path_of("out", out, optional=True)
    folder = source if source.is_dir() else source.parent
    if format == "bioimageio":
        from unetkit.export.bioimageio import export_bioimageio

        return export_bioimageio(source, Path(out) if out else folder / "bioimageio.zip", name=name, authors=authors,
                                 license=license, tile_size=tile_size,
                                 test_image=_path_of("test_image", test_image, optional=True))
    return export_checkpoint(source, Path(out) if out else folder / f"model{default_suffix(format)}", format,
                             tile_size)


def predict_files(model: str | Path, inputs: Sequence[str | Path] | str | Path, out: str | Path, *,
                  progress: bool = True, **options: Any) -> list[dict[str, Any]]:
    """Predict image files or folders into ``out`` (the files of ``unetkit predict``); one row per image.

    ``options`` are the fields of ``unetkit.inference.files.PredictOptions``: ``tile_size``, ``overlap``,
    ``batch_size``, ``tta``, ``instances``, ``device``, ``engine``, ``save_probabilities``,
    ``class_probabilities``, ``compile``, ``winograd``, ``autotune``, ``precision``, ``nan_policy``, and for
    microscopy files (OME-TIFF, ImageJ TIFF, OME-Zarr) ``channels`` (indices from 0, -1 the last, or names,
    e.g. ``["DAPI"]``), ``axes`` (e.g. ``"TYX"``), ``time`` and ``plane`` (None: what the model was trained on).
    ``out`` must not hold an input or be a dataset folder, and is locked against a second writer while predicting
    (``unetkit.safety``). ``out/prediction.json`` records the model and settings; a folder whose record names
    another model or other settings is refused (``safety.records``).
    """
    import contextlib
    import dataclasses

    from unetkit.checkpoint import resolve_path
    from unetkit.devices import object_group
    from unetkit.errors import InputError
    from unetkit.inference.files import PredictOptions, load_predictor, predict_with
    from unetkit.inference.tile_plan import tile_taken
    from unetkit.safety.locks import folder_lock
    from unetkit.safety.paths import check_not_a_run_folder, check_output_folder
    from unetkit.safety.records import claim_prediction_folder, release_unused_claim

    # one file or folder (iterating a string would give its characters); a generator is read once, here
    inputs = [_path_of("inputs", item) for item in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    model, out = _path_of("model", model), _path_of("out", out)
    known = {field.name for field in dataclasses.fields(PredictOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"predict_files: unknown option {', '.join(unknown)}; valid options: "
                         f"{', '.join(sorted(known))}")
    settings = PredictOptions(**options)
    check_output_folder(out, inputs)  # before the lock creates the folder
    check_not_a_run_folder(out)  # whose overlays/ predictions would replace
    with object_group() as group, contextlib.ExitStack() as held:  # under torchrun: its processes, joined
        first_rank = group is None or group.rank == 0
        refusal: Exception | None = None
        try:
            if first_rank:  # one writer per folder; out/prediction.json: another model's or settings' is refused
                held.enter_context(folder_lock(out, "predict"))
            predictor = load_predictor(model, settings)
            if first_rank:
                unused = {"save_probabilities", "class_probabilities"} - set(predictor.task.map_options)
                recorded = {key: value for key, value in dataclasses.asdict(settings).items()  # same outputs
                            if key not in ("device", "batch_size", "compile", "autotune", *unused)}  # either way
                inference = predictor.config.inference
                used = {"inference": dataclasses.asdict(inference),  # the values behind the Nones
                        **predictor.task.prediction_record(predictor.config)}
                if inference.tile_size:  # the tile the network takes for it (an unpadded net's valid size)
                    used["tile_taken"] = tile_taken(predictor.geometry, int(inference.tile_size))
                claim_prediction_folder(out, resolve_path(model), recorded, predictor.task.name, used)
        except Exception as error:  # noqa: BLE001 - told to the other processes first, then raised
            refusal = error
        if group is not None:  # the first process's checks stop every process, before any writes
            told = group.broadcast(None if refusal is None else str(refusal))
            if refusal is None and told is not None:
                raise InputError(told)
        if refusal is not None:
            raise refusal
        try:
            return predict_with(predictor, list(inputs), out, settings, progress=progress,
                                gather=None if group is None else group.gather)
        except BaseException:  # refused or interrupted before its first output: no record claims the folder
            if first_rank:
                release_unused_claim(out)
            raise


def predict_large(model: str | Path, image: str | Path, out: str | Path, *, instances: str | Path | None = None,
                  chunk: int = 2048, halo: int = 128, engine: str = "torch", device: str = "auto",
                  tile_size: int | None = None, overlap: float | None = None, batch_size: int | None = None,
                  tta: bool | None = None, strip_width: int = 4096, out_dtype: str = "float32",
                  progress: bool = True, resume: bool = False, nan_policy: str | None = None,
                  precision: str | None = None, channels: Sequence[int | str] | None = None,
                  axes: str | None = None, time: int | None = None, plane: int | None = None) -> dict[str, Any]:
    """Predict one image file larger than memory (.npy, .tif, .zarr, OME-TIFF, OME-Zarr) into ``out``.

    ``out`` (.npy, .tif, .zarr, or ``.ome.zarr`` / ``.ome.tif`` with a pyramid and the input's pixel
    size) gets what ``predict`` computes: probabilities (K, *S), or regression values in the target's
    units. ``instances``: also write instance labels (.npy/.zarr; 2D: or a tiled .tif), post-processed in ``chunk`` px
    chunks with ``halo`` px of context; with an ``.ome.zarr`` ``out``, a plain name (e.g. ``nuclei``)
    puts them in its ``labels/`` group. ``channels``, ``axes``, ``time``, ``plane``: what to read from
    a microscopy file (None: what the model was trained on). Outputs are written under an unfinished
    name and renamed when complete; ``resume`` continues an interrupted prediction strip by strip, at the
    scale it chose.
    ``nan_policy`` (None: the checkpoint's): NaN/Inf pixels ``error`` | ``zero`` | ``nearest``.
    ``precision`` (None: the checkpoint's ``inference.precision``): ``fp32`` | ``bf16`` on a CPU.
    An instances model's ``postprocess.upscale_below_area`` rule (images of small objects predicted at 2x,
    ``unetkit.inference.small_objects``) decides from the whole first answer up to 4 MP and from 16 blocks of
    512 px beyond (``small_objects_lazy``); the stats' ``scale`` says which road was taken. A whole first
    answer that stays at 1x is the output (the image is not predicted twice).
    A second ``predict_large`` into the same ``out`` is refused while this one runs (``<out>.lock``,
    stale locks of dead processes taken over). Returns ``{"prediction": StreamStats, "instances":
    ChunkedStats or None, "instances_path": where the labels went or None}``.
    """
    import contextlib

    from unetkit.config import plain_value
    from unetkit.inference.predictor import Predictor
    from unetkit.inference.streaming import check_label_output, model_origin, stream_file
    from unetkit.safety.locks import file_lock
    from unetkit.safety.options import check_int

    model, image, out = _path_of("model", model), _path_of("image", image), _path_of("out", out)
    instances = _path_of("instances", instances, optional=True)
    chunk, halo, strip_width = plain_value(chunk), plain_value(halo), plain_value(strip_width)
    for option, value, low in (("--chunk", chunk, 1), ("--halo", halo, 0), ("--strip", strip_width, 1)):
        check_int(option, value, low)  # refused before predicting, not after
    plan = _LargeOutputs.check(model, image, out, instances, resume)
    selection = {"channels": None if channels is None else list(channels), "axes": axes, "time": time,
                 "plane": plane}
    with contextlib.ExitStack() as locks:  # one writer per output file: <out>.lock (and <instances>.lock)
        locks.enter_context(file_lock(out, "predict-large"))
        if plan.labels_file:
            locks.enter_context(file_lock(instances, "predict-large"))
        predictor = Predictor.load(model, device, engine, selection=selection, tile_size=tile_size,
                                   overlap=overlap, batch_size=batch_size, tta=tta, nan_policy=nan_policy,
                                   precision=precision)
        kind = predictor.task.instance_kind(predictor.config) if instances else None  # fails before predicting
        if plan.labels_file:
            check_label_output(instances, predictor.spatial_dims)  # and so does a file it cannot write
        if plan.labels_only:  # its probabilities are complete: the labels are made from them again
            stats = _complete_output_stats(out)
        else:
            stats = stream_file(predictor, image, out, strip_width, out_dtype, progress, resume=resume,
                                origin=model_origin(model, engine))
        chunked, labels_path = None, None
        if instances:
            chunked, labels_path = plan.write_instances(predictor, kind, image, chunk, halo, progress)
        return {"prediction": stats, "instances": chunked, "instances_path": labels_path}


class _LargeOutputs:
    """What ``predict_large`` writes: the probabilities ``out`` and, with ``instances``, labels in a file of their own
    or in the OME-Zarr output's ``labels/`` group; checked before the model loads."""

    def __init__(self, out: Path, instances: str | Path | None, labels_only: bool, into_ome_zarr: bool):
        self.out, self.instances = out, instances
        self.labels_only, self.into_ome_zarr = labels_only, into_ome_zarr
        self.labels_file = bool(instances) and not into_ome_zarr

    @classmethod
    def check(cls, model: str | Path, image: str | Path, out: str | Path, instances: str | Path | None,
              resume: bool) -> _LargeOutputs:
        """Refuse outputs that would replace an input or a finished file, or a format the probabilities cannot be
        written in; a resumed run whose probabilities are complete makes only its labels again."""
        from unetkit.data.formats import format_of
        from unetkit.errors import InputError
        from unetkit.inference import ome_writers
        from unetkit.safety.partial import PartialOutput
        from unetkit.safety.paths import check_new_output, check_output_file

        check_output_file(out, [image, model])
        labels_only = (resume and instances is not None and Path(out).exists()  # the instance step was interrupted
                       and PartialOutput(instances).stored_signature() == cls.made_of(out))
        if not labels_only:
            check_new_output(out)  # a finished output (or any other file) is never written over; --resume continues
        if format_of(out) not in ("npy", "tiff", "zarr"):  # before the model loads, naming the path given
            raise InputError(f"--out {out}: the probabilities of a large image are written to .npy, .tif/.tiff or "
                             ".zarr (.ome.zarr, .ome.tif with OME metadata); give such a path")
        name = str(instances) if instances else ""
        into_ome_zarr = bool(name) and ome_writers.is_ome_zarr_output(out) and "." not in name and "/" not in name
        if instances and not into_ome_zarr:
            check_output_file(instances, [image, model, out], "--instances")
            check_new_output(instances, "--instances")
        return cls(Path(out), instances, labels_only, into_ome_zarr)

    @staticmethod
    def made_of(out: str | Path) -> dict[str, Any]:
        """What unfinished labels record of the probabilities they are made of: their path and, once written, their
        modification time (a resume makes the labels again only from the same finished file)."""
        made_of: dict[str, Any] = {"probabilities": str(Path(out).resolve())}
        if Path(out).exists():
            made_of["modified_ns"] = Path(out).stat().st_mtime_ns
        return made_of

    def write_instances(self, predictor: Any, kind: str, image: str | Path, chunk: int, halo: int,
                        progress: bool) -> tuple[Any, str]:
        """(the chunked post-processing's stats, where the labels went), made from the finished probabilities."""
        from unetkit.data.ome import pixel_size
        from unetkit.inference import ome_writers
        from unetkit.inference.chunked import instances_large
        from unetkit.safety.partial import PartialOutput

        postprocess, name = predictor.config.postprocess, str(self.instances)
        if self.into_ome_zarr:  # a labels/ group of the OME-Zarr output
            chunked = ome_writers.instances_into_ome_zarr(self.out, name, postprocess, kind, chunk, halo,
                                                          progress=progress)
            return chunked, f"{self.out}/labels/{name}"
        labels = PartialOutput(self.instances)  # written under an unfinished name, renamed when complete
        labels.start(self.made_of(self.out), resume=False)
        chunked = instances_large(self.out, labels.work, postprocess, kind, chunk, halo, progress=progress,
                                  spacing=pixel_size(image, predictor.spatial_dims))
        labels.finish()
        return chunked, name


def _complete_output_stats(out: str | Path) -> Any:
    """The stats of a probabilities file that a resumed run finds complete (nothing predicted again)."""
    import math
    import sys

    from unetkit.inference.streaming import StreamStats, open_source, peak_rss_mb

    print(f"note: {out} is complete and its instance labels were interrupted: they are made from it again",
          file=sys.stderr)
    shape = tuple(int(n) for n in open_source(out, spatial_dims=None).shape)
    return StreamStats(shape, 0.0, math.prod(shape[1:]) / 1e6, 0.0, 0, 0, peak_rss_mb())
