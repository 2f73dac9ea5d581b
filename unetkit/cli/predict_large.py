"""`unetkit predict-large`: predict one image larger than memory, tile by tile, into a .npy/.tif/.zarr."""

from __future__ import annotations

import argparse
import json
import sys

from unetkit.cli.inference_options import add_inference_arguments
from unetkit.cli.selection import add_selection_arguments, selection_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict-large", help="predict a whole-slide image larger than memory (streamed in and out)",
        description="Example: unetkit predict-large --model runs/nuclei slide.tif --out slide_probs.zarr "
                    "--instances slide_labels.npy. Input: .npy, .tif/.tiff or .zarr, read tile by tile; "
                    "output: softmax probabilities (K, H, W) (regression: values) written band by band; peak "
                    "memory is set by the tile, batch and --strip, not by the image size.")
    parser.add_argument("image", help="input image (.npy, .tif/.tiff, .zarr)")
    parser.add_argument("--model", required=True, help="checkpoint (.pt), run folder, or an exported file")
    parser.add_argument("--out", required=True, help="probabilities output: .npy, .tif (tiled BigTIFF) or .zarr")
    parser.add_argument("--engine", choices=["torch", "onnxruntime", "torchscript"], default="torch")
    parser.add_argument("--strip", type=int, default=4096, help="strip width in px (memory ~ tile x strip)")
    parser.add_argument("--dtype", choices=["float32", "float16", "uint8"], default="float32",
                        help="probability storage; uint8 = probability x 255 (4x smaller)")
    parser.add_argument("--instances", help="also write instance labels (uint32) to this .npy/.zarr (2D: or .tif), "
                        "in chunks; with an .ome.zarr --out, a name (e.g. nuclei) puts them in its labels/ group")
    parser.add_argument("--chunk", type=int, default=2048, help="instance post-processing chunk size in px")
    parser.add_argument("--halo", type=int, default=128,
                        help="px of context around each chunk; clumps of objects up to this size are never cut")
    add_inference_arguments(parser, nan_note=" within the tile read")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (its <out stem>.unfinished file) instead of starting over")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quiet", action="store_true")
    add_selection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import unetkit

    try:
        done = unetkit.predict_large(args.model, args.image, args.out, instances=args.instances, chunk=args.chunk,
                                     halo=args.halo, engine=args.engine, device=args.device, tile_size=args.tile,
                                     overlap=args.overlap, batch_size=args.batch, tta=args.tta,
                                     strip_width=args.strip, out_dtype=args.dtype, progress=not args.quiet,
                                     resume=args.resume, nan_policy=args.nan_policy, precision=args.precision,
                                     **selection_options(args))
    except KeyboardInterrupt:
        from unetkit.safety.partial import PartialOutput

        partial = PartialOutput(args.out)
        resumable = partial.work.exists() and partial.progress.is_file()
        resumable |= bool(args.instances) and PartialOutput(args.instances).stored_signature() is not None
        print("unetkit predict-large: interrupted" + ("; what was written is kept: continue with the same command "
              "and --resume" if resumable else ""), file=sys.stderr)
        return 130
    stats = done["prediction"]
    print(f"predicted {args.image}: {stats.megapixels:.1f} MP in {stats.seconds:.1f}s "
          f"({stats.megapixels_per_s:.2f} MP/s, {stats.tiles_predicted} tiles), peak memory "
          f"{stats.peak_rss_mb:.0f} MiB; output in {args.out}")
    if stats.scale > 1:
        print(f"its objects are small: predicted at {stats.scale}x and averaged back (postprocess.upscale_below_area)")
    summary = {"prediction": dataclasses.asdict(stats)}
    if done["instances"] is not None:
        result = done["instances"]
        print(f"instances: {result.objects} objects in {result.seconds:.1f}s ({result.cut_pieces} pieces of "
              f"clumps larger than the halo); labels in {done['instances_path']}")
        summary["instances"] = dataclasses.asdict(result)
    if args.json:
        print(json.dumps(summary))
    return 0
