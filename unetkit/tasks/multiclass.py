"""The multiclass task: class-id masks (0 = background, 1..K-1), 2D images.

Masks are class-id images (PNG/TIFF; palette PNGs give their index), colour-coded masks with a class
table (``data.class_colors``), or one folder of binary masks per class beside the images
(``unetkit.data.class_folders``). ``resolve`` fills in the class names, K and (on request) class
weights from the training pixel counts, so the saved config and every checkpoint carry them.

Validation pools one confusion matrix over the images (as ``unetkit evaluate`` does):
``val_mean_dice`` over classes 1..K-1 picks best.pt; ``val_dice_<class>`` per class. Prediction
writes class-id masks, overlays with a legend, ``classes.csv`` and on request one probability map per
class.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.class_folders import (
    class_folder_names,
    find_class_folder_samples,
    is_class_folders,
    load_class_folder_labels,
)
from unetkit.data.layouts import Sample, find_samples, load_image, load_sample, split_samples
from unetkit.data.masks import (
    ClassTable,
    check_class_ids,
    class_dtype,
    class_pixel_counts,
    default_class_names,
    frequency_class_weights,
    priority_order,
    read_class_mask,
)
from unetkit.data.splits import SplitData, map_samples, model_channels
from unetkit.errors import InputError
from unetkit.safety.labels import check_contiguous_class_ids
from unetkit.tasks.base import OutputOptions, PredictFn, Result, Task


def require_2d(task: Task, config: RunConfig) -> None:
    """3D networks train the tasks marked ``volumes`` only."""
    from unetkit.models.registry import model_spatial_dims

    if model_spatial_dims(config.model) == 3 and not task.volumes:
        raise InputError(f"3D networks train the binary and instances tasks; task '{task.name}' is 2D only")


def class_table(config: RunConfig) -> ClassTable:
    """The class table of a resolved multiclass config (names, colours, ignore label)."""
    return ClassTable.from_config(config.data, config.model.out_channels)


def safe_name(name: str) -> str:
    """A class name usable as a folder name: other than letters (of any script), digits, '-', '_' and '.' -> '_'.

    Example: "mitochondrial boundaries" -> "mitochondrial_boundaries"; "α" stays "α".
    """
    return re.sub(r"[^\w.-]+", "_", name).strip("_.") or "class"


def folder_names(names: list[str]) -> list[str]:
    """One distinct folder name per class (``safe_name``; a clash, such as "a b" and "a_b", gets the class index):
    two classes never write into one folder."""
    safe = [safe_name(name) for name in names]
    chosen: list[str] = []
    for index, name in enumerate(safe):
        taken = {other.lower() for other in chosen} | {other.lower() for other in safe[index + 1:]}
        candidate, extra = name, 0
        while candidate.lower() in taken:  # case-insensitive file systems too; "a_b_1" may be a class's own name
            extra += 1
            candidate = f"{name}_{index}" if extra == 1 else f"{name}_{index}_{extra}"
        chosen.append(candidate)
    return chosen


def uses_class_folders(root: str | Path, config: RunConfig) -> bool:
    """True when ``root`` is read with the class-folders layout (asked for, or detected)."""
    if config.data.layout == "class-folders":
        return True
    return config.data.layout == "auto" and is_class_folders(root, config.data.image_dir)


def _is_class_folder_sample(sample: Sample, names: list[str]) -> bool:
    """A class-folders sample has one mask per class, in ``<root>/<class name>/`` next to the images."""
    root = sample.image_path.parent.parent
    if len(sample.label_paths) != len(names) - 1:
        return False
    pairs = zip(sample.label_paths, names[1:], strict=True)
    return all(path.parent.name == name and path.parent.parent == root for path, name in pairs)


def load_multiclass_sample(sample: Sample, config: RunConfig, table: ClassTable) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, *S) float32 normalised, class map (*S) int32 with the ignore label kept) of a sample."""
    low, high = config.data.normalize_low, config.data.normalize_high
    if _is_class_folder_sample(sample, list(table.names)):
        image = load_image(sample, low, high)
        priority = priority_order(table.names, config.data.class_priority)
        return image, load_class_folder_labels(sample, priority, image.shape[1:])
    if table.colors and sample.index is None:
        image = load_image(sample, low, high)
        labels = read_class_mask(sample.label_paths[0], table)
        if labels.shape != image.shape[1:]:
            raise InputError(f"{sample.label_paths[0]}: mask of size {labels.shape} but its image "
                             f"{sample.image_path} is {image.shape[1:]}; masks must have their image's size")
        return image, labels
    image, labels = load_sample(sample, low, high)
    where = sample.label_paths[0] if sample.label_paths else sample.image_path
    return image, check_class_ids(labels, table, where)


