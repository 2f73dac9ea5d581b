"""What a task is: the one object the rest of unetkit asks about targets, outputs, scores and files.

| task       | target                              | outputs | loss             | activation | score         |
| ---------- | ----------------------------------- | ------- | ---------------- | ---------- | ------------- |
| binary     | 0/1 from the mask (*S)              | 2       | CE + Dice        | softmax    | val_dice      |
| instances  | background/interior/boundary (*S)   | 3       | CE + Dice        | softmax    | val_dsb_score |
| multiclass | class ids 0..K-1, ignore label (*S) | K       | CE + Dice        | softmax    | val_mean_dice |
| regression | target, normalised (C', *S)         | C'      | l1/mse/smooth_l1 | none       | val_psnr      |

A task is stateless: every method takes the run config. Training asks it for samples, targets, the
loss and validation scores; prediction for the activation, the ``Result`` of an image and the files
to write; evaluation for the folder evaluator. Adding a task means one module with a ``Task`` subclass
and one line in ``unetkit.tasks.TASKS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unetkit.config import RunConfig
from unetkit.data.layouts import Sample
from unetkit.data.splits import SplitData
from unetkit.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from unetkit.inference.writers import OutputWriter
    from unetkit.metrics.folders import EvaluationResult

# (C, *S) normalised image -> (K, *S) network output after the task's activation (and output transform)
PredictFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Result:
    """What a model gives for one image; the fields a task does not produce are None.

    - ``probabilities``: (K, *S) float32 softmax class probabilities (segmentation tasks)
    - ``mask``: (*S) bool foreground (binary, instances) or class ids (multiclass)
    - ``labels``: (*S) instance ids 1..N, 0 = background (instances, or when asked for): uint16, or uint32 past
      65,535 objects
    - ``values``: (C', *S) float32 regression output in the target's units
    """

    probabilities: np.ndarray | None = None
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    values: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific entries (e.g. class names)

    @property
    def foreground(self) -> np.ndarray | None:
        """(*S) foreground probability, 1 - P(background), of a segmentation result."""
        return None if self.probabilities is None else (1.0 - self.probabilities[0]).astype(np.float32)

    def measure(self, image: np.ndarray | None = None) -> list[dict[str, Any]]:
        """One row per object of ``labels``: id, area, centroid, bounding box (and mean intensity of
        ``image``, (*S), (C, *S) or (*S, C) as ``predict`` took it); see ``unetkit.inference.objects.object_table``."""
        from unetkit.inference.objects import object_table

        if self.labels is None:
            raise InputError("this result has no instance labels; predict with instances=True (binary models) "
                             "or use an instances model")
        if image is not None:
            image = np.asarray(image)
            channels_last = image.ndim == self.labels.ndim + 1 and image.shape[:-1] == self.labels.shape
            if channels_last and image.shape[1:] != self.labels.shape:  # an RGB (H, W, 3): channels first
                image = np.moveaxis(image, -1, 0)
        return object_table(self.labels, image)

    @property
    def num_objects(self) -> int:
        """Number of instances in ``labels`` (0 when there are none)."""
        return 0 if self.labels is None else int(self.labels.max(initial=0))


@dataclass
class OutputOptions:
    """What ``unetkit predict`` writes beyond a task's defaults."""

    instances: bool = False  # segmentation: also instance labels, coloured instances, object tables
    save_probabilities: bool = True  # binary/instances: foreground probability maps
    class_probabilities: bool = False  # multiclass: one probability map per class


class Task(ABC):
    """Base class of the tasks; subclasses set the class attributes and implement the abstract methods."""

    name: str = ""
    score_key: str = ""  # the validation score that picks best.pt (higher is better)
    activation: str = "softmax"  # applied to the logits at prediction: softmax | sigmoid | none
    volumes: bool = False  # whether 3D networks train this task
    evaluate_options: tuple[str, ...] = ()  # keyword options of ``evaluate`` (for the CLI and the API)
    scored_as: tuple[str, ...] = ()  # the tasks its predictions may be evaluated as (empty: its own alone)
    sizes_objects: bool = False  # its answer is objects whose size can choose the scale of a second pass
    #                              (``postprocess.upscale_below_area``, ``unetkit.inference.small_objects``)
    POOLED = "_pooled"  # a validation row's key for what the task pools over images (summed over processes)
    map_options: tuple[str, ...] = ()  # which of OutputOptions' save_probabilities / class_probabilities its
    #                                    ``write_outputs`` reads (the other changes nothing it writes)
    instances_always: bool = False  # its answer is instances: ``predict`` writes them without --instances
    tunes_postprocess: bool = False  # a run tunes its instance post-processing at its end (``training.finalize``)
    labels_are_ids: bool = True  # its training masks hold class or object ids (integers from 0), not values

    # ---------------------------------------------------------------------------------------------
    # training

    def target_kind(self, config: RunConfig) -> str:
        """The training target: ``binary`` | ``three-class`` (binary/instances) or the task's name."""
        return self.name

    def label_folder(self, config: RunConfig) -> str:
        """Name of the label folder beside ``images/`` in a ``folders`` dataset."""
        return config.data.mask_dir

    @abstractmethod
    def find_samples(self, root: str | Path, config: RunConfig, require_labels: bool = True) -> list[Sample]:
        """The samples of a dataset folder as this task reads it."""

    @abstractmethod
    def resolve(self, config: RunConfig, train_dir: str | Path, val_dir: str | Path | None = None) -> RunConfig:
        """``config`` with what depends on the data filled in (channels, classes, target normalisation)."""

    @abstractmethod
    def build_split(self, samples: list[Sample], config: RunConfig, desc: str,
                    with_weights: bool = True) -> SplitData:
        """Load ``samples`` and derive targets (and weight maps when the config asks and ``with_weights``)."""

    def loss(self, config: RunConfig) -> nn.Module:
        """The loss module (takes logits, targets and optional weight maps)."""
        from unetkit.losses import SegmentationLoss

        return SegmentationLoss(config.loss, config.data.ignore_label)

    def loss_input(self, output: np.ndarray, config: RunConfig) -> np.ndarray:
        """What :meth:`loss` takes as logits, recovered from a whole-image output (K, *S) after the
        activation: log-probabilities for softmax (softmax of them gives the probabilities back, so the
        loss is that of the prediction), log-odds for sigmoid. Used for the validation loss."""
        if self.activation == "softmax":
            return np.log(np.clip(output, 1e-7, None))
        if self.activation == "sigmoid":
            clipped = np.clip(output, 1e-7, 1 - 1e-7)
            return np.log(clipped) - np.log1p(-clipped)
        return output

    def patch_ignore_label(self, config: RunConfig) -> int | None:
        """Label value the patch sampler keeps out of foreground centres and padding (None: none)."""
        return config.data.ignore_label if config.data.sparse_labels else None

    @abstractmethod
    def validate(self, predict: PredictFn, val: SplitData, config: RunConfig,
                 overlay_dir: Path | None = None) -> dict[str, float]:
        """Validation scores (``val_*``) of whole-image predictions; overlays of the first images."""

    def pooled_row(self, pooled: Any, config: RunConfig) -> dict[str, float]:
        """The validation scores of what ``validate`` pooled under ``POOLED`` (the sum over torchrun's processes of
        each one's share). Tasks whose scores are means over images pool nothing and add no score here; a task
        that pools over pixels (multiclass) gives its scores of the summed counts."""
        return {}

    # ---------------------------------------------------------------------------------------------
    # prediction

    def output_names(self, config: RunConfig) -> list[str]:
        """What each output channel holds (exports name them): the class names, else background, class1, ..."""
        channels = config.model.out_channels
        if len(config.data.class_names) == channels:
            return list(config.data.class_names)
        return ["background", *(f"class{k}" for k in range(1, channels))]

    def prediction_record(self, config: RunConfig) -> dict[str, Any]:
        """What a prediction folder's record (``prediction.json``) keeps of the model beside its task, for reading
        the predictions later (evaluate): nothing by default."""
        return {}

    def instance_kind(self, config: RunConfig) -> str:
        """The target kind post-processing reads to make instance labels (binary / three-class)."""
        raise InputError(f"instance labels come from binary or instances models; this is a {self.name} model")

    def output_transform(self, config: RunConfig) -> Callable[[np.ndarray], np.ndarray] | None:
        """A map applied to every predicted tile (B, K, *S) after the activation (None: identity).

        It must be per-channel affine (or identity) so that blending tiles commutes with it.
        """
        return None

    @abstractmethod
    def result(self, output: np.ndarray, config: RunConfig, instances: bool = False,
               labels: np.ndarray | None = None) -> Result:
        """The ``Result`` of one image from its stitched network output (K, *S).

        ``labels``: instance labels already made from ``output`` by the same post-processing (the predictor's
        small-object rule makes them), used instead of making them again; tasks without instances refuse them.
        """

    @abstractmethod
    def write_outputs(self, result: Result, image: np.ndarray, writer: OutputWriter, config: RunConfig,
                      options: OutputOptions) -> dict[str, Any]:
        """Write one image's output files; returns the entries the task adds to its summary row."""

    def finish_outputs(self, rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
        """Files written once per prediction run (e.g. multiclass ``classes.csv``)."""
        return []

    # ---------------------------------------------------------------------------------------------
    # evaluation

    @abstractmethod
    def evaluate(self, truth: str | Path, pred: str | Path, **options: Any) -> EvaluationResult:
        """Score a folder of predictions against the truth (see ``unetkit.metrics.folders``)."""

    def evaluation_files(self, out: Path) -> list[Path]:
        """The files ``write_evaluation`` writes into ``out`` (checked against the inputs beforehand)."""
        return [out / f"evaluation_{self.name}.csv"]

    def write_evaluation(self, result: EvaluationResult, out: Path) -> list[Path]:
        """Write the per-image CSV (and task extras such as the confusion matrix) into ``out``."""
        from unetkit.metrics.writers import write_rows_csv

        return [write_rows_csv(result.rows, self.evaluation_files(out)[0])]

    def check_options(self, options: dict[str, Any]) -> None:
        """An InputError for evaluation options this task does not take."""
        from unetkit.tasks import TASKS

        given = [k for k, v in options.items() if not (v is None or (isinstance(v, (list, tuple)) and not v))]
        unknown = sorted(k for k in given if k not in self.evaluate_options)
        if not unknown:
            return
        known = {key for task in TASKS.values() for key in task.evaluate_options}
        takes = f"the {self.name} task takes: {', '.join(self.evaluate_options) or 'no options'}"
        foreign = [key for key in unknown if key not in known]
        if foreign:
            raise InputError(f"unknown evaluation option {', '.join(foreign)}; {takes}")
        shown = ", ".join(f"{key} (--{key.replace('_', '-')})" for key in unknown)
        raise InputError(f"{shown} applies to another task, not '{self.name}'; leave it out ({takes})")

    def __repr__(self) -> str:
        return f"<task {self.name}>"
