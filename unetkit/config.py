"""Configuration: one dataclass per concern, a commented default on every field.

A run's resolved configuration is saved as ``config.yaml`` in its folder and inside every checkpoint,
so that a checkpoint alone can rebuild its model and its data normalisation. Recipes
(``unetkit.recipes``) are named sets of overrides applied on top of these defaults.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unetkit.errors import InputError

TASKS = ("binary", "instances", "multiclass", "regression")  # names of unetkit.tasks.TASKS (a test checks)


@dataclass
class DataConfig:
    """Where training data comes from and how patches are drawn from it."""

    layout: str = "auto"  # auto | folders | dsb | isbi-stack | class-folders
    image_dir: str = "images"  # image folder name inside a `folders` dataset
    mask_dir: str = "masks"  # mask folder name (``labels`` is also found automatically)
    val_fraction: float = 0.15  # share of images held out when no --val folder is given
    split_seed: int = 0  # seed of that hold-out split (fixed, so runs are comparable)
    # which planes of a microscopy file the network reads (unetkit.data.axes), kept with the checkpoint
    channels: list = field(default_factory=list)  # channel indices or OME names, e.g. [1] or ["DAPI"]; [] = all
    axes: str = ""  # axis letters (TCZYX) for files whose metadata lacks them, e.g. "TYX"; "" = the file's
    time: int = -1  # time point read from a T axis (-1: the file must have one)
    plane: int = -1  # Z plane read by a 2D network (-1: the file must have one)
    normalize_low: float = 1.0  # lower percentile mapped to 0 by per-image normalisation
    normalize_high: float = 99.8  # upper percentile mapped to 1
    patch_size: int = 256  # side of the input patch fed to the network (valid nets: output is smaller)
    patch_shape: list[int] = field(default_factory=list)  # per-axis patch, e.g. [32, 96, 96]; [] = patch_size
    foreground_fraction: float = 0.5  # share of patches centred on a random foreground pixel
    balance_classes: bool = False  # those centres drawn class by class (rare multiclass classes seen as often)
    samples_per_epoch: int = 256  # patches per training epoch (images have mixed sizes, so count patches)
    num_workers: int = 0  # DataLoader worker processes (0 = in the main process)
    target: str = "auto"  # auto (from task) | binary | three-class | distance
    boundary_width: int = 2  # px width of the boundary class in three-class targets
    weight_map: bool = False  # paper eq. 2 weight maps: class balance + touching-border emphasis
    w0: float = 10.0  # weight-map border strength (paper: 10)
    sigma: float = 5.0  # weight-map border width in px (paper: 5)
    weight_balance: bool = True  # weight maps' class-balance term w_c (false: 1, the border term only)
    small_object_area: float = 0.0  # weight maps: objects under this many px weigh sqrt(area / size) (0: off)
    class_names: list[str] = field(default_factory=list)  # names per class, background first
    ignore_label: int = 255  # label value left out of loss and metrics (multiclass, sparse 3D)
    sparse_labels: bool = False  # instance/binary labels mark unannotated voxels with ignore_label (3D U-Net)
    # multiclass masks (unetkit.data.masks, unetkit.data.class_folders)
    class_colors: list[list[int]] = field(default_factory=list)  # RGB per class of colour-coded masks
    ignore_color: list[int] = field(default_factory=list)  # RGB of ignored pixels in colour-coded masks
    class_priority: list[str] = field(default_factory=list)  # class-folders overlaps: first listed wins
    # regression targets (unetkit.data.image_targets)
    target_dir: str = "targets"  # regression: folder of target images next to image_dir
    target_norm: str = "percentile"  # regression: percentile (dataset-wide, stored) | none
    target_offset: list[float] = field(default_factory=list)  # per target channel: value mapped to 0
    target_scale: list[float] = field(default_factory=list)  # per target channel: span mapped to 1
    nan_policy: str = "error"  # non-finite pixels (NaN/Inf): error (refuse the image) | zero | nearest finite pixel


@dataclass
class AugmentConfig:
    """Paired augmentations applied to image, target and weight map alike."""

    flips: bool = True  # random flips along each spatial axis
    rot90: bool = True  # random multiples of 90 degrees in the last two axes
    intensity: bool = True  # brightness, contrast, gamma and noise on the image only
    invert: float = 0.0  # probability of inverting the normalised image (x -> 1 - x): dark nuclei on light
    color: float = 0.0  # probability of a colour change of a multi-channel image (per-channel gain/offset, gray)
    elastic: bool = False  # paper: smooth random deformation from a coarse grid
    elastic_grid: int = 3  # coarse grid points per axis (paper: 3x3)
    elastic_sigma: float = 10.0  # std in px of the coarse displacement vectors (paper: 10)
    rotation_degrees: float = 0.0  # max free rotation angle (0 = off)
    shift: float = 0.0  # max shift as a fraction of the patch (0 = off)
    zoom: float = 0.0  # max zoom: patches shown at 1/(1+zoom)..(1+zoom) their size, log-uniform (0 = off)


@dataclass
class ModelConfig:
    """Constructor arguments of the network; stored in checkpoints to rebuild it."""

    name: str = "unet"  # unet | ternaus11
    spatial_dims: int = 2  # 2 for images, 3 for volumes
    in_channels: int = 1  # image channels after loading (gray 1, RGB 3)
    out_channels: int = 2  # logits per pixel (binary: 2, three-class: 3, regression: target channels)
    depth: int = 5  # resolution levels; the paper has 5 (4 poolings)
    # channels of the first level, doubled per level (paper: 64 .. 1024); a CPU run that chose none: 16
    # (unetkit.recipes.machine_network)
    base_channels: int = 64
    padding: str = "same"  # valid (paper: unpadded convs, output smaller) | same (output = input)
    norm: str = "batch"  # none (paper) | batch | instance | group
    upsample: str = "transpose"  # transpose (paper: 2x2 up-conv) | bilinear (+ 1x1 conv)
    dropout: float = 0.0  # dropout at the end of the contracting path (paper: 0.5)
    pool_sizes: list[list[int]] = field(default_factory=list)  # per-level pooling, e.g. [[1,2,2],...]
    init: str = "default"  # default (PyTorch) | he (paper: Kaiming normal)
    encoder_weights: str = ""  # ternaus11: torchvision VGG11 state dict file for the encoder; "" = scratch
    freeze_encoder_epochs: int = 0  # ternaus11: train only the decoder for the first N epochs


@dataclass
class LossConfig:
    """Loss terms; activations live here, models return logits."""

    ce_weight: float = 1.0  # weight of the (pixel-weighted) cross-entropy term
    dice_weight: float = 1.0  # weight of the soft Dice term over foreground classes (0 = off)
    lovasz_weight: float = 0.0  # weight of the Lovasz-softmax term, a per-image IoU surrogate (0 = off)
    class_weights: list[float] = field(default_factory=list)  # per-class CE weights; empty = none
    regression: str = "l1"  # regression loss: l1 | mse | smooth_l1
    auto_class_weights: bool = False  # multiclass: class_weights from training pixel frequencies


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of a training run."""

    epochs: int = 40  # passes of samples_per_epoch patches
    batch_size: int = 8  # patches per step
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-4  # decoupled weight decay (AdamW) or L2 (SGD)
    momentum: float = 0.9  # SGD momentum (paper: 0.99)
    scheduler: str = "cosine"  # cosine (over epochs) | cosine-time (over time_budget_s) | constant
    warmup_epochs: int = 1  # linear warm-up before the cosine decay
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    # CPU training: auto | fp32 | bf16 (autocast; weights and optimiser stay float32). auto = bf16 where the
    # CPU computes bf16 in hardware (avx512_bf16 / amx_bf16: steps ~1.9x faster, BENCHMARKS.md "bf16
    # training on a CPU"), fp32 elsewhere (bf16 would be emulated there). CUDA follows train.amp.
    precision: str = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # seeds torch, numpy and the patch sampler
    time_budget_s: float = 0.0  # stop after this many seconds of training (0 = no limit)
    budget_clock: str = "wall"  # wall (elapsed time) | cpu (this process's CPU time: fair on a busy machine)
    val_every: int = 1  # validate every N epochs
    overlays: int = 4  # validation overlays written per validation
    tensorboard: bool = False  # also log scalars and validation overlays for TensorBoard into <run>/tensorboard
    grad_clip: float = 0.0  # max gradient norm (0 = off)
    memory_limit_gb: float = 0.0  # memory a training step may use; 0 = 80% of the free device memory
    # channels-last (NHWC / NDHWC) training: auto | true | false. auto = on a CPU for 3D nets, and for 2D nets
    # with gemm_convs; else up to 32 base channels (see training/optim.py and BENCHMARKS.md, issue 7)
    channels_last: str = "auto"
    gemm_convs: bool = True  # CPU NHWC training: 3x3 weight gradients and 2x2 up-convs as GEMMs (cpu_convs.py)
    # CPU fast paths (gemm_convs) timed against PyTorch's per layer shape at first use, cached per machine
    # (unetkit/cpu/autotune.py); false: they run wherever switched on, the same on every machine
    autotune: bool = True
    # start a new run from these weights (fine-tuning): a checkpoint, a run folder or a packaged model's name
    # such as nuclei; the network settings must match it. "" = random initialisation
    init_weights: str = ""
    compile: str = "off"  # torch.compile the training step: off | inductor | any torch.compile backend