def training_samples(task: Task, config: RunConfig, train_dir: str | Path, has_val_dir: bool) -> list[Sample]:
    """The samples training learns from (the fixed-seed split leaves validation out)."""
    samples = task.find_samples(train_dir, config)
    if has_val_dir:
        return samples
    return split_samples(samples, config.data.val_fraction, config.data.split_seed)[0] or samples


def _max_class_id(samples: list[Sample], config: RunConfig) -> int:
    """Largest class id (ignore label left out) over the index masks of ``samples``."""
    from unetkit.data.layouts import load_labels

    found: dict[int, str] = {}  # class id -> first file holding it
    for sample, labels in zip(samples, map_samples(samples, load_labels, "counting classes"), strict=True):
        values = labels[labels != config.data.ignore_label]
        for value in np.unique(values).tolist():
            found.setdefault(int(value), str(sample.label_paths[0] if sample.label_paths else sample.image_path))
    return check_contiguous_class_ids(found)  # a stray id (e.g. 7 among 0..2) is refused, not made a class


def _multiclass_names(config: RunConfig, train_dir: str | Path, samples: list[Sample]) -> list[str]:
    data = config.data
    if uses_class_folders(train_dir, config):
        return class_folder_names(train_dir, data.image_dir, data.class_names)
    if data.class_names:
        return list(data.class_names)
    if data.class_colors:
        return default_class_names(len(data.class_colors))
    top = _max_class_id(samples, config)
    if top >= 255:  # more likely instance ids than classes
        raise InputError(
            f"the masks in {train_dir} hold ids up to {top}; multiclass masks hold class ids 0..K-1. If "
            "these are object ids use --task instances; if there really are that many classes set "
            "data.class_names")
    return default_class_names(max(top + 1, 2))


def check_auto_target(task: Task, config: RunConfig) -> None:
    """multiclass and regression derive their target from the files."""
    if config.data.target != "auto":
        raise InputError(f"data.target={config.data.target} applies to binary and instances; the {task.name} "
                         "task derives its target from the files, so leave data.target at auto")


