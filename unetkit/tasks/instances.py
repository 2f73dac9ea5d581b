"""The instances task: separated objects (nuclei) from instance labels, 2D images or 3D volumes.

The binary task with the background / interior / boundary target (3 softmax outputs), so touching
objects stay apart; post-processing (``unetkit.inference.postprocess``) turns the probabilities into
instance labels. ``val_dsb_score`` (the 2018 Data Science Bowl score) picks best.pt; predictions always
include labels, coloured instances and object tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetkit.config import RunConfig
from unetkit.tasks.base import Result
from unetkit.tasks.binary import BinaryTask


class InstancesTask(BinaryTask):
    """Instance segmentation; see the module docstring."""

    name = "instances"
    scored_as = ("instances", "binary")
    score_key = "val_dsb_score"
    default_target = "three-class"
    evaluate_options = ("thresholds",)
    sizes_objects = True
    instances_always = True
    tunes_postprocess = True

    def extra_scores(self, probs: np.ndarray, labels: np.ndarray, config: RunConfig) -> dict[str, float]:
        """DSB score and AP50 after post-processing (not with sparse labels: unannotated objects)."""
        if config.data.sparse_labels:
            return {}
        from unetkit.inference.postprocess import postprocess
        from unetkit.metrics.instances import instance_scores

        result = instance_scores(labels, postprocess(probs, config.postprocess, self.target_kind(config)))
        return {"val_dsb_score": result.dsb_score, "val_ap50": result.ap50}

    def result(self, output: np.ndarray, config: RunConfig, instances: bool = True,
               labels: np.ndarray | None = None) -> Result:
        return super().result(output, config, instances=True, labels=labels)

    def evaluate(self, truth: str | Path, pred: str | Path, **options: Any):
        from unetkit.metrics.folders import evaluate_instances

        self.check_options(options)
        return evaluate_instances(truth, pred, options.get("thresholds"))