@dataclass
class InferenceConfig:
    """Overlap-tile prediction."""

    tile_size: int = 256  # input tile side (valid nets: rounded to a valid size)
    overlap: float = 0.25  # same nets: share of a tile overlapping its neighbour
    batch_size: int = 4  # tiles per forward pass
    tta: bool = False  # average over flips
    blend: str = "gaussian"  # same nets: gaussian | constant weights across a tile
    threshold: float = 0.5  # foreground probability threshold for masks
    tile_shape: list[int] = field(default_factory=list)  # per-axis tile, e.g. [48, 128, 128]; [] = tile_size
    memory_limit_gb: float = 0.0  # memory tiled prediction may use; 0 = 80% of the free device memory
    compile: str = "off"  # torch.compile the network for prediction: off | inductor | any backend
    winograd: bool = True  # CPU, torch engine: 3x3 convs with >= 256 input channels as Winograd F(4x4, 3x3)
    # CPU, torch engine: Winograd timed against the direct conv per layer shape (from 128 input channels),
    # cached per machine (unetkit/cpu/autotune.py); false: the fixed >= 256 rule above, on every machine
    autotune: bool = True
    # CPU, torch engine: fp32 | bf16 (autocast; 2.35x faster on an AVX512_BF16 EPYC, emulated and slower
    # on CPUs without it; DSB Dice and probabilities vs fp32 in BENCHMARKS.md). CUDA follows train.amp.
    precision: str = "fp32"


