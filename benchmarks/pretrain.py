"""Train a model that ships with unetkit, resumably: ``benchmarks/pretrain.py NAME``.

The run folder is ``benchmarks/out/pretrain/NAME`` (git-ignored). Running the same command again
continues that run from ``last.pt`` (``fit(..., resume=True)``), with ``--budget-min`` as the new
total budget, so a model can be trained over as many sessions as it needs.

Models:
  nuclei  instances (three-class + seeded watershed) on the fixed training split of
          ``../shared/data/dsb2018/stage1_train`` that ``benchmarks/dsb2018.py`` uses (85/15, seed 0),
          every image type; the 15 % validation split is never trained on.

  em-membranes  binary (cell interior vs membrane) on slices 00-19 of ``../shared/data/isbi2012/train``
          with the settings of ``benchmarks/isbi2012.py``'s ``default +wmap +elastic`` run; slices
          20-24 (its fixed validation split) are never trained on.

  em-organelles  multiclass (membranes, mitochondrion interior and boundary, PSD, vesicles, axon) on
          ``../shared/data/epfl-hippocampus/train`` with the settings of ``benchmarks/epfl_multiclass.py``
          and its ``axon`` split: slices training0000-0003 (validation, 4 of the 8 slices with axon) are
          never trained on.

Stages (``--stage``): ``train`` (default) trains or resumes; ``score`` scores the run's ``last.pt`` as it is
(its own post-processing; ``--tta`` with flip test-time augmentation) on the validation split, without
packaging (``score.json`` / ``score-tta.json`` in the run folder): the way to compare variants (``--weights A
B``: given checkpoints instead, several scored as the mean of their probabilities, an ensemble; instances models
with ``--set postprocess.KEY=VALUE``: those post-processing values instead of the checkpoint's); ``finish``
takes ``last.pt`` (never a checkpoint chosen on the validation split), packages it as 8-bit weights with a
model card in ``unetkit/pretrained/NAME/``, then scores that packaged file on the validation split
(``validation.json`` in the run folder, the numbers in the card). What finish does depends on the model's task
(``FINISH``): instances models keep the post-processing that training tuned at its end on
``postprocess.tune_images`` training images (96; 24 in runs before 2026-12-02; runs with
``postprocess.tune_after_training=false`` get it tuned here on 24, as ``benchmarks/dsb2018.py`` does;
``tuned.pt`` in the run folder) and are scored per image type (DSB score, AP50, Dice); binary models are
packaged as they are and scored with the ISBI 2012 challenge's metrics of both generations
(``unetkit.metrics.isbi``) and Dice; multiclass models are packaged as they are and scored per class (Dice
pooled over the validation slices, with and without flip TTA, as ``benchmarks/epfl_multiclass.py`` scores).
``postprocess`` packages the shipped model again with ``--set postprocess.KEY=VALUE`` values in its config
(the same 8-bit weights, checked; a new ``--version``) and scores it as finish does (``--tta`` with flip TTA);
binary models with ``postprocess.method=watershed`` are then also scored on the cells that ``--instances``
gives (``isbi_cells`` in the card). ``validation`` scores the shipped model again and renews only its card's
validation scores (``--tta`` as for ``postprocess``); the weights, their hash and the command stay. Instances
scores come with their 95 % bootstrap interval over images (``dsb_score_ci95``, ``ap50_ci95``; per image type
from 10 images; ``unetkit.metrics.intervals``), and ``benchmarks/compare_scores.py`` gives the paired
intervals of two models' differences.

``soup`` (``--weights A B ...``) writes a new run folder whose ``last.pt`` is the weight mean of the given
checkpoints (a uniform model soup, ``benchmarks/soup_checkpoints.py``), its post-processing tuned for the soup
on ``postprocess.tune_images`` training images as training does at its end; score or finish it as a run.

``--oversample TYPE=N`` (nuclei, training): every training image of that type linked N times in a folder
beside the run, so its patches are drawn N times as often; the validation split is unchanged.

Example (the shipped ``nuclei`` model; see its model card for the exact command and hours):
    nice -n 15 .venv/bin/python benchmarks/pretrain.py nuclei --budget-min 80 --clock wall --threads 1
    .venv/bin/python benchmarks/pretrain.py nuclei --stage finish --train-cpu-min 45 --command "..."
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "benchmarks"))
from dsb2018 import COMMON as DSB_COMMON  # noqa: E402  (the same settings and split as the benchmark)
from dsb2018 import VARIANTS as DSB_VARIANTS  # noqa: E402
from dsb2018 import image_type  # noqa: E402
from epfl_multiclass import CLASS_SETTINGS as EPFL_SETTINGS  # noqa: E402  (settings and split of the benchmark)
from epfl_multiclass import score_samples as score_classes  # noqa: E402
from epfl_multiclass import split_folders as epfl_split  # noqa: E402
from isbi2012 import COMMON as ISBI_COMMON  # noqa: E402  (the same settings and fixed split as the benchmark)
from isbi2012 import RUNS as ISBI_RUNS  # noqa: E402
from isbi2012 import make_split as isbi_split  # noqa: E402

MODELS = {
    "nuclei": {
        "data": DATA / "dsb2018" / "stage1_train",
        # versions 1-7 trained with dsb2018's settings of before 2026-12-02 (192 px patches, validation every
        # 4 epochs), pinned here so that the card's commands still reproduce them; 128 px patches from scratch
        # are better at 60 CPU-min but fine-tuning version 7 with them was not (BENCHMARKS.md)
        "overrides": DSB_COMMON + DSB_VARIANTS["three-class"] + ["data.patch_size=192", "train.val_every=4"],
        "summary": "nuclei in 2D light microscopy (fluorescence, brightfield, histology): three-class U-Net "
                   "(background / interior / boundary) + seeded watershed; use predict --instances",
        "data_card": "DSB 2018 stage1_train (BBBC038, CC0), the fixed 85/15 split of benchmarks/dsb2018.py "
                     "(data.val_fraction 0.15, data.split_seed 0): trained on the 85 %, scored on the 15 % "
                     "it never saw",
        "validation_split": "{n} images of the 15 % never trained on",
        "use": "unetkit predict --model nuclei IMAGES --out DIR --instances  (add --tta for flip test-time "
               "augmentation, as the validation scores are; validation.no_tta without it; about 3.3x the time)",
        "limits": [
            "trained for the CPU minutes above on one thread of a shared 2-core machine: far less training "
            "than StarDist or Cellpose models get; expect clearly lower accuracy than theirs",
            "light-background images score far below fluorescence (see validation.by_type): the training "
            "split holds 363 fluorescence, 78 histology and 10 brightfield images; versions 6 to 8 drew "
            "histology and brightfield patches 2x and 4x as often (--oversample), which lifted every type a "
            "little; brightfield (dark on light) is scored on 2 validation images only. Inversion and colour "
            "augmentation (augment.invert, augment.color) were measured and did not help at this budget "
            "(BENCHMARKS.md), so none was used",
            "2D only; each image is normalised by its own percentiles; RGB input (gray images are repeated)",
            "objects smaller than postprocess.min_size pixels are removed; nuclei much larger than the 192 px "
            "training patches were rarely seen",
            "since version 9 objects that the object filter scores below postprocess.min_object_score are "
            "dropped (pale, uncertain, ragged or split-off objects; fitted on 96 training crops): a few real "
            "nuclei go with them (brightfield AP50 on its 2 images 0.637 -> 0.625 without --tta)",
            "small nuclei are the commonest error: of the validation nuclei under 100 px (about 11 px across) "
            "23 % are missed and 8 % merged with a neighbour, against 1.4 % and 1.5 % of those over 400 px "
            "(version 9 with --tta; benchmarks/nuclei_errors.py). Since version 10 an image whose median "
            "nucleus is under postprocess.upscale_below_area px is predicted again at twice its size (15 of "
            "the 80 validation images; +0.004 DSB, +0.005 AP50 over all 80, BENCHMARKS.md), which costs those "
            "images about 5x the time; a bioimage.io export carries the network only, without this rule",
        ],
    },
    "em-membranes": {
        "data": DATA / "isbi2012" / "train",
        "fixed_split": isbi_split,  # slices 00-19 train, 20-24 validation (symlinks in the run's split folder)
        # the ablation's variant with the lowest Rand error at the default threshold (BENCHMARKS.md, ISBI 2012)
        "overrides": ISBI_COMMON + ISBI_RUNS["default +wmap +elastic"][1],
        "summary": "cell membranes in 2D serial-section electron microscopy (ISBI 2012, Drosophila VNC, ssTEM): "
                   "binary U-Net, foreground = cell interior, background = membrane",
        "data_card": "ISBI 2012 EM segmentation challenge training stack (25 slices of 512x512 px; "
                     "../shared/data/isbi2012/train), the fixed split of benchmarks/isbi2012.py: trained on "
                     "slices 00-19, scored on slices 20-24 it never saw",
        "validation_split": "{n} slices (20-24) never trained on",
        "use": "unetkit predict --model em-membranes IMAGES --out DIR --tta  (flip test-time augmentation gave "
               "fewer merges, BENCHMARKS.md; --instances: cells as labels, one-pixel lines between them)",
        "limits": [
            "trained for the CPU minutes above on a shared 2-core machine, 16 base channels: the U-Net paper "
            "trained 64 base channels for about 10 GPU hours; expect more merged cells (see validation.isbi) "
            "than the paper's Rand error of 0.0382",
            "one stack only (ISBI 2012: Drosophila first-instar larva ventral nerve cord, ssTEM, 4x4x50 nm): "
            "other tissue, resolution or EM modality (SBEM, FIB-SEM) was never seen",
            "validation is 5 slices of the same stack as the training slices, not the challenge's test stack; "
            "the ISBI scores take the best threshold over those slices (the challenge's way), the packaged "
            "mask uses inference.threshold (mask_threshold above)",
            "2D only, gray input (RGB is averaged), each image normalised by its own percentiles; membranes "
            "are background (0), cell interiors foreground (255), as in the challenge's labels",
        ],
    },
    "em-organelles": {
        "data": DATA / "epfl-hippocampus" / "train",
        # training0000-0003 validation (4 of the 8 slices holding axon), the other 23 train
        "fixed_split": lambda data, out: epfl_split(data, out, "axon"),
        "samples": "task",  # class-folders samples, found by the multiclass task
        "overrides": EPFL_SETTINGS,
        "summary": "organelles in 2D FIB-SEM of brain tissue (EPFL hippocampus CA1, ~5 nm): multiclass U-Net, "
                   "classes background, membranes, mitochondrion (interior), mitochondrial boundaries, PSD, "
                   "vesicles, axon (myelin)",
        "data_card": "EPFL hippocampus CA1 FIB-SEM (Lucchi et al.) with a community multiclass annotation, 27 "
                     "slices of 768x1024 px (../shared/data/epfl-hippocampus/train), the axon split of "
                     "benchmarks/epfl_multiclass.py: trained on 23 slices, scored on training0000-0003 it "
                     "never saw",
        "validation_split": "{n} slices (training0000-0003) never trained on, 4 of the 8 holding axon",
        "use": "unetkit predict --model em-organelles IMAGES --out DIR --tta  (flip test-time augmentation: "
               "the validation scores; validation.no_tta without it)",
        "limits": [
            "trained for the CPU minutes above with 1 thread on a shared 2-core machine, 16 base channels: "
            "expect clearly lower accuracy than models trained for GPU hours",
            "one volume only (EPFL hippocampus CA1, FIB-SEM, ~5 nm isotropic): other tissue, resolution or EM "
            "modality (ssTEM, SBEM) was never seen",
            "axon is one myelinated axon (its dark myelin ring) in 8 slices: trained on 4, scored on 4 "
            "others 10-28 slices away: the same axon further along, so its Dice says little about other axons",
            "mitochondrial boundaries take priority over the mitochondrion masks they lie in, so "
            "'mitochondrion' is the interior; validation.mitochondria_dice scores the whole organelle",
            "2D only, gray input (RGB is averaged), each image normalised by its own percentiles; the "
            "validation scores use flip TTA (validation.no_tta without), predict uses inference.tta",
        ],
    },
}
PACKAGE = ROOT / "unetkit" / "pretrained"


def split(name: str, run: Path) -> tuple[list, list]:
    """(training samples, validation samples): a fixed split's folders (``fixed_split``), else the
    85/15 split of benchmarks/dsb2018.py (data.val_fraction 0.15, data.split_seed 0)."""
    from unetkit.data.layouts import find_samples, split_samples

    train_dir, val_dir = data_dirs(name, run)
    if MODELS[name].get("samples") == "task":  # a layout only the task knows (class folders)
        from unetkit.recipes import resolve_config
        from unetkit.tasks import get_task

        config = resolve_config("default", overrides=MODELS[name]["overrides"])
        task = get_task(config)
        return task.find_samples(train_dir, config), task.find_samples(val_dir, config)
    if val_dir is not None:
        return find_samples(train_dir), find_samples(val_dir)
    return split_samples(find_samples(train_dir), 0.15, 0)


def load_normalised(config, sample):
    """(image normalised and with the network's channels, labels as stored) of one dataset sample."""
    from unetkit.data.channels import match_channels
    from unetkit.data.layouts import load_sample

    image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
    return match_channels(image, config.model.in_channels, sample.image_path), labels


def probabilities(model, config, sample):
    """(class probabilities, truth labels as stored) of one dataset sample."""
    from unetkit.inference.predictor import predict_probabilities

    image, labels = load_normalised(config, sample)
    return predict_probabilities(model, image, config, "cpu"), labels


class ProbabilityMean(torch.nn.Module):
    """Several networks of one task as one (a snapshot ensemble): the log of their mean softmax, so the
    predictor's softmax gives exactly the mean of their class probabilities."""

    def __init__(self, models: list[torch.nn.Module]):
        super().__init__()
        self.models = torch.nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([m(x).softmax(1) for m in self.models]).mean(0)
        return mean.clamp_min(1e-12).log()


def load_scored(weights: Path | list[Path]):
    """(model, config) to score: one checkpoint, or the probability mean of several (the first's
    config: its post-processing and tiling)."""
    from unetkit import checkpoint as ckpt

    loaded = [ckpt.load_model(w) for w in ([weights] if isinstance(weights, Path) else weights)]
    if len(loaded) == 1:
        return loaded[0]
    return ProbabilityMean([m for m, _ in loaded]).eval(), loaded[0][1]


def mean(rows: list[dict], key: str) -> float:
    return round(float(np.mean([r[key] for r in rows])), 4)


def rounded_intervals(summary: dict, rows: list[dict], keys: tuple[str, ...]) -> dict:
    """``KEY_ci95`` = the 95 % bootstrap interval over images of each mean (``unetkit.metrics.intervals``; none
    under 10 images), rounded as the means are."""
    from unetkit.metrics.intervals import add_intervals

    found = add_intervals({}, rows, keys)
    summary.update({key: [round(v, 4) for v in bounds] for key, bounds in found.items()})
    return summary


class InstancesFinish:
    """Instances models: post-processing tuned on 24 training images (by training, or here), then DSB
    score, AP50 and Dice per image type (the scoring of benchmarks/dsb2018.py)."""

    def package_source(self, run: Path, train_samples: list, limit: int) -> Path:
        """last.pt when training tuned its post-processing at the end (``postprocess.tune_after_training``,
        on by default); else tune it on training images here (what `unetkit tune-postprocess --update`
        runs: ``tune_postprocess`` over its default grid) into ``run/tuned.pt`` = last.pt with the winner."""
        from unetkit import checkpoint as ckpt
        from unetkit.config import apply_overrides, to_dict
        from unetkit.data.targets import instance_labels
        from unetkit.inference.postprocess import DEFAULT_GRID, tune_postprocess
        from unetkit.tasks import get_task

        trained = ckpt.config_of(ckpt.load_checkpoint(run / "last.pt")).postprocess
        if trained.tune_after_training:
            print("post-processing as tuned at the end of training: "
                  + " ".join(f"{key}={getattr(trained, key):g}" for key in DEFAULT_GRID))
            return run / "last.pt"
        index = np.random.default_rng(1).choice(len(train_samples), min(24, len(train_samples)), replace=False)
        tune_samples = [train_samples[i] for i in index][:limit or None]
        model, config = ckpt.load_model(run / "last.pt")
        pairs = [probabilities(model, config, s) for s in tune_samples]
        kind = get_task(config).instance_kind(config)
        best, _ = tune_postprocess([p for p, _ in pairs], [instance_labels(t) for _, t in pairs], kind,
                                   DEFAULT_GRID, base=config.postprocess)
        payload = ckpt.load_checkpoint(run / "last.pt")
        values = {f"postprocess.{key}": getattr(best, key) for key in DEFAULT_GRID}
        payload["config"] = to_dict(apply_overrides(ckpt.config_of(payload), values))
        payload.pop("format", None)
        payload.pop("version", None)
        print(f"tuned on {len(tune_samples)} training images: {values}")
        return ckpt.save_checkpoint(run / "tuned.pt", payload)

    def card_fields(self, config) -> dict:
        return {"postprocess": {key: getattr(config.postprocess, key)
                                for key in ("threshold", "seed_threshold", "min_size", "min_object_score",
                                            "upscale_below_area")}}

    def score(self, weights: Path | list[Path], val_samples: list, tta: bool = False,
              overrides: tuple[str, ...] = ()) -> dict:
        """``overrides``: ``postprocess.KEY=VALUE`` items scored instead of the checkpoint's values."""
        from unetkit.config import apply_overrides
        from unetkit.data.targets import instance_labels
        from unetkit.inference.postprocess import postprocess
        from unetkit.metrics.binary import binary_counts, dice
        from unetkit.metrics.instances import instance_scores
        from unetkit.tasks import get_task

        model, config = load_scored(weights)
        config = apply_overrides(apply_overrides(config, list(overrides)), {"inference.tta": tta})
        kind = get_task(config).instance_kind(config)
        rows = []
        for sample in val_samples:
            probs, labels = probabilities(model, config, sample)
            truth = instance_labels(labels)
            scores = instance_scores(truth, postprocess(probs, config.postprocess, kind))
            rows.append({"image": sample.name, "type": image_type(sample.image_path), "dsb_score": scores.dsb_score,
                         "ap50": scores.ap50, "dice": dice(binary_counts(truth > 0, (1 - probs[0]) > 0.5))})
        summary = {"images": len(rows), **{k: mean(rows, k) for k in ("dsb_score", "ap50", "dice")}}
        rounded_intervals(summary, rows, ("dsb_score", "ap50"))  # beside the means, before the types
        summary["by_type"] = {}
        for name in sorted({r["type"] for r in rows}):
            group = [r for r in rows if r["type"] == name]
            summary["by_type"][name] = {"images": len(group), **{k: mean(group, k) for k in ("dsb_score", "ap50")}}
            rounded_intervals(summary["by_type"][name], group, ("dsb_score", "ap50"))
        return {"summary": summary, "rows": rows}


class BinaryFinish:
    """Binary models: no post-processing to tune (mask = foreground probability > inference.threshold);
    scored with the ISBI 2012 challenge's metrics of both generations and its warping error over the
    validation images (``unetkit.metrics.isbi``), plus per-image Dice, pixel error and the older Rand
    error at that threshold and the best of 10 thresholds (the columns of benchmarks/isbi2012.py)."""

    def package_source(self, run: Path, train_samples: list, limit: int) -> Path:
        return run / "last.pt"

    def card_fields(self, config) -> dict:
        pp = config.postprocess
        if pp.method != "watershed":
            return {"postprocess": {"mask_threshold": config.inference.threshold,
                                    "instances": "none (a binary mask)"}}
        return {"postprocess": {
            "mask_threshold": config.inference.threshold,
            "instances": f"cells (predict --instances): seeds p > {pp.seed_threshold:g} flooded through p > "
                         f"{pp.threshold:g}, one-pixel lines where cells meet (postprocess.method watershed)",
            "min_size": pp.min_size, "fill_holes": pp.fill_holes}}

    def score(self, weights: Path | list[Path], val_samples: list, tta: bool = False) -> dict:
        from unetkit.config import apply_overrides
        from unetkit.inference.postprocess import postprocess
        from unetkit.metrics.binary import binary_counts, dice, pixel_error
        from unetkit.metrics.isbi import isbi_curves, isbi_scores
        from unetkit.metrics.rand import rand_error, rand_error_sweep

        model, config = load_scored(weights)
        config = apply_overrides(config, {"inference.tta": tta})
        threshold = config.inference.threshold
        cells = config.postprocess.method == "watershed"  # also score the cells that --instances gives
        rows, curves, cell_curves = [], [], []
        for sample in val_samples:
            probs, labels = probabilities(model, config, sample)
            foreground, truth = 1.0 - probs[0], labels > 0  # probability of the foreground (cell interior)
            if cells:
                mask = postprocess(probs, config.postprocess, "binary") > 0  # lines and background 0
                cell_curves.append(isbi_curves(truth, mask, is_probability=False))
            counts = binary_counts(truth, foreground > threshold)
            best, best_threshold = rand_error_sweep(truth, foreground)
            rows.append({"image": sample.name, "dice": dice(counts), "pixel_error": pixel_error(counts),
                         "rand_error": rand_error(truth, foreground > threshold), "rand_error_best": best,
                         "best_threshold": best_threshold})
            curves.append(isbi_curves(truth, foreground))
        summary = {"images": len(rows), **{k: mean(rows, k) for k in ("dice", "pixel_error", "rand_error",
                                                                       "rand_error_best")},
                   "isbi": {k: round(v, 6 if k.startswith("warping") else 4)  # warping error ~1e-4
                            for k, v in isbi_scores(curves).items()}}
        if cells:
            summary["isbi_cells"] = {k: round(v, 6 if k.startswith("warping") else 4)
                                     for k, v in isbi_scores(cell_curves).items() if not k.endswith("threshold")}
        return {"summary": summary, "rows": rows}


class MulticlassFinish:
    """Multiclass models: packaged as they are (the class is the argmax); scored as
    benchmarks/epfl_multiclass.py scores: per-class Dice and IoU pooled over the validation slices, the
    mean over the foreground classes the truth holds and the lowest of them, and mitochondria whole
    (interior + boundary) when the classes have them; with flip TTA (the benchmark's numbers) and
    without (``no_tta``: what predict gives by default)."""

    def package_source(self, run: Path, train_samples: list, limit: int) -> Path:
        return run / "last.pt"

    def card_fields(self, config) -> dict:
        return {"classes": list(config.data.class_names),
                "postprocess": {"instances": "none (class map = argmax of the class probabilities)"}}

    def score(self, weights: Path | list[Path], val_samples: list, tta: bool = True) -> dict:
        """Both with and without flip TTA, whatever ``tta`` says (the summary carries both)."""
        model, config = load_scored(weights)
        runs = {}
        for tta in (True, False):
            config.inference.tta = tta
            runs[tta] = score_classes(model, config, val_samples)
        scored, plain = runs[True], runs[False]
        names = scored["class_names"]

        def per_class(result: dict, key: str) -> dict:
            return {n: round(float(v), 4) for n, v in zip(names, result[key], strict=True)}

        summary = {
            "images": len(val_samples), "tta": "flips",
            "per_class_dice": per_class(scored, "per_class_dice"),
            "truth_share": per_class(scored, "truth_share"),
            "predicted_share": per_class(scored, "predicted_share"),
            "present_classes": scored["present_classes"],
            **{k: round(float(scored[k]), 4) for k in ("mean_present_foreground_dice", "min_present_class_dice",
                                                       "mean_foreground_dice", "mitochondria_dice")},
            "min_present_class": scored["min_present_class"],
            "no_tta": {"per_class_dice": per_class(plain, "per_class_dice"),
                       **{k: round(float(plain[k]), 4) for k in ("mean_present_foreground_dice",
                                                                 "min_present_class_dice", "mitochondria_dice")}},
        }
        return {"summary": summary, "rows": [{"tta": tta, **result} for tta, result in runs.items()]}


# by the task of the trained model
FINISH = {"instances": InstancesFinish, "binary": BinaryFinish, "multiclass": MulticlassFinish}


def finish(name: str, run: Path, package: Path, limit: int, cpu_min: float | None, command: str,
           threads: int, version: int = 1, started_from: str = "") -> int:
    """Package last.pt (instances: with post-processing tuned on training images) as 8-bit weights with
    a card, then score the packaged file on the validation split; what each step does comes from the
    task of the trained model (``FINISH``). ``started_from``: for a run fine-tuned from earlier weights
    (``train.init_weights``), what those were (the card's numbers then count both)."""
    from unetkit import checkpoint as ckpt
    from unetkit.pretrained.build import write_card, write_packaged_model
    from unetkit.tasks import get_task

    spec = MODELS[name]
    train_samples, val_samples = split(name, run)
    if limit:
        val_samples = val_samples[:limit]
    started = time.process_time()
    state = ckpt.load_checkpoint(run / "last.pt")
    task = get_task(ckpt.config_of(state))
    if task.name not in FINISH:
        print(f"{run / 'last.pt'}: a {task.name} model; benchmarks/pretrain.py finishes "
              f"{' and '.join(FINISH)} models", file=sys.stderr)
        return 2
    stage = FINISH[task.name]()
    source = stage.package_source(run, train_samples, limit)
    packaged = ckpt.load_checkpoint(source)
    config = ckpt.config_of(packaged)
    history = state["history"]
    channels = config.model.in_channels
    card = {
        "version": version, "task": config.task, "summary": spec["summary"], "data": spec["data_card"],
        "command": command,
        "training": {
            "images": len(train_samples), "epochs": len(history),
            "checkpoint": f"last.pt (epoch {packaged['epoch']})",
            "patches_seen": len(history) * config.data.samples_per_epoch,
            "wall_minutes": round(float(state["elapsed_s"]) / 60, 1),
            "cpu_minutes": None if cpu_min is None else round(cpu_min, 1), "threads": threads,
            "cpu_model": cpu_model(),
            **({"started_from": started_from} if started_from else {}),
            "network": f"U-Net depth {config.model.depth}, {config.model.base_channels} base channels, "
                       f"{config.model.norm} norm, {config.model.padding} padding, in {channels} "
                       f"({'RGB; gray is repeated' if channels == 3 else 'gray; RGB is averaged'}), "
                       f"out {config.model.out_channels}",
        },
        **stage.card_fields(config),
        "use": spec["use"], "limits": spec["limits"],
    }
    folder = write_packaged_model(source, package / name, card)
    result = stage.score(folder / "weights.pt", val_samples)
    card["validation"] = {"split": spec["validation_split"].format(n=len(val_samples)), **result["summary"]}
    card["finish_cpu_minutes"] = round((time.process_time() - started) / 60, 1)
    write_card(folder, card)
    (run / "validation.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(card["validation"], indent=2))
    return 0


def set_postprocess(name: str, package: Path, overrides: list[str], version: int, command: str, limit: int,
                    tta: bool) -> int:
    """Package the shipped NAME again with ``postprocess.KEY=VALUE`` values in its config: the same 8-bit
    weights (checked after writing), the card's version, post-processing, command (``command`` appended),
    use and limits (``MODELS``) and validation scores (``tta``: scored with flip TTA, as the card advises,
    and without it as ``validation.no_tta``) renewed."""
    import tempfile

    import yaml

    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides, to_dict
    from unetkit.pretrained.build import write_card, write_packaged_model
    from unetkit.tasks import get_task

    if not overrides or not all(item.startswith("postprocess.") for item in overrides):
        print("--stage postprocess: give --set postprocess.KEY=VALUE (post-processing values only)", file=sys.stderr)
        return 2
    folder = package / name
    before = torch.load(io_bytes(folder / "weights.pt"), weights_only=True)
    payload = ckpt.load_checkpoint(folder / "weights.pt")
    config = apply_overrides(ckpt.config_of(payload), overrides)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    stage = FINISH[get_task(config).name]()
    card.update({"version": version, "command": f"{card['command']}; version {version}: {command}",
                 "use": MODELS[name]["use"], "limits": MODELS[name]["limits"], **stage.card_fields(config)})
    with tempfile.TemporaryDirectory() as tmp:  # the dequantized weights with the new config
        source = ckpt.save_checkpoint(Path(tmp) / "source.pt", {"config": to_dict(config), "model": payload["model"]})
        write_packaged_model(source, folder, card)
    after = torch.load(io_bytes(folder / "weights.pt"), weights_only=True)
    changed = [k for k in before["model_int8"] if not torch.equal(before["model_int8"][k], after["model_int8"][k])]
    if changed:  # requantizing int8 * scale gives the same integers; anything else is a bug
        print(f"the 8-bit weights changed in {len(changed)} tensors ({changed[0]}, ...)", file=sys.stderr)
        return 1
    card["validation"] = card_validation(name, stage, folder, card["validation"], limit, tta)
    write_card(folder, card)
    print(json.dumps(card["validation"], indent=2))
    return 0


def card_validation(name: str, stage, folder: Path, before: dict, limit: int, tta: bool) -> dict:
    """The card's validation scores of the packaged ``folder/weights.pt`` renewed (``tta``: with flip TTA,
    as the card advises, and without it as ``no_tta``); keys the scoring does not give are kept."""
    _, val_samples = split(name, ROOT / "benchmarks" / "out" / "pretrain" / name)
    result = stage.score(folder / "weights.pt", val_samples[:limit or None], tta=tta)
    earlier = {key: value for key, value in before.items()  # e.g. split
               if key not in result["summary"] and key not in ("tta", "no_tta")}
    validation = {**earlier, **result["summary"], "tta": tta}  # the intervals beside their means
    if tta:  # what predict gives without --tta, beside
        plain = stage.score(folder / "weights.pt", val_samples[:limit or None])["summary"]
        kept = ("dsb_score", "dsb_score_ci95", "ap50", "ap50_ci95", "by_type")
        validation["no_tta"] = {key: plain[key] for key in kept if key in plain}
    return validation


def renew_validation(name: str, package: Path, limit: int, tta: bool) -> int:
    """Score the shipped NAME again and renew only its card's validation section (the weights, their hash,
    the post-processing and the command untouched): for scores the scoring gained since it was packaged,
    such as the 95 % intervals over images."""
    import yaml

    from unetkit import checkpoint as ckpt
    from unetkit.pretrained import sha256_of
    from unetkit.pretrained.build import write_card
    from unetkit.tasks import get_task

    folder = package / name
    card = yaml.safe_load((folder / "card.yaml").read_text())
    if card.get("sha256") != sha256_of(folder / "weights.pt"):
        print(f"{folder / 'weights.pt'}: not the file its card describes (sha256); package it again", file=sys.stderr)
        return 1
    stage = FINISH[get_task(ckpt.config_of(ckpt.load_checkpoint(folder / "weights.pt"))).name]()
    card["validation"] = card_validation(name, stage, folder, card["validation"], limit, tta)
    write_card(folder, card)
    print(json.dumps(card["validation"], indent=2))
    return 0


def io_bytes(path: Path):
    """A packaged (gzipped) checkpoint as a file object for ``torch.load``, its int8 tensors as stored."""
    import gzip
    import io

    return io.BytesIO(gzip.decompress(path.read_bytes()))


class SampleReader:
    """``samples`` read on demand, the last one kept: ``view(0)`` gives the normalised images, ``view(1)`` the
    instance labels, so that ``unetkit.training.finalize.tuning_set`` draws from a split without loading all of
    it, and reads each drawn file once for its image and labels."""

    def __init__(self, samples: list, config):
        self.samples, self.config = samples, config
        self.last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from unetkit.data.targets import instance_labels

        if self.last is None or self.last[0] != index:
            image, labels = load_normalised(self.config, self.samples[index])
            self.last = (index, (image, instance_labels(labels)))
        return self.last[1]

    def view(self, part: int) -> ReaderView:
        return ReaderView(self, part)


class ReaderView:
    """One part (0: images, 1: labels) of a ``SampleReader`` as a sequence."""

    def __init__(self, reader: SampleReader, part: int):
        self.reader, self.part = reader, part

    def __len__(self) -> int:
        return len(self.reader.samples)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.reader.read(index)[self.part]


def tuning_crops(train_samples: list, config) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(normalised images, instance labels) of the training crops an instances run tunes on at its end
    (``unetkit.training.finalize.tuning_set``: ``postprocess.tune_images`` of them, a fixed-seed draw), each
    drawn file read once."""
    from unetkit.data.splits import SplitData
    from unetkit.training.finalize import tuning_set

    reader = SampleReader(train_samples, config)
    train = SplitData(names=[s.name for s in train_samples], images=reader.view(0), labels=reader.view(1))
    return tuning_set(train, config.postprocess.tune_images, 2)


def soup(name: str, run: Path, weights: list[Path]) -> int:
    """A new run folder whose ``last.pt`` is the weight mean of ``weights`` (``benchmarks/soup_checkpoints.py``;
    put a run's ``last.pt`` first: its history is the card's), an instances model's post-processing tuned and
    its object filter fitted for the soup as training does at its end (``postprocess.tune_images`` training
    images, never validation; the members' filters left out), so that ``--stage finish`` packages and scores
    it like a trained run."""
    from soup_checkpoints import soup_payload

    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides
    from unetkit.errors import InputError
    from unetkit.tasks import get_task
    from unetkit.training.finalize import store_postprocess, tune_and_fit

    if (run / "last.pt").exists():
        print(f"{run / 'last.pt'}: exists; give --out a new folder for the soup", file=sys.stderr)
        return 2
    if len(weights) < 2:
        print("--stage soup: give --weights A B [...] (at least two checkpoints)", file=sys.stderr)
        return 2
    try:
        payload = soup_payload(weights)
    except (InputError, FileNotFoundError) as error:
        print(error, file=sys.stderr)
        return 2
    run.mkdir(parents=True, exist_ok=True)
    ckpt.save_checkpoint(run / "last.pt", payload)
    config = ckpt.config_of(payload)
    task = get_task(config)
    print(f"{run / 'last.pt'}: the mean of {len(weights)} checkpoints")
    if task.name != "instances" or not config.postprocess.tune_after_training:
        return 0
    config = apply_overrides(config, {"postprocess.object_weights": [], "postprocess.min_object_score": 0.0})
    images, truths = tuning_crops(split(name, run)[0], config)
    model, _ = ckpt.load_model(run / "last.pt")
    values, text = tune_and_fit(model, config, torch.device("cpu"), images, truths, task.instance_kind(config))
    store_postprocess(run / "last.pt", values)
    print(f"post-processing tuned on {len(images)} training images: {text} (the configured values: the first "
          "checkpoint's, its object filter left out)")
    return 0


def score_run(name: str, run: Path, limit: int, tta: bool, weights: list[Path] | None = None,
              overrides: list[str] | None = None) -> int:
    """Score the run's ``last.pt`` (or ``weights``: e.g. a packaged model; several: the mean of their
    probabilities) as it is on the validation split (no tuning, no packaging); instances models with
    ``overrides`` (``postprocess.KEY=VALUE``) in place of the checkpoint's post-processing values."""
    from unetkit import checkpoint as ckpt
    from unetkit.tasks import get_task

    weights = weights or [run / "last.pt"]
    tasks = {get_task(ckpt.config_of(ckpt.load_checkpoint(w))).name for w in weights}
    if len(tasks) > 1:
        print(f"--weights: checkpoints of different tasks ({', '.join(sorted(tasks))}); give one task's",
              file=sys.stderr)
        return 2
    task = tasks.pop()
    if overrides and (task != "instances" or not all(item.startswith("postprocess.") for item in overrides)):
        print("--stage score --set: postprocess.KEY=VALUE items, for instances models only", file=sys.stderr)
        return 2
    _, val_samples = split(name, run)
    if limit:
        val_samples = val_samples[:limit]
    started = time.perf_counter()
    extra = {"overrides": tuple(overrides)} if overrides else {}
    result = FINISH[task]().score(weights, val_samples, tta=tta, **extra)
    result["summary"]["weights"] = [str(w) for w in weights]
    result["summary"]["tta"] = tta
    if overrides:
        result["summary"]["overrides"] = list(overrides)
    result["summary"]["seconds"] = round(time.perf_counter() - started, 1)
    run.mkdir(parents=True, exist_ok=True)  # scoring given weights needs no run of its own
    (run / ("score-tta.json" if tta else "score.json")).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    return 0


def cpu_model() -> str:
    """The CPU's model name (lscpu's 'Model name', read from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def data_dirs(name: str, run: Path) -> tuple[Path, Path | None]:
    """(training folder, validation folder or None): a model with a fixed split (``fixed_split``) gets
    folders of links beside its run folder; the others split their one data folder by the config."""
    spec = MODELS[name]
    if "fixed_split" in spec:
        return spec["fixed_split"](spec["data"], run.parent / f"{name}-split")
    return spec["data"], None


def oversampled_split(name: str, run: Path, repeats: dict[str, int]) -> tuple[Path, Path]:
    """Folders of links beside the run: the training samples of ``split`` with every image of a type in
    ``repeats`` (``image_type`` of benchmarks/dsb2018.py) linked that many times (``<id>``, ``<id>-copy2``,
    ...), so its patches are drawn as often; the validation samples as they are. The data stays in place."""
    train_samples, val_samples = split(name, run)
    folder = run.parent / (f"{name}-split-" + "-".join(f"{k}{v}" for k, v in sorted(repeats.items())))
    for part, samples in (("train", train_samples), ("val", val_samples)):
        for sample in samples:
            copies = repeats.get(image_type(sample.image_path), 1) if part == "train" else 1
            for copy in range(1, copies + 1):
                link = folder / part / (sample.name if copy == 1 else f"{sample.name}-copy{copy}")
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(sample.image_path.parent.parent.resolve())  # <id>/images/<id>.png
    return folder / "train", folder / "val"


def train(name: str, out: Path, budget_min: float, clock: str, extra: list[str],
          repeats: dict[str, int] | None = None) -> int:
    """Train NAME from scratch, or resume its run folder with ``budget_min`` as the new total budget;
    ``repeats``: image types seen that many times as often (``--oversample``)."""
    from unetkit.recipes import resolve_config
    from unetkit.training.loop import fit

    spec = MODELS[name]
    train_dir, val_dir = oversampled_split(name, out, repeats) if repeats else data_dirs(name, out)
    budget = f"train.time_budget_s={budget_min * 60}"
    if (out / "last.pt").exists():  # --set on a resume: only what a resume may change (e.g. train.precision)
        result = fit(None, train_dir, out, val_dir=val_dir, resume=True, resume_overrides=[budget, *extra],
                     progress=False)  # "key=value" items, checked as --set is
    else:
        overrides = spec["overrides"] + [budget, f"train.budget_clock={clock}"]
        config = resolve_config("default", overrides=overrides + extra)
        result = fit(config, train_dir, out, val_dir=val_dir, progress=False)
    print(f"{name}: best {result.best_score:.4f} at epoch {result.best_epoch}, {len(result.history)} epochs")
    return 0


def object_filter(name: str, package: Path, version: int, limit: int, tta: bool) -> int:
    """Fit the object filter (``unetkit.inference.object_filter``) of the shipped three-class NAME for its
    post-processing on the training crops an instances run tunes on at its end (never validation images), then
    package NAME again with it (``set_postprocess``: the weights unchanged, the card renewed and rescored)."""
    from unetkit import checkpoint as ckpt
    from unetkit.inference.object_filter import filter_for
    from unetkit.tasks import get_task
    from unetkit.training.finalize import predict_crops

    model, config = ckpt.load_model(package / name / "weights.pt")
    kind = get_task(config).instance_kind(config) if get_task(config).name == "instances" else None
    if kind != "three-class":
        print(f"--stage object-filter: {name} is no three-class instances model", file=sys.stderr)
        return 2
    images, truths = tuning_crops(split(name, ROOT / "benchmarks" / "out" / "pretrain" / name)[0], config)
    probs = predict_crops(model, config, torch.device("cpu"), images)
    values, fit = filter_for(probs, truths, config.postprocess, kind)
    print(f"{fit.objects} objects on {len(images)} training crops, {fit.wrong} without a truth at IoU > 0.5; "
          "mean DSB score by cut: " + " ".join(f"{cut:g}:{score:.4f}" for cut, score in fit.scores.items()))
    if values["min_object_score"] == 0:
        print("dropping objects does not score better on the training crops: nothing to package")
        return 0
    overrides = [f"postprocess.object_weights={json.dumps(values['object_weights'])}",
                 f"postprocess.min_object_score={values['min_object_score']}"]
    command = (f"benchmarks/pretrain.py {name} --stage object-filter --version {version}" + (" --tta" if tta else "")
               + f" (the object filter fitted on {len(images)} training crops)")
    return set_postprocess(name, package, overrides, version, command, limit, tta)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("--stage", choices=("train", "score", "finish", "postprocess", "soup", "object-filter",
                                            "validation"),
                        default="train",
                        help="train (or resume); score: last.pt on the validation split as it is; "
                             "soup: a new run whose last.pt is the weight mean of --weights, post-processing "
                             "tuned; "
                             "finish: tune, package into unetkit/pretrained/NAME, score; postprocess: package "
                             "the shipped NAME again with --set postprocess.KEY=VALUE (weights unchanged), score; "
                             "object-filter: fit the shipped NAME's object filter on training crops, package, score; "
                             "validation: score the shipped NAME again, renew only its card's validation scores")
    parser.add_argument("--tta", action="store_true", help="score: with flip test-time augmentation")
    parser.add_argument("--weights", type=Path, nargs="+",
                        help="score: this checkpoint instead of the run's last.pt; several: the mean of their "
                             "probabilities (an ensemble), with the first one's post-processing; soup: the "
                             "checkpoints to average")
    parser.add_argument("--limit", type=int, default=0, help="finish: only this many tuning/validation images")
    parser.add_argument("--package", type=Path, default=PACKAGE, help="finish: folder of packaged models")
    parser.add_argument("--train-cpu-min", type=float, help="finish: measured CPU minutes of training, for the card")
    parser.add_argument("--command", default="", help="finish: the training command, for the card")
    parser.add_argument("--version", type=int, default=1, help="finish: the model's version, for the card")
    parser.add_argument("--started-from", default="",
                        help="finish: for a fine-tuned run, the weights it started from, for the card")
    parser.add_argument("--budget-min", type=float, default=90.0, help="total training budget in minutes")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="what the budget counts: process CPU time or wall time (new runs only)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (finish: give the training's, the card records them)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "pretrain")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    parser.add_argument("--oversample", action="append", default=[], metavar="TYPE=N",
                        help="train (nuclei): link every training image of TYPE (fluorescence, histology, "
                             "brightfield) N times, so its patches are drawn N times as often")
    args = parser.parse_args()
    try:
        repeats = {k: int(v) for k, v in (item.split("=") for item in args.oversample)}
    except ValueError:
        print(f"--oversample {args.oversample}: give TYPE=N, e.g. --oversample brightfield=4", file=sys.stderr)
        return 2
    if repeats and (args.name != "nuclei" or not set(repeats) <= {"fluorescence", "histology", "brightfield"}
                    or min(repeats.values()) < 1):
        print("--oversample: nuclei only, TYPE one of fluorescence, histology, brightfield, N >= 1",
              file=sys.stderr)
        return 2
    data = MODELS[args.name]["data"]
    if not data.is_dir():
        print(f"{data}: data not found; see ../shared/data/README.md", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    run = args.out / args.name
    if args.stage == "soup":
        return soup(args.name, run, args.weights or [])
    if args.stage == "score":
        return score_run(args.name, run, args.limit, args.tta, args.weights, args.overrides)
    if args.stage == "finish":
        return finish(args.name, run, args.package, args.limit, args.train_cpu_min, args.command, args.threads,
                      args.version, args.started_from)
    if args.stage == "object-filter":
        return object_filter(args.name, args.package, args.version, args.limit, args.tta)
    if args.stage == "validation":
        return renew_validation(args.name, args.package, args.limit, args.tta)
    if args.stage == "postprocess":
        return set_postprocess(args.name, args.package, args.overrides, args.version, args.command, args.limit,
                               args.tta)
    return train(args.name, run, args.budget_min, args.clock, args.overrides, repeats)


if __name__ == "__main__":
    from unetkit.errors import InputError

    try:
        sys.exit(main())
    except InputError as error:  # a bad --set or run folder: one line naming it, as the CLI does
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