class MulticlassTask(Task):
    """Semantic segmentation into K classes; see the module docstring."""

    name = "multiclass"
    score_key = "val_mean_dice"
    evaluate_options = ("num_classes", "ignore_label", "class_names", "class_priority", "class_colors")
    map_options = ("class_probabilities",)

    def find_samples(self, root: str | Path, config: RunConfig, require_labels: bool = True) -> list[Sample]:
        """Class-folders layout (one mask folder per class) or any ``find_samples`` layout with one
        class-id (or colour-coded) mask per image."""
        require_2d(self, config)
        data = config.data
        if uses_class_folders(root, config):
            return find_class_folder_samples(root, data.image_dir, data.class_names, require_labels)
        return find_samples(root, data.layout, data.image_dir, data.mask_dir, require_labels)

    def resolve(self, config: RunConfig, train_dir: str | Path, val_dir: str | Path | None = None) -> RunConfig:
        """``data.class_names`` (class folders, the config, or ``class1..`` up to the largest id in the
        masks), ``model.out_channels`` = K, with ``loss.auto_class_weights`` the class weights from the
        training pixel counts, and ``model.in_channels`` from the first image."""
        check_auto_target(self, config)
        data = config.data
        samples = self.find_samples(train_dir, config)
        values: dict[str, Any] = {"model.in_channels": model_channels(config, samples[0])}
        names = _multiclass_names(config, train_dir, samples)
        table = ClassTable.from_config(dataclasses.replace(data, class_names=names))
        priority_order(table.names, data.class_priority)  # unknown names fail here, before any run folder
        values.update({"data.class_names": list(table.names), "model.out_channels": table.num_classes})
        weights = list(config.loss.class_weights)
        if weights and len(weights) != table.num_classes:
            raise InputError(f"loss.class_weights has {len(weights)} values for {table.num_classes} classes "
                             f"({', '.join(table.names)}); give one weight per class, background first")
        if config.loss.auto_class_weights and not weights:
            resolved = apply_overrides(config, values)
            train = training_samples(self, resolved, train_dir, val_dir is not None)
            maps = map_samples(train, lambda s: load_multiclass_sample(s, resolved, table)[1], "class counts")
            counts = class_pixel_counts(maps, table.num_classes, table.ignore_label)
            values["loss.class_weights"] = frequency_class_weights(counts)
        return apply_overrides(config, values)

    def build_split(self, samples: list[Sample], config: RunConfig, desc: str,
                    with_weights: bool = True) -> SplitData:
        """``labels`` and ``targets`` are the class map (targets uint8 when ids fit); weight maps
        (``data.weight_map``) use the connected foreground regions as objects."""
        table = class_table(config)
        dtype = class_dtype(table.num_classes, table.ignore_label)
        pairs = map_samples(samples, lambda s: load_multiclass_sample(s, config, table), desc)
        split = SplitData(weights=[] if config.data.weight_map and with_weights else None)
        for sample, (image, labels) in zip(samples, pairs, strict=True):
            split.add_image(sample.name, image, config.model.in_channels, sample.image_path)
            split.labels.append(labels)
            split.targets.append(labels.astype(dtype))
            if split.weights is not None:
                split.weights.append(_multiclass_weights(labels, config, table))
        return split

    def patch_ignore_label(self, config: RunConfig) -> int | None:
        return config.data.ignore_label

    def validate(self, predict: PredictFn, val: SplitData, config: RunConfig,
                 overlay_dir: Path | None = None) -> dict[str, float]:
        """Pooled per-class Dice/IoU of the argmax of overlap-tile predictions."""
        from unetkit.metrics.multiclass import MulticlassMetric
        from unetkit.visualize.images import class_overlay, save_rgb, side_by_side
        from unetkit.visualize.legend import with_legend

        table = class_table(config)
        colours = table.display_colors()
        metric = MulticlassMetric(table.num_classes, table.ignore_label)
        for index, (name, image, labels) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
            predicted = predict(image).argmax(0)  # (K, *S) -> (*S)
            metric.update(labels, predicted)
            if overlay_dir is not None and index < config.train.overlays:
                truth = np.where(labels == table.ignore_label, 0, labels)
                panel = side_by_side(class_overlay(image, predicted, colours), class_overlay(image, truth, colours))
                save_rgb(overlay_dir / f"{name}.png", with_legend(panel, table.names, colours))
        return {**self.pooled_row(metric.confusion, config), self.POOLED: metric.confusion}

    def pooled_row(self, pooled: Any, config: RunConfig) -> dict[str, float]:
        """Mean / per-class Dice, IoU and pixel accuracy of a pooled confusion matrix."""
        from unetkit.metrics.multiclass import mean_foreground, per_class_dice, per_class_iou, pixel_accuracy

        dice, iou = per_class_dice(pooled), per_class_iou(pooled)
        row = {"val_mean_dice": mean_foreground(dice), "val_mean_iou": mean_foreground(iou),
               "val_pixel_accuracy": pixel_accuracy(pooled)}
        row.update({f"val_dice_{n}": float(d) for n, d in zip(class_table(config).names, dice, strict=True)})
        return row

    def result(self, output: np.ndarray, config: RunConfig, instances: bool = False,
               labels: np.ndarray | None = None) -> Result:
        if instances or labels is not None:
            self.instance_kind(config)  # raises: class maps have no instances
        table = class_table(config)
        dtype = np.uint8 if table.num_classes <= 256 else np.uint16
        return Result(probabilities=output, mask=output.argmax(0).astype(dtype),
                      extra={"class_names": list(table.names)})

    def write_outputs(self, result: Result, image: np.ndarray, writer, config: RunConfig,
                      options: OutputOptions) -> dict[str, Any]:
        """Class-id mask, overlay with legend, per-class probabilities on request; class fractions."""
        from unetkit.visualize.images import class_overlay
        from unetkit.visualize.legend import with_legend

        table = class_table(config)
        classes = result.mask
        writer.mask("masks", classes)
        colours = table.display_colors()
        writer.picture("overlays", with_legend(class_overlay(image, classes, colours), table.names, colours))
        if options.class_probabilities:
            for index, folder in enumerate(folder_names(list(table.names))):
                writer.float_map(f"probabilities/{folder}", result.probabilities[index])
        counts = np.bincount(classes.ravel(), minlength=table.num_classes)
        fractions = zip(table.names, counts / classes.size, strict=True)
        return {f"fraction_{name}": round(float(share), 4) for name, share in fractions}

    def finish_outputs(self, rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
        """``classes.csv``: one row per image with its share of pixels per class."""
        from unetkit.metrics.writers import write_rows_csv

        return [write_rows_csv(rows, out_dir / "classes.csv")] if rows else []

    def prediction_record(self, config: RunConfig) -> dict[str, Any]:
        """The model's class names: its class ids are their order, which a class-folders truth must follow."""
        return {"class_names": list(config.data.class_names)} if config.data.class_names else {}

    def evaluate(self, truth: str | Path, pred: str | Path, **options: Any):
        """Score class-id predictions. Without ``class_names`` the model's, recorded where ``predict`` wrote
        ``pred``, name the classes: a class-folders truth is then read in the model's class order (its folders
        sorted would give other ids to the same classes), and class-id truth needs no ``num_classes``."""
        from unetkit.metrics.folders import evaluate_multiclass

        self.check_options(options)
        ignore = options.get("ignore_label")
        names, num_classes = options.get("class_names"), options.get("num_classes")
        if not names and not options.get("class_colors"):
            names = _recorded_class_names(truth, pred, num_classes)
        return evaluate_multiclass(truth, pred, num_classes, 255 if ignore is None else ignore,
                                   names, options.get("class_priority") or (), options.get("class_colors") or ())

    def evaluation_files(self, out: Path) -> list[Path]:
        """The per-image CSV, ``confusion_matrix.csv`` and ``confusion_matrix.png``."""
        return [*super().evaluation_files(out), out / "confusion_matrix.csv", out / "confusion_matrix.png"]

    def write_evaluation(self, result, out: Path) -> list[Path]:
        """The per-image CSV and the confusion matrix as CSV and PNG."""
        from unetkit.metrics.writers import write_confusion_matrix

        written = super().write_evaluation(result, out)
        try:
            written += write_confusion_matrix(result.summary["confusion_matrix"], result.summary["class_names"],
                                              *self.evaluation_files(out)[1:])
        except OSError as error:
            raise InputError(f"cannot write the confusion matrix to {out}: {error}; choose --out") from error
        return written


def _multiclass_weights(labels: np.ndarray, config: RunConfig, table: ClassTable) -> np.ndarray:
    """Paper eq. 2 weight map for a class map: objects are connected foreground regions (so the border
    term falls on background gaps between them), class balance over the classes; 0 on ignored pixels
    (the loss leaves them out anyway)."""
    from unetkit.data.weightmaps import instance_labels_from_foreground, weight_map

    classes = np.where(labels == table.ignore_label, 0, labels)
    objects = instance_labels_from_foreground(classes > 0)
    weights = weight_map(objects, config.data.w0, config.data.sigma, foreground=classes,
                         balance=config.data.weight_balance, small_object_area=config.data.small_object_area)
    weights[labels == table.ignore_label] = 0
    return weights


def _recorded_class_names(truth: str | Path, pred: str | Path, num_classes: int | None) -> list[str] | None:
    """The class names of the model that predicted ``pred`` (its record), checked against ``truth``'s class folders;
    None without a record, or when ``num_classes`` says the user counts the classes otherwise."""
    from unetkit.data.class_folders import class_folder_names, is_class_folders
    from unetkit.safety.records import recorded_value

    recorded = recorded_value(pred, "class_names")
    if recorded is None:
        return None
    names, record = recorded
    if not isinstance(names, list) or (num_classes is not None and num_classes != len(names)):
        return None
    if Path(truth).is_dir() and is_class_folders(Path(truth)):
        folders = class_folder_names(truth)[1:]
        missing = [name for name in names[1:] if name not in folders]
        if missing:
            raise InputError(f"{truth}: no mask folder for the class(es) {', '.join(missing)} of the model that made "
                             f"{pred} ({record}: {', '.join(names)}); name the truth's folders after the model's "
                             "classes, or give --class-names (background first, then the truth's folder for each of "
                             "the model's classes, in the model's order)")
    return names
