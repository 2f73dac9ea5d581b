"""Export a checkpoint as a BioImage Model Zoo package (bioimage.io model description 0.5).

The package is a zip that Fiji (deepImageJ), QuPath, ilastik, napari (bioimageio plugins) and
``bioimageio.core`` open without unetkit. It holds:

- ``rdf.yaml``: the model description: inputs ``(batch, channel, [z,] y, x)`` with the tile sizes the
  network accepts (``min + n * step``, the pooling divisor), the output size relative to the input
  (smaller by the valid-padding margin), the percentile normalisation the checkpoint trained with as
  the spec's ``scale_range`` preprocessing (all channels jointly, per image, as
  :func:`unetkit.data.io.normalize_percentile`), and a ``softmax`` over the channel axis as post-processing;
- ONNX and TorchScript weights (``unetkit.export.formats``, each verified against PyTorch);
- a test input (raw image values: a crop of ``--test-image``, else synthetic data of the model's kind) and its
  expected output computed here with PyTorch, which ``bioimageio.core``'s model test reproduces from each
  weight format;
- a halo on the output axes of a same-padded net (:func:`output_halo`), so tools that predict tile by tile
  crop the tiles' edges as unetkit's own tiling blends them away;
- a cover image (input beside the predicted foreground) and a README with the run's measured
  validation scores and what the spec cannot express (unetkit's watershed instance post-processing, the
  min/max fallback of the normalisation on sparse images).

Needs the ``bioimageio`` extra (``pip install 'unetkit[bioimageio]'``: bioimageio.spec and .core).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unetkit.errors import InputError

UNET_CITATION = ("Ronneberger O., Fischer P., Brox T. U-Net: Convolutional Networks for Biomedical Image "
                 "Segmentation. MICCAI 2015", "10.1007/978-3-319-24574-4_28")
UNET3D_CITATION = ("Çiçek Ö., Abdulkadir A., Lienkamp S.S., Brox T., Ronneberger O. 3D U-Net: Learning Dense "
                   "Volumetric Segmentation from Sparse Annotation. MICCAI 2016", "10.1007/978-3-319-46723-8_49")
TERNAUS_CITATION = ("Iglovikov V., Shvets A. TernausNet: U-Net with VGG11 Encoder Pre-Trained on ImageNet for "
                    "Image Segmentation. arXiv:1801.05746 (2018)", "https://arxiv.org/abs/1801.05746")
# scale_range's epsilon: (x - p_low) / (p_high - p_low + eps). Kept small: the spec allows up to 0.1, which
# would not mend sparse images (sparse_image_note: a 200-valued disc maps to 2000 instead of 1, and the nuclei
# model, one PyTorch pass over the 256x256 image, still calls 3061 px foreground instead of 112) and would
# shrink a 0..1 float image's values by ~10 %.
EPS = 1e-6
PLACEHOLDER_AUTHOR = "unetkit user"  # the package's author when no --author is given (named in a note)
# Packaged models whose images are not fluorescent nuclei: the synthetic test image of their kind. A run
# fine-tuned from one (train.init_weights) is of the same kind.
SYNTHETIC_KIND = {"em-membranes": "membranes", "em-organelles": "membranes"}
SYNTHETIC_WHAT = {"nuclei": "synthetic fluorescent nuclei (unetkit.data.synthetic)",
                  "membranes": "synthetic gray EM-like cells with dark membranes (no organelles)"}


@dataclass
class BioimageioResult:
    """What :func:`export_bioimageio` wrote."""

    path: Path  # the package (.zip)
    weights: list[str]  # weight formats inside
    input_shape: tuple[int, ...]  # shape of the test input
    max_abs_diff: float  # largest export-vs-PyTorch logit difference over the weight formats
    left_out: list[str] = field(default_factory=list)  # what the package cannot express or lacks, one note each


def _require_spec():
    try:
        import bioimageio.spec  # noqa: F401  (pydantic models; a ValidationError is a ValueError)
    except ImportError as error:
        raise InputError("bioimage.io export needs bioimageio.spec: pip install 'unetkit[bioimageio]'") from error


def synthetic_kind(config, packaged: str | None) -> str:
    """Which synthetic image suits the model: ``membranes`` for the EM models (and runs fine-tuned from them),
    else ``nuclei``. 2D only: a 3D model gets nuclei planes."""
    from unetkit.models.registry import model_spatial_dims

    kind = SYNTHETIC_KIND.get(packaged or str(config.train.init_weights), "nuclei")
    return kind if model_spatial_dims(config.model) == 2 else "nuclei"


def _test_image(config, shape: tuple[int, ...], image: str | Path | None, rng: np.random.Generator,
                kind: str = "nuclei") -> np.ndarray:
    """A raw test input (1, C, *S) float32: a crop of ``image`` when given, else synthetic data of ``kind``
    (gray repeated over the channels)."""
    channels, spatial = config.model.in_channels, shape[2:]
    if image is not None:
        from unetkit.data.io import read_image, read_volume

        data = (read_volume(image) if len(spatial) == 3 else read_image(image)).astype(np.float32)
        if data.shape[0] != channels:
            from unetkit.data.channels import match_channels

            data = match_channels(data, channels, image)
        if any(n < s for n, s in zip(data.shape[1:], spatial, strict=True)):
            raise InputError(f"{image}: test image of shape {data.shape[1:]} is smaller than the tile {spatial}; "
                             "give a larger image or a smaller --tile")
        return np.ascontiguousarray(data[(slice(None), *(slice(0, s) for s in spatial))])[None]
    from unetkit.data.synthetic import make_membrane_image, make_nuclei_image

    if kind == "membranes":
        data = np.repeat(make_membrane_image(rng, tuple(spatial))[None].astype(np.float32), channels, axis=0)
    elif len(spatial) == 2:
        nuclei, _ = make_nuclei_image(rng, tuple(spatial), bit_depth=16)
        data = np.repeat(nuclei[None].astype(np.float32), channels, axis=0)
    else:
        planes = [make_nuclei_image(rng, tuple(spatial[1:]), bit_depth=16)[0] for _ in range(spatial[0])]
        data = np.repeat(np.stack(planes)[None].astype(np.float32), channels, axis=0)
    return data[None]


def _expected_output(model, raw: np.ndarray, config) -> np.ndarray:
    """What the package must produce: scale_range as the spec computes it, the net, softmax (1, K, *S_out)."""
    import torch

    low, high = np.percentile(raw[0], [config.data.normalize_low, config.data.normalize_high])
    normalised = ((raw - low) / (high - low + EPS)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(normalised))
    return torch.softmax(logits.float(), dim=1).numpy().astype(np.float32)


def _cover(raw: np.ndarray, probs: np.ndarray, path: Path) -> None:
    """Input (left) beside the predicted foreground (right), both 8-bit gray, 2:1 (the spec allows 1:1..2:1)."""
    from PIL import Image

    def middle(a: np.ndarray) -> np.ndarray:
        return a[a.shape[0] // 2] if a.ndim == 3 else a

    image = middle(raw[0].mean(axis=0))
    foreground = middle(1.0 - probs[0, 0])
    lo, hi = np.percentile(image, [1, 99.8])
    left = np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
    right = np.zeros_like(left)
    oy, ox = (left.shape[0] - foreground.shape[0]) // 2, (left.shape[1] - foreground.shape[1]) // 2
    right[oy:oy + foreground.shape[0], ox:ox + foreground.shape[1]] = np.clip(foreground * 255, 0, 255)
    Image.fromarray(np.concatenate([left, right], axis=1).astype(np.uint8)).save(path)


def _scores(run_dir: Path) -> str:
    """The run's best validation scores from metrics.json / metrics.csv, or a packaged model's card, as Markdown
    lines."""
    from unetkit.pretrained import CARD, model_card

    if (run_dir / CARD).is_file():  # a packaged model: the validation scores its card records
        validation = model_card(run_dir.name).fields.get("validation", {})
        flat = {k: v for k, v in validation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if flat:
            return "\n".join(f"- {key}: {value:.4g}" for key, value in flat.items())
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        values = json.loads(metrics.read_text())
        flat = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if flat:
            return "\n".join(f"- {key}: {value:.4g}" for key, value in flat.items())
    csv_file = run_dir / "metrics.csv"
    if csv_file.is_file():
        import csv

        with open(csv_file) as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            val_keys = [k for k in rows[0] if k.startswith("val_")]
            if val_keys:
                scores = [k for k in val_keys if k != "val_loss"] or val_keys  # a loss is not a score to maximise
                key = scores[-1] if "val_score" not in rows[0] else "val_score"
                best = max(rows, key=lambda r: float(r[key] or "nan") if r[key] else float("-inf"))
                return "\n".join(f"- {k} (epoch {best.get('epoch', '?')}): {best[k]}" for k in val_keys)
    return "- no validation scores were found next to the checkpoint"


def output_halo(config, tile: tuple[int, ...]) -> tuple[int, ...]:
    """Pixels per side (one per spatial axis) that a tool predicting tile by tile should crop from each output
    tile of a same-padded net: its receptive-field radius, capped at a quarter of the package's smallest tile.

    Why: an output pixel closer to a tile's edge than the receptive-field radius r sees zero padding instead
    of the image. r is the margin a valid net of the same depth loses per side (``sizes.valid_margin``):
    92 px for depth 5, the paper's (572 - 388) / 2. Cropping r makes tiles exact, but the spec needs the
    smallest tile above 2 x halo and a tile of 128 px can't lose 2 x 92; a quarter of the tile keeps each
    tile's centre half, as unetkit's own tiling does (tile 256, overlap 0.25: neighbours share 64 px, each
    seam 32 px from a tile edge, the Gaussian window fading the edge away). The halo is a multiple of half the
    pooling step, so a tile padded by it on both sides stays a size the net takes. Worked numbers: depth 5,
    tile 128 -> min(92, 32) = 32 (bioimageio.core's tiled vs whole-image prediction on a 384 px image of the
    ``nuclei`` model: max probability difference 0.87 -> 0.45, argmax changed on 0.27 % -> 0.05 % of pixels);
    ``--tile 256`` -> 64; depth 2, tile 32 -> min(8, 8) = 8 (exact). A valid net already crops its margin
    (the output's ``offset``): halo 0.

    The cost: bioimageio.core mirrors every image by the halo (``symmetric``) even when it predicts it whole,
    where unetkit's tiles zero-pad at the image's edges; on that 384 px image, whole-image prediction against
    ``unetkit predict``: max difference 0.22 -> 0.72 and argmax changed on 0.015 % -> 0.27 % of pixels, all
    within 92 px of the edges (deeper: 0.047 either way), while tiles of 256 went 0.84 -> 0.72 (deeper than
    92 px: 0.83 -> 0.20). Said in the package's README.
    """
    from unetkit.models import sizes
    from unetkit.models.registry import model_spatial_dims

    model = config.model
    dims = model_spatial_dims(model)
    if model.padding == "valid":
        return (0,) * dims
    radius = sizes.valid_margin(model.depth, dims, model.pool_sizes or None)
    steps = sizes.same_divisor(model.depth, dims, model.pool_sizes or None)
    halos = []
    for r, t, step in zip(radius, tile, steps, strict=True):
        unit = step // 2 if step % 2 == 0 else step  # 2 x halo a multiple of the step
        halos.append(min(r, t // 4) // unit * unit)
    return tuple(halos)


def sparse_image_note(config) -> str:
    """What the package's ``scale_range`` does differently from unetkit on sparse images: the spec has no
    fallback when the two percentiles coincide."""
    low, high = config.data.normalize_low, config.data.normalize_high
    return (f"normalisation: where an image's percentiles {low:g} and {high:g} are equal (e.g. a dark "
            f"background with under {100 - high:.2g} % of its pixels brighter: one small bright object), unetkit "
            "scales the image by its min and max instead; the bioimage.io spec's scale_range has no such fallback "
            "and divides by its eps, 1e-6, so the package's output differs completely (the nuclei model on a "
            "256x256 image with one disc of 113 px: 112 px foreground in unetkit, 10,438 through the package). "
            f"Check with numpy.percentile(image, [{low:g}, {high:g}]); for such images use unetkit, or scale the image "
            "to 0..1 by its min and max yourself and predict with the package's pre-processing skipped "
            "(bioimageio.core.predict(..., skip_preprocessing=True)).")


def author_note(authors: list[str] | None) -> str:
    """A note when the package's author is the placeholder ("" when authors were given)."""
    if authors:
        return ""
    return (f"no --author given: the package names the placeholder author '{PLACEHOLDER_AUTHOR}'; give "
            "--author 'Name' (once per person) before sharing it or uploading it to the BioImage Model Zoo, "
            "whose reviewers expect the people who trained the model")


def channel_names(config) -> list[str]:
    """Names of the input channels: the OME names or file indices of ``data.channels``, R/G/B for a 3-channel
    model (unetkit reads 3 channels as the R, G, B of a colour image), ``gray`` for one channel."""
    chosen, count = list(config.data.channels), config.model.in_channels
    if len(chosen) == count:  # channel -1 is the file's last: "channel_last1"; names made distinct
        names: list[str] = []
        for c in chosen:
            name = _identifier(str(c) if isinstance(c, str) else f"channel{int(c)}".replace("-", "_last"))
            unique, n = name, 1
            while unique in names:
                unique, n = f"{name}_{n}", n + 1
            names.append(unique)
        return names
    if count == 3:
        return ["R", "G", "B"]
    return ["gray"] if count == 1 else [f"channel{c}" for c in range(count)]


def small_objects_note(config) -> str:
    """What the package leaves out of an instances model's small-object rule ("" where the model has none):
    a bioimage.io model predicts every image once, at its own size."""
    from unetkit.inference.small_objects import rule_applies

    if not rule_applies(config):
        return ""
    return (f"unetkit predicts an image whose median object (in its first answer) is under "
            f"{config.postprocess.upscale_below_area:g} px a second "
            "time at twice its size (a cubic B-spline, skimage's rescale with order=3 and clip=False) and averages "
            "each 2x2 block of those probabilities back "
            "(`postprocess.upscale_below_area`); this package predicts every image at its own size, so on images "
            "of small objects it gives what unetkit gives without that rule (enlarge such images 2x before and "
            "average 2x2 blocks after, or use unetkit).")


def _halo_edge_note(halo: tuple[int, ...]) -> str:
    """What the halo changes at an image's edges ("" without one)."""
    if not any(halo):
        return ""
    return ("\nbioimageio.core pads each image by that halo (mirrored) even when it predicts the image whole, "
            "where unetkit lets the net zero-pad at the edges: probabilities within the network's receptive "
            "field of the image's edges can differ from `unetkit predict`'s.")


def _readme(config, run_dir: Path, name: str, diffs: dict[str, float], left_out: list[str], test_what: str,
            halo: tuple[int, ...]) -> str:
    from unetkit.models.registry import model_spatial_dims
    from unetkit.tasks import get_task

    dims = model_spatial_dims(config.model)
    try:
        get_task(config).instance_kind(config)  # a class map or a regression has no instances
        post = ("Instances: unetkit separates touching objects with a seeded watershed on the predicted "
                "probabilities (`unetkit predict --instances`, settings in `config.postprocess` of the run). The "
                "bioimage.io format cannot express that step, so this package outputs per-pixel class "
                "probabilities only; apply a watershed (or unetkit) to them for instance labels.")
    except InputError:
        post = ""
    post += "".join("\n\n" + note for note in left_out)  # what unetkit does that the package cannot
    return f"""# {name}

A {dims}D U-Net ({config.model.name}, depth {config.model.depth}, {config.model.base_channels} base channels,
{config.model.padding} padding) trained with unetkit for the task `{config.task}`.

## Input
`{config.model.in_channels}` channel(s), raw values of the microscope image. The package normalises each
image itself: its percentiles {config.data.normalize_low:g} and {config.data.normalize_high:g} (over all
channels) map to 0 and 1 (`scale_range`), as unetkit did during training, except on sparse images whose
two percentiles are equal (see the notes below). Channels: {", ".join(channel_names(config))}.
Tools that predict tile by tile should crop {" / ".join(str(h) for h in halo)} px from each side of every output
tile (the declared `halo`{", 0: this unpadded net crops its own margin" if not any(halo) else ""}).\
{_halo_edge_note(halo)}

## Output
`{config.model.out_channels}` channels of softmax probabilities (channel 0 = background).
{post}

## Validation scores of the run (measured by unetkit during training)
{_scores(run_dir)}

## Export check
Test input: {test_what}; the test output is what unetkit's network gives for it (the check that the package
reproduces unetkit, not a measure of the model's accuracy).
Largest difference of the exported logits from PyTorch on the verification inputs:
{", ".join(f"{fmt} {diff:.2e}" for fmt, diff in diffs.items())}.

## How it was made
`unetkit export --model <run> --format bioimageio`; see the unetkit README.
"""


def is_unetkit_package(path: str | Path) -> bool:
    """Whether ``path`` is a package ``export_bioimageio`` wrote (a zip with an rdf.yaml tagged unetkit and our
    weight files): an earlier export it may replace; anything else is never written over."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {"rdf.yaml", "weights.onnx", "weights.ts"} <= names:
                return False
            return "unetkit" in archive.read("rdf.yaml").decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def export_bioimageio(checkpoint: str | Path, output: str | Path, *, name: str | None = None,
                      authors: list[str] | None = None, license: str = "CC-BY-4.0",
                      tile_size: int | None = None, test_image: str | Path | None = None,
                      description: str | None = None) -> BioimageioResult:
    """Write a bioimage.io model package (.zip) for ``checkpoint`` (a .pt file or run folder)."""
    from unetkit.safety.paths import check_new_output, check_output_file

    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise InputError(f"--out {output}: a bioimage.io package is a .zip; give such a name")
    from unetkit.export.formats import checkpoint_files

    check_output_file(output, checkpoint_files(checkpoint))
    check_new_output(output, owned=is_unetkit_package, kind="an earlier unetkit bioimage.io package")
    _require_spec()
    import torch
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as spec

    from unetkit.checkpoint import load_model, resolve_path
    from unetkit.export.formats import check_tile_fits, export_model, verification_shapes
    from unetkit.models import sizes
    from unetkit.models.registry import model_spatial_dims
    from unetkit.pretrained import is_packaged
    from unetkit.tasks import get_task

    packaged = str(checkpoint) if is_packaged(checkpoint) else None  # "nuclei": named, and scored by its card
    checkpoint = Path(checkpoint)
    run_dir = checkpoint if checkpoint.is_dir() else resolve_path(checkpoint).parent
    model, config = load_model(checkpoint, device="cpu")
    model = model.float().eval()
    if get_task(config).activation != "softmax":  # regression: values, not the softmax the package declares
        raise InputError(f"{checkpoint}: bioimage.io export is for segmentation checkpoints (softmax outputs); "
                         "regression models are exported with --format onnx/torchscript")
    dims = model_spatial_dims(config.model)
    shapes = verification_shapes(config, tile_size, batch=1)
    check_tile_fits(shapes, config.model.base_channels, tile_size)  # before torch asks for the memory
    in_shape = shapes[0]
    step = sizes.same_divisor(config.model.depth, dims, config.model.pool_sizes or None)
    with torch.no_grad():
        out_spatial = tuple(model(torch.zeros(in_shape)).shape[2:])
    offsets = [o - i for o, i in zip(out_spatial, in_shape[2:], strict=True)]  # 0 (same) or -2 x margin
    rng = np.random.default_rng(0)
    kind = synthetic_kind(config, packaged)
    raw = _test_image(config, in_shape, test_image, rng, kind)
    expected = _expected_output(model, raw, config)
    name = name or f"unetkit {config.model.name} {packaged or run_dir.name}"
    halo = output_halo(config, in_shape[2:])
    test_what = f"a crop of {Path(test_image).name}" if test_image is not None else SYNTHETIC_WHAT[kind]
    left_out = [note for note in (small_objects_note(config), sparse_image_note(config), author_note(authors))
                if note]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        diffs = {}
        for fmt, file in (("onnx", "weights.onnx"), ("torchscript", "weights.ts")):
            diffs[fmt] = export_model(checkpoint, folder / file, fmt, tile_size).max_abs_diff
        np.save(folder / "test_input.npy", raw)
        np.save(folder / "test_output.npy", expected)
        import tifffile  # sample tensors: the same arrays as images a person can open

        tifffile.imwrite(folder / "sample_input.tif", raw[0], photometric="minisblack")
        tifffile.imwrite(folder / "sample_output.tif", expected[0], photometric="minisblack")
        _cover(raw, expected, folder / "cover.png")
        (folder / "README.md").write_text(_readme(config, run_dir, name, diffs, left_out, test_what, halo))

        axis_ids = ["z", "y", "x"][3 - dims:]
        in_axes = [spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in
                                                                     channel_names(config)])]
        in_axes += [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(min=int(n), step=int(s)))
                    for a, n, s in zip(axis_ids, in_shape[2:], step, strict=True)]
        class_names = get_task(config).output_names(config)
        out_axes = [spec.BatchAxis(), spec.ChannelAxis(channel_names=[
            spec.Identifier(_identifier(n)) for n in class_names])]
        out_axes += [_output_axis(spec, a, off, h) for a, off, h in zip(axis_ids, offsets, halo, strict=True)]
        preprocessing = [spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
            axes=[spec.AxisId("channel"), *(spec.AxisId(a) for a in axis_ids)],
            min_percentile=float(config.data.normalize_low), max_percentile=float(config.data.normalize_high),
            eps=EPS))]
        postprocessing = [spec.SoftmaxDescr(kwargs=spec.SoftmaxKwargs(axis=spec.AxisId("channel")))]
        citations = [UNET_CITATION, *([UNET3D_CITATION] if dims == 3 else []),
                     *([TERNAUS_CITATION] if config.model.name == "ternaus11" else [])]
        cite = [spec.CiteEntry(text=text, **({"doi": ref} if ref.startswith("10.") else {"url": ref}))
                for text, ref in citations]
        descr = _described(spec, name=name, license=license, fields=lambda: dict(
            description=description or f"U-Net segmentation ({config.task}) trained and exported with unetkit",
            authors=[spec.Author(name=a) for a in (authors or [PLACEHOLDER_AUTHOR])],
            **({"version": spec.Version(str(_card_version(packaged)))} if packaged else {}),
            cite=cite,
            documentation=spec.FileDescr(source=folder / "README.md"),
            covers=[spec.FileDescr(source=folder / "cover.png")],
            tags=["unet", "segmentation", f"{dims}d", "unetkit"],
            inputs=[spec.InputTensorDescr(id=spec.TensorId("raw"), axes=in_axes,
                                          test_tensor=spec.FileDescr(source=folder / "test_input.npy"),
                                          sample_tensor=spec.FileDescr(source=folder / "sample_input.tif"),
                                          preprocessing=preprocessing)],
            outputs=[spec.OutputTensorDescr(id=spec.TensorId("probabilities"), axes=out_axes,
                                            test_tensor=spec.FileDescr(source=folder / "test_output.npy"),
                                            sample_tensor=spec.FileDescr(source=folder / "sample_output.tif"),
                                            postprocessing=postprocessing)],
            weights=spec.WeightsDescr(
                onnx=spec.OnnxWeightsDescr(source=folder / "weights.onnx", opset_version=18),
                torchscript=spec.TorchscriptWeightsDescr(source=folder / "weights.ts",
                                                         pytorch_version=spec.Version(torch.__version__.split("+")[0])),
            ),
        ))
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = output.with_name(f".{output.name}.partial.zip")
        save_bioimageio_package(descr, output_path=staging)
        shutil.move(staging, output)
    return BioimageioResult(output, list(diffs), tuple(raw.shape), max(diffs.values()), left_out)


def _described(spec: Any, name: str, license: str, fields: Callable[[], dict[str, Any]]) -> Any:
    """``spec.ModelDescr(name=..., license=..., **fields())``, its validation error one line naming the value:
    ``--license NOT-A-LICENSE`` ended in a page of pydantic's errors."""
    from pydantic import ValidationError

    try:
        return spec.ModelDescr(name=name, license=license, **fields())
    except ValidationError as error:
        first = error.errors()[0]
        where = str(first.get("loc", ("?",))[0])
        hint = {"license": f"--license {license}: give an SPDX licence id, e.g. CC-BY-4.0 or MIT",
                "name": f"--name {name!r}: give a name of letters, digits, spaces and - _ ( )"}.get(where)
        raise InputError(hint or f"bioimage.io package: {where}: {first.get('msg', error)}") from error


def _card_version(packaged: str) -> int:
    """The version a packaged model's card gives (e.g. 5 for em-membranes)."""
    from unetkit.pretrained import model_card

    return model_card(packaged).version


def _identifier(text: str) -> str:
    """A spec identifier from a class name: letters, digits and underscores, starting with a letter."""
    cleaned = "".join(c if c.isalnum() else "_" for c in text).strip("_") or "class"
    return cleaned if cleaned[0].isalpha() else f"c_{cleaned}"


def _output_axis(spec: Any, axis: str, offset: int, halo: int) -> Any:
    """An output space axis sized by the input's, with ``halo`` px per side to crop where the spec tiles."""
    size = spec.SizeReference(tensor_id=spec.TensorId("raw"), axis_id=spec.AxisId(axis), offset=int(offset))
    if halo:
        return spec.SpaceOutputAxisWithHalo(id=spec.AxisId(axis), size=size, halo=int(halo))
    return spec.SpaceOutputAxis(id=spec.AxisId(axis), size=size)
