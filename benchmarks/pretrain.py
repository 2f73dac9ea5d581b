"""Train a model that ships with unetkit, resumably: ``benchmarks/pretrain.py NAME``.

The run folder is ``benchmarks/out/pretrain/NAME`` (git-ignored). Running the same command again
continues that run from ``last.pt`` (``fit(..., resume=True)``), with ``--budget-min`` as the new
total budget, so a model can be trained over as many sessions as it needs.

Models:
  nuclei  instances (three-class + seeded watershed) on the fixed training split of
          ``../shared/data/dsb2018/stage1_train`` that ``benchmarks/dsb2018.py`` uses (85/15, seed 0),
          every image type; the 15 % validation split is never trained on.

Stages (``--stage``): ``train`` (default) trains or resumes; ``finish`` takes ``last.pt`` (never a
checkpoint chosen on the validation split), tunes its post-processing on 24 training images (as
``benchmarks/dsb2018.py`` does; ``tuned.pt`` in the run folder), packages it as fp16 weights with a
model card in ``unetkit/pretrained/NAME/``, then scores that packaged file on the validation split
per image type (``validation.json`` in the run folder, the numbers in the card).

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

MODELS = {
    "nuclei": {
        "data": DATA / "dsb2018" / "stage1_train",
        "overrides": DSB_COMMON + DSB_VARIANTS["three-class"],
        "summary": "nuclei in 2D light microscopy (fluorescence, brightfield, histology): three-class U-Net "
                   "(background / interior / boundary) + seeded watershed; use predict --instances",
        "data_card": "DSB 2018 stage1_train (BBBC038, CC0), the fixed 85/15 split of benchmarks/dsb2018.py "
                     "(data.val_fraction 0.15, data.split_seed 0): trained on the 85 %, scored on the 15 % "
                     "it never saw",
        "use": "unetkit predict --model nuclei IMAGES --out DIR --instances",
        "limits": [
            "trained for the CPU minutes above on one thread of a shared 2-core machine: far less training "
            "than StarDist or Cellpose models get; expect clearly lower accuracy than theirs",
            "light-background images score far below fluorescence (see validation.by_type): the training "
            "split holds 363 fluorescence, 78 histology and 10 brightfield images, and no intensity-inversion "
            "or stain augmentation was used",
            "2D only; each image is normalised by its own percentiles; RGB input (gray images are repeated)",
            "objects smaller than postprocess.min_size pixels are removed; nuclei much larger than the 192 px "
            "training patches were rarely seen",
        ],
    },
}
PACKAGE = ROOT / "unetkit" / "pretrained"


def split(name: str):
    """(training samples, validation samples, 24 training samples for tuning) as benchmarks/dsb2018.py."""
    from unetkit.data.layouts import find_samples, split_samples

    train_samples, val_samples = split_samples(find_samples(MODELS[name]["data"]), 0.15, 0)
    index = np.random.default_rng(1).choice(len(train_samples), min(24, len(train_samples)), replace=False)
    return train_samples, val_samples, [train_samples[i] for i in index]


def probabilities(model, config, sample):
    """(class probabilities, truth instance labels) of one dataset sample."""
    from unetkit.data.channels import match_channels
    from unetkit.data.layouts import load_sample
    from unetkit.data.targets import instance_labels
    from unetkit.inference.predictor import predict_probabilities

    image, labels = load_sample(sample, config.data.normalize_low, config.data.normalize_high)
    image = match_channels(image, config.model.in_channels, sample.image_path)
    return predict_probabilities(model, image, config, "cpu", config.model.out_channels), instance_labels(labels)


def tune(run: Path, tune_samples) -> Path:
    """Tune the post-processing on training images (what `unetkit tune-postprocess --update` runs:
    ``tune_postprocess`` over its default grid) and write ``run/tuned.pt`` = last.pt with the winner.

    last.pt, not best.pt: fit picks best.pt by its score on the validation split, the very images the
    card reports; the cosine-time schedule has annealed by the end of the budget, so last.pt is the
    trained model without any choice made on the validation images."""
    from unetkit import checkpoint as ckpt
    from unetkit.config import apply_overrides, to_dict
    from unetkit.inference.postprocess import DEFAULT_GRID, tune_postprocess
    from unetkit.tasks import get_task

    model, config = ckpt.load_model(run / "last.pt")
    pairs = [probabilities(model, config, s) for s in tune_samples]
    kind = get_task(config).instance_kind(config)
    best, _ = tune_postprocess([p for p, _ in pairs], [t for _, t in pairs], kind, DEFAULT_GRID,
                               base=config.postprocess)
    payload = ckpt.load_checkpoint(run / "last.pt")
    values = {f"postprocess.{key}": getattr(best, key) for key in DEFAULT_GRID}
    payload["config"] = to_dict(apply_overrides(ckpt.config_of(payload), values))
    payload.pop("format", None)
    payload.pop("version", None)
    print(f"tuned on {len(tune_samples)} training images: {values}")
    return ckpt.save_checkpoint(run / "tuned.pt", payload)


def score(weights: Path, val_samples) -> dict:
    """DSB score, AP50 and Dice of a packaged model on the validation samples, overall and per image type
    (its own tuned post-processing; the scoring of benchmarks/dsb2018.py)."""
    from unetkit import checkpoint as ckpt
    from unetkit.inference.postprocess import postprocess
    from unetkit.metrics.binary import binary_counts, dice
    from unetkit.metrics.instances import instance_scores
    from unetkit.tasks import get_task

    model, config = ckpt.load_model(weights)
    kind = get_task(config).instance_kind(config)
    rows = []
    for sample in val_samples:
        probs, truth = probabilities(model, config, sample)
        scores = instance_scores(truth, postprocess(probs, config.postprocess, kind))
        rows.append({"image": sample.name, "type": image_type(sample.image_path), "dsb_score": scores.dsb_score,
                     "ap50": scores.ap50, "dice": dice(binary_counts(truth > 0, (1 - probs[0]) > 0.5))})

    def mean(group, key):
        return round(float(np.mean([r[key] for r in group])), 4)

    summary = {"images": len(rows), **{k: mean(rows, k) for k in ("dsb_score", "ap50", "dice")}, "by_type": {}}
    for name in sorted({r["type"] for r in rows}):
        group = [r for r in rows if r["type"] == name]
        summary["by_type"][name] = {"images": len(group), **{k: mean(group, k) for k in ("dsb_score", "ap50")}}
    return {"summary": summary, "rows": rows}


def finish(name: str, run: Path, package: Path, limit: int, cpu_min: float | None, command: str) -> int:
    """Tune, package as fp16 weights with a card, score the packaged file on the validation split."""
    from unetkit import checkpoint as ckpt
    from unetkit.pretrained.build import write_card, write_packaged_model

    spec = MODELS[name]
    train_samples, val_samples, tune_samples = split(name)
    if limit:
        val_samples, tune_samples = val_samples[:limit], tune_samples[:limit]
    started = time.process_time()
    tuned = tune(run, tune_samples)
    state = ckpt.load_checkpoint(run / "last.pt")
    best = ckpt.load_checkpoint(tuned)
    config = ckpt.config_of(best)
    history = state["history"]
    card = {
        "version": 1, "task": config.task, "summary": spec["summary"], "data": spec["data_card"],
        "command": command,
        "training": {
            "images": len(train_samples), "epochs": len(history), "checkpoint": f"last.pt (epoch {best['epoch']})",
            "patches_seen": len(history) * config.data.samples_per_epoch,
            "wall_minutes": round(float(state["elapsed_s"]) / 60, 1),
            "cpu_minutes": None if cpu_min is None else round(cpu_min, 1), "threads": 1,
            "cpu_model": cpu_model(),
            "network": f"U-Net depth {config.model.depth}, {config.model.base_channels} base channels, "
                       f"{config.model.norm} norm, {config.model.padding} padding, in {config.model.in_channels} "
                       f"(RGB; gray is repeated), out {config.model.out_channels}",
        },
        "postprocess": {key: getattr(config.postprocess, key) for key in ("threshold", "seed_threshold", "min_size")},
        "use": spec["use"], "limits": spec["limits"],
    }
    folder = write_packaged_model(tuned, package / name, card)
    result = score(folder / "weights.pt", val_samples)
    card["validation"] = {"split": f"{len(val_samples)} images of the 15 % never trained on", **result["summary"]}
    card["finish_cpu_minutes"] = round((time.process_time() - started) / 60, 1)
    write_card(folder, card)
    (run / "validation.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(card["validation"], indent=2))
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


def train(name: str, out: Path, budget_min: float, clock: str, extra: list[str]) -> int:
    """Train NAME from scratch, or resume its run folder with ``budget_min`` as the new total budget."""
    from unetkit.recipes import resolve_config
    from unetkit.training.loop import fit

    spec = MODELS[name]
    budget = {"train.time_budget_s": budget_min * 60}
    if (out / "last.pt").exists():
        result = fit(None, spec["data"], out, resume=True, resume_overrides=budget, progress=False)
    else:
        overrides = spec["overrides"] + [f"train.time_budget_s={budget_min * 60}", f"train.budget_clock={clock}"]
        config = resolve_config("default", overrides=overrides + extra)
        result = fit(config, spec["data"], out, progress=False)
    print(f"{name}: best {result.best_score:.4f} at epoch {result.best_epoch}, {len(result.history)} epochs")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("--stage", choices=("train", "finish"), default="train",
                        help="train (or resume), or finish: tune, package into unetkit/pretrained/NAME, score")
    parser.add_argument("--limit", type=int, default=0, help="finish: only this many tuning/validation images")
    parser.add_argument("--package", type=Path, default=PACKAGE, help="finish: folder of packaged models")
    parser.add_argument("--train-cpu-min", type=float, help="finish: measured CPU minutes of training, for the card")
    parser.add_argument("--command", default="", help="finish: the training command, for the card")
    parser.add_argument("--budget-min", type=float, default=90.0, help="total training budget in minutes")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="what the budget counts: process CPU time or wall time (new runs only)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "pretrain")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    data = MODELS[args.name]["data"]
    if not data.is_dir():
        print(f"{data}: data not found; see ../shared/data/README.md", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    run = args.out / args.name
    if args.stage == "finish":
        return finish(args.name, run, args.package, args.limit, args.train_cpu_min, args.command)
    return train(args.name, run, args.budget_min, args.clock, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
