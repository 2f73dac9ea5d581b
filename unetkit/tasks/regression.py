"""The regression task: image-to-image (e.g. virtual staining), 2D images.

Data: ``images/`` + ``targets/`` paired by name; targets 8/16-bit or float TIFF with any number of
channels C', normalised per channel over the training set (``data.target_offset`` / ``target_scale``,
stored in the checkpoint). The network's C' linear outputs (no activation) are de-normalised tile by
tile at prediction, so every path (``predict``, ``predict-large``, validation, the Python API) gives
values in the target's units. ``val_psnr`` picks best.pt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig, apply_overrides
from unetkit.data.layouts import Sample, load_image
from unetkit.data.splits import SplitData, map_samples, model_channels
from unetkit.errors import InputError
from unetkit.tasks.base import OutputOptions, PredictFn, Result, Task
from unetkit.tasks.multiclass import check_auto_target, require_2d, training_samples


class RegressionTask(Task):
    """Pixel-wise regression; see the module docstring."""

    name = "regression"
    score_key = "val_psnr"
    activation = "none"
    evaluate_options = ("data_range",)
    labels_are_ids = False  # targets are values

    def label_folder(self, config: RunConfig) -> str:
        return config.data.target_dir

    def find_samples(self, root: str | Path, config: RunConfig, require_labels: bool = True) -> list[Sample]:
        from unetkit.data.image_targets import find_regression_samples

        require_2d(self, config)
        data = config.data
        if data.layout == "class-folders":
            raise InputError(f"{root}: the class-folders layout is for --task multiclass, not '{self.name}'")
        if data.layout not in ("auto", "folders"):
            raise InputError(f"regression reads the folders layout ({data.image_dir}/ + {data.target_dir}/); "
                             f"data.layout={data.layout} is not supported")
        return find_regression_samples(root, data.image_dir, data.target_dir, require_labels)

    def resolve(self, config: RunConfig, train_dir: str | Path, val_dir: str | Path | None = None) -> RunConfig:
        """``model.out_channels`` = target channels, the target normalisation (fitted on the training
        targets unless given) and ``model.in_channels`` from the first image."""
        from unetkit.data.image_targets import fit_target_norm, read_target

        check_auto_target(self, config)
        data = config.data
        if data.weight_map:
            raise InputError("data.weight_map is for segmentation tasks; turn it off for regression")
        samples = self.find_samples(train_dir, config)
        values: dict[str, Any] = {"model.in_channels": model_channels(config, samples[0])}
        train = training_samples(self, config, train_dir, val_dir is not None)
        targets = map_samples(train, lambda s: read_target(s.label_paths[0]), "target statistics")
        channels = targets[0].shape[0]
        if data.target_offset:
            if len(data.target_offset) != channels or len(data.target_scale) != channels:
                raise InputError(
                    f"data.target_offset / target_scale need {channels} value(s) (one per target channel); "
                    f"got {list(data.target_offset)} / {list(data.target_scale)}")
        else:
            norm = fit_target_norm(targets, data.target_norm, data.normalize_low, data.normalize_high)
            values.update({"data.target_offset": list(norm.offset), "data.target_scale": list(norm.scale)})
        values["model.out_channels"] = channels
        return apply_overrides(config, values)

    def build_split(self, samples: list[Sample], config: RunConfig, desc: str,
                    with_weights: bool = True) -> SplitData:
        """``labels`` the target in stored units (for validation scores), ``targets`` normalised (C', *S)."""
        from unetkit.data.image_targets import TargetNorm, read_target

        norm = TargetNorm.from_config(config.data)
        low, high = config.data.normalize_low, config.data.normalize_high

        def one(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
            image = load_image(sample, low, high)
            return image, read_target(sample.label_paths[0], image.shape[1:])

        split = SplitData()
        for sample, (image, target) in zip(samples, map_samples(samples, one, desc), strict=True):
            split.add_image(sample.name, image, config.model.in_channels, sample.image_path)
            split.labels.append(target)
            split.targets.append(norm.normalize(target))
        return split

    def loss(self, config: RunConfig):
        from unetkit.losses import RegressionLoss

        return RegressionLoss(config.loss)

    def loss_input(self, output: np.ndarray, config: RunConfig) -> np.ndarray:
        """The prediction in the normalised units the loss compares with ``SplitData.targets``."""
        from unetkit.data.image_targets import TargetNorm

        return TargetNorm.from_config(config.data).normalize(output)

    def validate(self, predict: PredictFn, val: SplitData, config: RunConfig,
                 overlay_dir: Path | None = None) -> dict[str, float]:
        """Mean MAE / RMSE / PSNR / SSIM per image in the target's stored units."""
        from unetkit.metrics.regression import regression_scores
        from unetkit.visualize.images import save_rgb

        scores: dict[str, list[float]] = {}
        for index, (name, image, truth) in enumerate(zip(val.names, val.images, val.labels, strict=True)):
            pred = predict(image)  # de-normalised by the output transform
            for key, value in regression_scores(truth, pred, spatial_dims=truth.ndim - 1).items():
                scores.setdefault(f"val_{key}", []).append(value)
            if overlay_dir is not None and index < config.train.overlays:
                save_rgb(overlay_dir / f"{name}.png", regression_panel(image, pred, truth))
        return {key: _finite_mean(values) for key, values in scores.items()}

    def output_transform(self, config: RunConfig) -> Callable[[np.ndarray], np.ndarray]:
        """Undo the target normalisation of predicted tiles (B, C', *S): per channel ``x * scale + offset``."""
        from unetkit.data.image_targets import TargetNorm

        norm = TargetNorm.from_config(config.data)
        return lambda tiles: np.stack([norm.denormalize(tile) for tile in tiles])

    def result(self, output: np.ndarray, config: RunConfig, instances: bool = False,
               labels: np.ndarray | None = None) -> Result:
        if instances or labels is not None:
            self.instance_kind(config)  # raises: regression outputs have no instances
        return Result(values=output)

    def write_outputs(self, result: Result, image: np.ndarray, writer, config: RunConfig,
                      options: OutputOptions) -> dict[str, Any]:
        """float32 ``predictions/`` in the target's units ((H, W) for one channel, else (C', H, W)) and an
        input | prediction overlay; the row gets the mean predicted value per channel."""
        prediction = result.values
        writer.float_map("predictions", prediction[0] if len(prediction) == 1 else prediction)
        writer.picture("overlays", regression_panel(image, prediction))
        return {f"mean_{c}": round(float(prediction[c].mean()), 4) for c in range(len(prediction))}

    def evaluate(self, truth: str | Path, pred: str | Path, **options: Any):
        from unetkit.metrics.folders import evaluate_regression

        self.check_options(options)
        return evaluate_regression(truth, pred, options.get("data_range"))


def regression_panel(image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """input | prediction [| truth] as RGB; prediction and truth share one display stretch, so equal
    values look equal."""
    from unetkit.visualize.images import side_by_side, to_display_rgb

    outputs = [pred] if truth is None else [pred, truth]
    joined = to_display_rgb(np.concatenate(outputs, axis=-1))  # one stretch for both
    width = pred.shape[-1]
    parts = [joined[:, i * width:(i + 1) * width] for i in range(len(outputs))]
    return side_by_side(to_display_rgb(image), *parts)


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values (PSNR is inf for an exact image); NaN when none is finite."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