@dataclass
class PostprocessConfig:
    """From probability maps to instance labels."""

    method: str = "auto"  # auto | components | watershed
    threshold: float = 0.5  # foreground probability threshold
    seed_threshold: float = 0.7  # interior probability for watershed seeds
    min_size: int = 15  # objects smaller than this many pixels are removed
    min_seed_size: int = 3  # watershed seeds smaller than this are dropped (thin necks split otherwise)
    min_distance: int = 3  # distance-map route: minimum px between seed peaks
    # instances, 2D: an image whose median object (first prediction) is under this many px is predicted
    # again at 2x and its probabilities averaged back (unetkit.inference.small_objects); 0 = off
    upscale_below_area: float = 0.0
    fill_holes: bool = True  # fill holes inside objects
    # three-class: drop objects whose score (unetkit/inference/object_filter.py: a logistic regression on features
    # of each object's probabilities, one weight per feature then the bias) is below min_object_score; empty
    # weights or 0 keep every object. Fitted with the tuning below (and by `unetkit tune-postprocess`)
    object_weights: list[float] = field(default_factory=list)
    min_object_score: float = 0.0
    # instances training: threshold, seed_threshold and min_size tuned at the end on training images (never
    # validation), stored in best.pt / last.pt (unetkit/training/finalize.py); false: keep the values above
    tune_after_training: bool = True
    # training images drawn (fixed seed) for that tuning, each centre-cropped to 512 px; 96, not 24: the choice
    # then varies 3x less between draws (BENCHMARKS.md, "How many images tune the post-processing")
    tune_images: int = 96
    # fewer truth objects than this on those crops and the configured values stay: a choice among the grid's 36
    # points on a few dozen objects is noise (nuclei3d: 30 nuclei chose values that cost its test part 0.03 AP50)
    tune_min_objects: int = 100


