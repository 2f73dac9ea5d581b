"""`unetkit predict`: overlap-tile prediction of images of any size with a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from unetkit.cli.inference_options import add_inference_arguments
from unetkit.cli.selection import add_selection_arguments, selection_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment images of any size with a trained checkpoint (overlap-tile)",
        description="Example: unetkit predict --model runs/nuclei/best.pt data/test/images --out runs/nuclei/test")
    parser.add_argument("inputs", nargs="+", help="image files or folders")
    parser.add_argument("--model", required=True, help="checkpoint (.pt) or run folder (uses best.pt)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--instances", action="store_true", help="also write instance labels and objects")
    parser.add_argument("--engine", choices=["torch", "onnxruntime", "torchscript"], default="torch",
                        help="torch: the checkpoint; onnxruntime/torchscript: a file from `unetkit export` "
                             "(--model model.onnx, or a run folder holding it). Under torchrun each process "
                             "predicts every N-th image")
    parser.add_argument("--compile", metavar="BACKEND",
                        help="torch engine: torch.compile the network (e.g. inductor; off by default: it did "
                             "not pay on the CPUs measured, see BENCHMARKS.md)")
    parser.add_argument("--no-winograd", action="store_true",
                        help="torch engine on CPU: run every conv directly (default: 3x3 convs with >= 256 "
                             "input channels as Winograd F(4x4, 3x3), ~1e-5 relative difference)")
    parser.add_argument("--no-autotune", action="store_true",
                        help="torch engine on CPU: no timing of Winograd against direct convs on this machine "
                             "(`unetkit tune-cpu`); the fixed >= 256-channel rule, the same on every CPU")
    parser.add_argument("--no-probabilities", action="store_true", help="skip probability TIFFs")
    parser.add_argument("--class-probabilities", action="store_true",
                        help="multiclass: also write probabilities/<class>/<image>.tif per class")
    add_inference_arguments(parser)
    parser.add_argument("--quiet", action="store_true")
    add_selection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import unetkit
    from unetkit.devices import is_first_process

    rows = unetkit.predict_files(args.model, args.inputs, args.out, progress=not args.quiet, tile_size=args.tile,
                                 overlap=args.overlap, batch_size=args.batch, tta=args.tta, instances=args.instances,
                                 device=args.device, engine=args.engine, save_probabilities=not args.no_probabilities,
                                 class_probabilities=args.class_probabilities, compile=args.compile,
                                 winograd=False if args.no_winograd else None,
                                 autotune=False if args.no_autotune else None, precision=args.precision,
                                 nan_policy=args.nan_policy,
                                 **selection_options(args))
    if not is_first_process():  # under torchrun the first process sums up every process's images
        return 0
    pixels = sum(r["height"] * r["width"] * r.get("depth", 1) for r in rows)  # voxels for volumes
    seconds = sum(r["seconds"] for r in rows)
    fractions = [key for key in (rows[0] if rows else {}) if key.startswith("fraction_")]
    if fractions or any(key.startswith("mean_") for key in (rows[0] if rows else {})):
        _print_task_summary(args, rows, fractions, pixels, seconds)
        _note_subfolders(args.inputs, args.out, rows)
        return 0
    folders = ["masks/", *([] if args.no_probabilities else ["probabilities/"]), "overlays/",
               *(["labels/", "instances/", "objects/"] if any("objects" in r for r in rows) else [])]
    print(f"predicted {len(rows)} image(s), {pixels / 1e6:.2f} MP in {seconds:.1f}s "
          f"({pixels / 1e6 / max(seconds, 1e-9):.2f} MP/s); outputs in {Path(args.out)}/ ({', '.join(folders)})")
    if any("scale" in r for r in rows):
        enlarged = sum(r["scale"] > 1 for r in rows)
        print(f"{enlarged} of {len(rows)} image(s) had small objects and were predicted again at 2x "
              "(postprocess.upscale_below_area)")
    _note_subfolders(args.inputs, args.out, rows)
    return 0


def _note_subfolders(inputs: list[str], out: str, rows: list[dict]) -> None:
    """A note on stderr when image files lie in subfolders of an input folder (read one level, not recursed).
    2D images only: volumes (rows with a depth) are found by their own rules (files, slice folders)."""
    import sys

    from unetkit.data.layouts import images_left_in_subfolders

    if any("depth" in row for row in rows):
        for row in rows:  # a folder of 2D images given to a 3D model is one volume: say so, it may be a surprise
            if Path(row["image"]).is_dir() and not str(row["image"]).lower().endswith(".zarr"):
                print(f"note: {row['image']} was read as one volume of {row['depth']} slices (a 3D model reads a "
                      "folder of 2D images as the planes of one volume, in name order)", file=sys.stderr)
        return

    count, folders = images_left_in_subfolders(inputs, exclude=[out], read=[row["image"] for row in rows])
    if count:
        shown = ", ".join(str(f) for f in folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
        print(f"note: {count} image file(s) in subfolders were not read ({shown}); folders are read one level "
              "deep: give those folders too to predict them", file=sys.stderr)


def _print_task_summary(args: argparse.Namespace, rows: list[dict], fractions: list[str], pixels: int,
                        seconds: float) -> None:
    """Multiclass: outputs and the mean share of each class by name; regression: outputs."""
    if fractions:
        extra = ", probabilities/<class>/" if args.class_probabilities else ""
        outputs = f"masks/ (class ids), overlays/ (with legend), classes.csv{extra}"
    else:
        outputs = "predictions/ (float32 TIFF in target units), overlays/"
    print(f"predicted {len(rows)} image(s), {pixels / 1e6:.2f} MP in {seconds:.1f}s "
          f"({pixels / 1e6 / max(seconds, 1e-9):.2f} MP/s); outputs in {Path(args.out)}/ ({outputs})")
    if fractions:
        width = max(len(key) - len("fraction_") for key in fractions)
        print(f"  {'class':<{width}}  mean share of pixels")
        for key in fractions:
            share = sum(row[key] for row in rows) / len(rows)
            print(f"  {key.removeprefix('fraction_'):<{width}}  {share:.4f}")
