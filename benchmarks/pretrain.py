"""Train a model that ships with unetkit, resumably: ``benchmarks/pretrain.py NAME``.

The run folder is ``benchmarks/out/pretrain/NAME`` (git-ignored). Running the same command again
continues that run from ``last.pt`` (``fit(..., resume=True)``), with ``--budget-min`` as the new
total budget, so a model can be trained over as many sessions as it needs.

Models:
  nuclei  instances (three-class + seeded watershed) on the fixed training split of
          ``../shared/data/dsb2018/stage1_train`` that ``benchmarks/dsb2018.py`` uses (85/15, seed 0),
          every image type; the 15 % validation split is never trained on.

Stages (``--stage``): ``train`` (default) trains or resumes; ``finish`` tunes the post-processing on
24 training images (as ``benchmarks/dsb2018.py`` does), scores the validation split per image type
and writes ``validation.json`` beside the checkpoints; ``package`` converts ``best.pt`` (with the tuned
post-processing) to fp16 weights under ``unetkit/pretrained/NAME/`` with its model card.

Example (the shipped ``nuclei`` model; see its model card for the exact command and hours):
    nice -n 15 .venv/bin/python benchmarks/pretrain.py nuclei --budget-min 78 --clock wall --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "benchmarks"))
from dsb2018 import COMMON as DSB_COMMON  # noqa: E402  (the same settings and split as the benchmark)
from dsb2018 import VARIANTS as DSB_VARIANTS  # noqa: E402

MODELS = {
    "nuclei": {
        "data": DATA / "dsb2018" / "stage1_train",
        "overrides": DSB_COMMON + DSB_VARIANTS["three-class"],
    },
}


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
    parser.add_argument("--stage", choices=("train",), default="train")
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
    return train(args.name, args.out / args.name, args.budget_min, args.clock, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