@dataclass
class RunConfig:
    """Everything that defines a run; saved as config.yaml and inside checkpoints."""

    task: str = "binary"  # binary | instances | multiclass | regression
    recipe: str = "default"  # the named recipe these values started from
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for YAML and checkpoints)."""
    return dataclasses.asdict(config)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, recursing into nested dataclasses."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"valid keys under '{where.rstrip('.') or 'top level'}': {', '.join(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise InputError(f"config key '{where}{name}' must be a mapping, got {value!r}")
            value = _build(type(default), value, f"{where}{name}.")
        kwargs[name] = value
    return cls(**kwargs)


def from_dict(values: dict[str, Any]) -> RunConfig:
    """RunConfig from a (possibly partial) nested dict; missing keys keep their defaults.

    Every value is checked (type, range, allowed words; see ``unetkit.config_rules``) before anything uses it.
    """
    from unetkit.config_rules import validate_config

    return validate_config(_build(RunConfig, values or {}, ""))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: ``1e-4`` is a number (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """YAML text to Python values (safe: no objects), with ``1e-4`` read as a float."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _coerce(text: str, current: Any, key: str) -> Any:
    """Parse an override string into the type of the current value."""
    try:
        value = load_yaml(text)
    except yaml.YAMLError as error:
        raise InputError(f"cannot parse override {key}={text!r}: {' '.join(str(error).split())}") from error
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InputError(f"override {key} expects true/false, got {text!r}")
        return value
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    if isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        raise InputError(f"override {key} expects a number, got {text!r}")
    if isinstance(current, list) and not isinstance(value, list):
        raise InputError(f"override {key} expects a list like [1, 2], got {text!r}")
    if isinstance(current, str) and not isinstance(value, str):
        value = str(text)
    return value


def apply_overrides(config: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """Return a copy of ``config`` with dotted overrides applied, e.g. ``["train.lr=0.01"]``."""
    values = to_dict(config)
    items = overrides.items() if isinstance(overrides, dict) else [split_override(o) for o in overrides]
    for key, raw in items:
        parts = key.split(".")
        node = values
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise InputError(f"unknown config section '{part}' in override '{key}'")
            node = node[part]
        if parts[-1] not in node:
            raise InputError(
                f"unknown config key '{key}'; valid keys here: {', '.join(sorted(node))}"
            )
        node[parts[-1]] = _coerce(raw, node[parts[-1]], key) if isinstance(raw, str) else plain_value(raw)
    return from_dict(values)


def plain_value(value: Any) -> Any:
    """Python values for numpy scalars (``np.int64(4)`` from ``np.arange``, ``np.bool_``) and arrays
    (``np.linspace`` thresholds), in lists too."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def split_override(override: str) -> tuple[str, str]:
    """("section.key", "value") of a ``section.key=value`` override; an InputError naming the form otherwise."""
    if "=" not in override:
        raise InputError(f"override '{override}' must look like section.key=value, e.g. train.lr=0.01")
    key, value = override.split("=", 1)
    return key.strip(), value.strip()


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file (partial files are fine)."""
    return from_dict(read_config_file(path))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The sections and keys a YAML config file sets, as written (``load_config`` fills in the rest)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"config {path} is a folder; give a YAML file (e.g. a run's config.yaml)")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        values = load_yaml(path.read_text()) or {}
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a text file ({error.reason}); give a YAML file") from error
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(values, dict):
        raise InputError(f"{path}: expected a mapping of sections (data:, model:, train: ...)")
    return values


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    from unetkit.safety.atomic import write_text

    write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
