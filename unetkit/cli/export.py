"""`unetkit export`: write a checkpoint's network as ONNX or TorchScript, verified against PyTorch."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX or TorchScript (verified: max abs diff vs PyTorch)",
        description="Example: unetkit export --model runs/nuclei --format onnx --out runs/nuclei/model.onnx; "
                    "then: unetkit predict --engine onnxruntime --model runs/nuclei/model.onnx images/ --out pred")
    parser.add_argument("--model", required=True,
                        help="checkpoint (.pt), run folder (uses best.pt) or packaged model name")
    parser.add_argument("--format", dest="fmt", choices=["onnx", "torchscript", "bioimageio"], default="onnx",
                        help="bioimageio: a BioImage Model Zoo package (.zip) for Fiji/QuPath/ilastik/napari")
    parser.add_argument("--out", help="output file (default: model.onnx / model.ts / bioimageio.zip next to the "
                        "checkpoint; for a packaged model, in the current folder)")
    parser.add_argument("--name", help="bioimageio: model name (default: from the run folder)")
    parser.add_argument("--author", action="append", help="bioimageio: author name (repeatable)")
    parser.add_argument("--license", default="CC-BY-4.0", help="bioimageio: SPDX license of the model")
    parser.add_argument("--test-image", help="bioimageio: image whose crop becomes the package's test input")
    parser.add_argument("--tile", type=int, help="tile size of the verification input (default: min(tile, 128))")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from unetkit.api import export_model

    result = export_model(args.model, args.out, args.fmt, tile_size=args.tile, name=args.name, authors=args.author,
                          license=args.license, test_image=args.test_image)
    if args.fmt == "bioimageio":
        print(f"bioimage.io package {result.path} (weights {', '.join(result.weights)}; export vs PyTorch max abs "
              f"diff {result.max_abs_diff:.2e}); check it with: bioimageio test {result.path}")
        for note in result.left_out:  # what unetkit does that the package cannot
            print(f"note: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps({"path": str(result.path), "format": "bioimageio", "weights": list(result.weights),
                              "max_abs_diff": result.max_abs_diff}))
        return 0
    shapes = ", ".join("x".join(str(s) for s in shape) for shape in result.input_shapes)
    print(f"exported {args.fmt} to {result.path} in {result.seconds:.1f}s; verified on inputs {shapes}: "
          f"max abs diff vs PyTorch {result.max_abs_diff:.2e}")
    if args.json:
        print(json.dumps({"path": str(result.path), "format": result.format, "max_abs_diff": result.max_abs_diff,
                          "input_shapes": [list(s) for s in result.input_shapes],
                          "seconds": round(result.seconds, 2)}))
    return 0
