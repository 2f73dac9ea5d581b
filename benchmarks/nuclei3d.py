"""Benchmark: 3D U-Net on a real nuclei stack, trained on synthetic volumes and/or half of the stack.

Data: ``../shared/data/nuclei3d`` (StarDist's 3D test stack: uint16 ZYX 31 x 61 x 57, 51 labelled nuclei,
~7 slices deep and ~15 px wide, so z is about twice as coarse as x/y). The stack is cut along x:
x < 28 is the real training part, x >= 28 the test part, which no run ever trains on. Three settings:

- ``synthetic``: 8 synthetic volumes (``unetkit.data.synthetic3d``, anisotropy 2) only;
- ``real-half``: the real training half only;
- ``synthetic+real``: both.

Each trains the same 3D U-Net (depth 3, 8 base channels, batch norm, same padding, (1, 2, 2) then
(2, 2, 2) pooling, three-class target) for the same CPU-time budget on one thread, then predicts the
test part by overlap-tile prediction and reports the foreground Dice and the DSB-style instance score
(mean over IoU thresholds 0.5 .. 0.95 of TP / (TP + FP + FN), 3D objects after seeded watershed).

Usage::

    .venv/bin/python benchmarks/nuclei3d.py --budget 60 --out runs/bench_nuclei3d
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from fit_rows import SCORE_COLUMNS, held_out_scores, print_table

from unetkit.config import RunConfig, apply_overrides
from unetkit.cpu.info import describe, torch_threads
from unetkit.data.io import read_label_volume, read_volume
from unetkit.data.synthetic3d import write_synthetic_volumes
from unetkit.data.volumes import VolumeMeta, write_label_volume, write_volume
from unetkit.training.loop import fit

DATA = Path(__file__).resolve().parents[1] / "../shared/data/nuclei3d"
SPLIT_X = 28
SETTINGS = ("synthetic", "real-half", "synthetic+real")


def prepare(root: Path, n_synthetic: int) -> dict[str, Path]:
    """Write the dataset folders of every setting and the test folder; returns setting -> folder."""
    image = read_volume(DATA / "image.tif")[0]  # (31, 61, 57)
    labels = read_label_volume(DATA / "labels.tif")
    meta = VolumeMeta(spacing=(2.0, 1.0, 1.0))  # the stack has no spacing tags; z ~2x coarser by shape
    for name, part in (("real", slice(None, SPLIT_X)), ("test", slice(SPLIT_X, None))):
        write_volume(root / name / "images" / "nuclei3d.tif", image[:, :, part], meta)
        write_label_volume(root / name / "masks" / "nuclei3d.tif", labels[:, :, part], meta)
    write_synthetic_volumes(root / "synthetic", n_synthetic, seed=0, shape=(32, 64, 64), anisotropy=2.0)
    both = root / "synthetic+real"
    for source in ("synthetic", "real"):
        for sub in ("images", "masks"):
            (both / sub).mkdir(parents=True, exist_ok=True)
            for path in (root / source / sub).glob("*.tif"):
                shutil.copy(path, both / sub / path.name)
    return {"synthetic": root / "synthetic", "real-half": root / "real", "synthetic+real": both,
            "test": root / "test"}


def config(budget_s: float, boundary_width: int, base_channels: int, extra: list[str]) -> RunConfig:
    base = apply_overrides(RunConfig(), {
        "task": "instances", "model.name": "unet3d", "model.depth": 3, "model.base_channels": base_channels,
        "model.norm": "batch", "model.pool_sizes": [[1, 2, 2], [2, 2, 2]],
        "data.patch_shape": [16, 48, 48], "data.samples_per_epoch": 32, "data.boundary_width": boundary_width,
        "train.batch_size": 2, "train.lr": 2e-3, "train.epochs": 10_000, "train.time_budget_s": budget_s,
        "train.budget_clock": "cpu", "train.scheduler": "cosine-time", "train.warmup_epochs": 0,
        "train.val_every": 10_000, "train.overlays": 1, "train.device": "cpu",
        "inference.tile_shape": [32, 64, 64], "postprocess.min_size": 30,
    })
    return apply_overrides(base, extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="CPU seconds of training per setting")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--synthetic", type=int, default=8, help="synthetic volumes (32 x 64 x 64)")
    parser.add_argument("--boundary-width", type=int, default=1, help="px of the boundary class")
    parser.add_argument("--base-channels", type=int, default=8, help="first-level width of the 3D U-Net")
    parser.add_argument("--out", default="runs/bench_nuclei3d")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE config override")
    args = parser.parse_args()
    print(f"CPU: {describe()}; torch threads: {torch_threads()}", flush=True)  # numbers belong to this CPU
    if not DATA.is_dir():
        print(f"{DATA} not found: this benchmark needs the shared nuclei3d stack")
        return 1
    torch.set_num_threads(1)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    folders = prepare(out / "data", args.synthetic)
    results = []
    for setting in args.settings:
        started = time.monotonic()
        run_config = config(args.budget, args.boundary_width, args.base_channels, args.overrides)
        result = fit(run_config, folders[setting], out / setting, folders["test"], progress=False)
        row = {"setting": setting, "epochs": len(result.history),
               "patches": sum(r["patches_per_s"] * r["train_seconds"] for r in result.history),
               "wall_s": round(time.monotonic() - started, 1),
               **held_out_scores(result, ("dice", "iou", "dsb_score", "ap50"))}
        row["patches"] = int(round(row["patches"]))
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n3D U-Net on nuclei3d (test: x >= {SPLIT_X}, {args.budget:.0f} CPU-s of training each, 1 thread)")
    print_table(results, ("setting", "setting", 16), [("patches", "patches", 8, ""), ("test_dice", "Dice", 7, ".3f"),
                                                      ("test_iou", "IoU", 7, ".3f")] + SCORE_COLUMNS)
    (out / "results.json").write_text(json.dumps({"budget_cpu_s": args.budget, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
