"""Dataset layouts on disk: find (image, labels) samples and load them.

Supported layouts (``detect_layout`` tells them apart):

- ``folders``: ``root/images/<name>.<ext>`` with ``root/masks/<name>.<ext>`` (or ``root/labels/``),
  paired by file stem (``a.png`` with ``a.tif``).
- ``dsb``: the 2018 Data Science Bowl layout, one folder per image id:
  ``root/<id>/images/<id>.png`` and ``root/<id>/masks/*.png``, one binary mask per nucleus.
- ``isbi-stack``: a multi-page image TIFF and a labels TIFF side by side, e.g. ISBI 2012's
  ``train-volume.tif`` and ``train-labels.tif``; one sample per page.
- ``images``: a folder of images without labels (prediction).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit.data.io import (
    IMAGE_EXTENSIONS,
    TIFF_EXTENSIONS,
    image_shape,
    normalize_percentile,
    read_image,
    read_labels,
    read_page,
    tiff_pages,
)
from unetkit.data.ome import image_stem, is_zarr_dir
from unetkit.errors import InputError
from unetkit.notes import note_once
from unetkit.safety.finite import apply_nan_policy

LAYOUTS = ("folders", "dsb", "isbi-stack", "images")
LABEL_WORDS = ("label", "mask")  # a TIFF whose name holds one of these is the labels of an isbi-stack

_LAYOUT_HELP = (
    "expected one of: 'folders' (images/ with masks/ or labels/, files paired by name), "
    "'dsb' (<id>/images/<id>.png with <id>/masks/*.png), "
    "'isbi-stack' (a multi-page image TIFF with a labels TIFF, e.g. train-volume.tif + train-labels.tif), "
    "'images' (a folder of images, for prediction)"
)


@dataclass(frozen=True)
class Sample:
    """One training or prediction item: an image file and its label file(s)."""

    name: str  # unique within a dataset; used for output file names
    image_path: Path
    label_paths: tuple[Path, ...] = ()  # one label image, or one binary mask per object (dsb)
    index: int | None = None  # page of a multi-page TIFF (isbi-stack), else None


# --------------------------------------------------------------------------------------------------
# finding files


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def _images_in(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped); a link among them whose file is
    gone is named (it was left out without a word, or its mask reported as "without an image")."""
    entries = sorted(folder.iterdir())
    broken = next((p for p in entries if p.is_symlink() and not p.exists() and not p.name.startswith(".")
                   and p.suffix.lower() in IMAGE_EXTENSIONS), None)
    if broken is not None:
        raise InputError(f"{broken}: a link to {os.readlink(broken)}, which does not exist; fix or remove the link")
    return [p for p in entries if _is_image(p)]


def _predictable_in(folder: Path) -> list[Path]:
    """What ``predict`` reads directly inside ``folder``: image files and OME-Zarr images (which are folders), less
    the labels of an image + labels stack pair (``stack_labels``)."""
    labels = stack_labels(folder)
    return [path for path in _images_in(folder) if path != labels] + [sub for sub in _subfolders(folder)
                                                                       if is_zarr_dir(sub)]


STACK_LABEL_STEMS = ("labels", "label", "masks", "mask")  # a stack pair's labels: alone, or after "-" / "_"


def stack_labels(folder: Path) -> Path | None:
    """The labels TIFF of a folder holding one image TIFF and one labels TIFF named as such (``train-volume.tif`` +
    ``train-labels.tif``, ``image.tif`` + ``labels.tif``): a dataset, whose labels are never an input to predict.
    Stricter than training's detection: ``GFP_labelled.tif`` or ``cells_masked.tif`` are images to predict."""
    image, labels = _stack_pair(folder)
    if image is None or labels is None:
        return None
    stem = labels.stem.lower()
    named = any(stem == word or stem.endswith((f"-{word}", f"_{word}")) for word in STACK_LABEL_STEMS)
    if named:
        note_once(f"stack labels {labels}", f"{labels} left out: the labels of {image.name} (an image + labels "
                  "dataset folder)")
    return labels if named else None


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _name_list(names: Sequence[str], limit: int = 10) -> str:
    """'a, b, c' listing at most ``limit`` names, then 'and N more'."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: is a file; expected a dataset folder ({_LAYOUT_HELP})")
    return root


def _stack_pair(root: Path) -> tuple[Path | None, Path | None]:
    """(image TIFF, labels TIFF) of an isbi-stack folder; None where absent or ambiguous."""
    tiffs = [p for p in _images_in(root) if p.suffix.lower() in TIFF_EXTENSIONS]
    labels = [p for p in tiffs if any(word in p.stem.lower() for word in LABEL_WORDS)]
    images = [p for p in tiffs if p not in labels]
    return (images[0] if len(images) == 1 else None), (labels[0] if len(labels) == 1 else None)


def detect_layout(root: str | Path) -> str:
    """Name of the layout of dataset folder ``root``: folders | dsb | isbi-stack | images."""
    root = _check_root(root)
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise InputError(f"{root}: the folder is empty; {_LAYOUT_HELP}")
    if (root / "images").is_dir():
        return "folders"
    if any((sub / "images").is_dir() for sub in _subfolders(root)):
        return "dsb"
    image_tiff, label_tiff = _stack_pair(root)
    if image_tiff is not None and label_tiff is not None and tiff_pages(image_tiff) > 1:
        return "isbi-stack"
    if _images_in(root):
        return "images"
    raise InputError(
        f"{root}: no dataset layout recognised (it holds {_name_list(sorted(p.name for p in entries))}); "
        f"{_LAYOUT_HELP}"
    )


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    """Map file stem -> path, refusing two files with the same stem (a.png and a.tif)."""
    mapping: dict[str, Path] = {}
    for path in files:
        stem = image_stem(path)  # a.ome.tif pairs with a.png
        if stem in mapping:
            raise InputError(
                f"{folder}: '{mapping[stem].name}' and '{path.name}' share the name '{stem}'; "
                "images and masks are paired by name, so keep one file per name"
            )
        mapping[stem] = path
    return mapping


def _find_folders(root: Path, image_dir: str, mask_dir: str, require_labels: bool) -> list[Sample]:
    image_root, mask_root = root / image_dir, root / mask_dir
    if not mask_root.is_dir() and (root / "labels").is_dir():
        mask_root = root / "labels"
    has_masks = mask_root.is_dir()
    if not image_root.is_dir():
        raise InputError(f"{root}: no '{image_dir}/' folder; {_LAYOUT_HELP}")
    images = _by_stem(_images_in(image_root), image_root)
    masks = _by_stem(_images_in(mask_root), mask_root) if has_masks else {}
    if not images:
        if masks:
            raise InputError(
                f"{mask_root}: holds {len(masks)} masks but {image_root} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)}); put the images there with the same file names"
            )
        raise InputError(f"{image_root}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if require_labels:
        if not has_masks:
            raise InputError(
                f"{root}: no '{mask_dir}/' or 'labels/' folder next to '{image_dir}/'; training and "
                "evaluation need one mask per image with the same file name"
            )
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        problems = []
        if no_mask:
            problems.append(f"{len(no_mask)} image(s) in {image_root} without a mask: {_name_list(no_mask)}")
        if no_image:
            problems.append(f"{len(no_image)} mask(s) in {mask_root} without an image: {_name_list(no_image)}")
        if problems:
            raise InputError(
                "; ".join(problems) + ". Images and masks are paired by file name without extension"
            )
    return [
        Sample(name=stem, image_path=path, label_paths=(masks[stem],) if stem in masks else ())
        for stem, path in sorted(images.items())
    ]


def _find_dsb(root: Path, require_labels: bool) -> list[Sample]:
    samples = []
    for folder in _subfolders(root):
        image_folder = folder / "images"
        images = _images_in(image_folder) if image_folder.is_dir() else []
        preferred = [p for p in images if p.stem == folder.name]
        if not images:
            raise InputError(
                f"{folder}: no image in {image_folder}; the dsb layout expects <id>/images/<id>.png"
            )
        if len(images) > 1 and not preferred:
            raise InputError(
                f"{image_folder}: {len(images)} images and none named {folder.name}.png; "
                "the dsb layout expects one image per id folder"
            )
        mask_folder = folder / "masks"
        masks = tuple(_images_in(mask_folder)) if mask_folder.is_dir() else ()
        if require_labels and not masks:
            raise InputError(
                f"{folder}: no mask files in {mask_folder}; the dsb layout expects one binary PNG per "
                "nucleus in <id>/masks/ (remove this id folder or add its masks)"
            )
        samples.append(Sample(name=folder.name, image_path=(preferred or images)[0], label_paths=masks))
    if not samples:
        raise InputError(f"{root}: no <id>/images/ folders found ({_LAYOUT_HELP})")
    return samples


def _find_stack(root: Path, require_labels: bool) -> list[Sample]:
    image_tiff, label_tiff = _stack_pair(root)
    if image_tiff is None:
        raise InputError(
            f"{root}: expected exactly one image TIFF and one labels TIFF (name containing "
            f"{' or '.join(LABEL_WORDS)}), e.g. train-volume.tif and train-labels.tif"
        )
    if label_tiff is None and require_labels:
        raise InputError(f"{root}: no labels TIFF (a .tif whose name contains 'label' or 'mask') found")
    n_pages = tiff_pages(image_tiff)
    if label_tiff is not None and tiff_pages(label_tiff) != n_pages:
        raise InputError(
            f"{image_tiff} has {n_pages} pages but {label_tiff} has {tiff_pages(label_tiff)}; "
            "the stacks must have one label page per image page"
        )
    labels = (label_tiff,) if label_tiff is not None else ()
    return [
        Sample(name=f"{image_tiff.stem}_{i:03d}", image_path=image_tiff, label_paths=labels, index=i)
        for i in range(n_pages)
    ]


def find_samples(
    root: str | Path,
    layout: str = "auto",
    image_dir: str = "images",
    mask_dir: str = "masks",
    require_labels: bool = True,
) -> list[Sample]:
    """All samples of the dataset in ``root``, sorted by name.

    ``layout="auto"`` detects it; ``require_labels=False`` accepts images without labels (prediction).
    """
    root = _check_root(root)
    if layout == "auto":
        layout = "folders" if (root / image_dir).is_dir() else detect_layout(root)
    if layout == "folders":
        samples = _find_folders(root, image_dir, mask_dir, require_labels)
    elif layout == "dsb":
        samples = _find_dsb(root, require_labels)
    elif layout == "isbi-stack":
        samples = _find_stack(root, require_labels)
    elif layout == "images":
        if require_labels:
            raise InputError(f"{root}: holds images only, no labels; {_LAYOUT_HELP}")
        samples = [Sample(name=p.stem, image_path=p) for p in _images_in(root)]
        if not samples:
            raise InputError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    else:
        raise InputError(f"unknown dataset layout '{layout}'; choose auto or one of {', '.join(LAYOUTS)}")
    return sorted(samples, key=lambda s: s.name)


def images_left_in_subfolders(inputs: Iterable[str | Path], exclude: Iterable[str | Path] = (),
                              limit: int = 10_000, read: Iterable[str | Path] | None = None) -> tuple[int, list[Path]]:
    """(count, folders) of the image files that ``find_images`` leaves aside in the subfolders of the input folders
    it reads one level of, so that a caller can say so. Not counted: hidden folders, zarr stores, dataset layouts
    (whose subfolders are their own), prediction folders (``prediction.json``) and the folders in ``exclude`` (e.g.
    the output folder); the scan stops after ``limit`` entries. ``read``: the images ``find_images`` gave, when
    the caller has them (predict's rows), so that the inputs are not searched a second time."""
    from unetkit.safety.records import RECORD_NAME

    inputs = list(inputs)
    found = {Path(path).resolve() for path in (find_images(inputs) if read is None else read)}
    skipped = [Path(folder).resolve() for folder in exclude]
    left: set[Path] = set()
    seen = 0

    def walked(folder: Path) -> bool:
        return not (folder.name.startswith(".") or is_zarr_dir(folder) or (folder / RECORD_NAME).is_file()
                    or any(folder.resolve().is_relative_to(other) for other in skipped))

    for item in inputs:
        path = Path(item)
        if not path.is_dir() or is_zarr_dir(path) or (path / "images").is_dir() or not _images_in(path):
            continue
        for sub in filter(walked, _subfolders(path)):
            for root, dirs, files in os.walk(sub):
                dirs[:] = [name for name in sorted(dirs) if walked(Path(root) / name)]  # pruned, not entered
                seen += len(files) + len(dirs)
                left.update(resolved for resolved in (Path(root, name).resolve() for name in files)
                            if _is_image(resolved) and resolved not in found)
                if seen > limit:
                    break
    return len(left), sorted({candidate.parent for candidate in left})


_NPY_HINT = ("; numpy arrays (.npy) are read by `unetkit predict-large`, or in Python: "
             "unetkit.load(MODEL).predict(numpy.load(FILE))")


def expand_patterns(inputs: Iterable[str | Path]) -> list[Path]:
    """Each input, or the sorted matches of one that does not exist and holds a glob wildcard (* ? [)."""
    expanded: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.exists() or not any(c in str(item) for c in "*?["):
            expanded.append(path)
            continue
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise FileNotFoundError(f"input not found: no file matches the pattern {path}")
        expanded.extend(Path(m) for m in matches)
    return expanded


def find_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files for prediction from files and folders, sorted and without duplicates.

    A folder contributes its images and OME-Zarr images (one level), or ``images/`` of a folders-layout dataset, or
    ``<id>/images/*`` of a dsb-layout dataset. A pattern that names no file itself (``"images/*.png"``, quoted
    so that no shell expanded it, or from a script) stands for the files it matches.
    """
    found: set[Path] = set()
    for item in expand_patterns(inputs):
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"input not found: {path}")
        if is_zarr_dir(path):  # an OME-Zarr image is a folder (unetkit.data.ome)
            found.add(path)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise InputError(f"{path}: not an image file; supported: {', '.join(IMAGE_EXTENSIONS)}"
                                 + (_NPY_HINT if path.suffix.lower() == ".npy" else ""))
            found.add(path)
        elif (path / "images").is_dir():
            found.update(_predictable_in(path / "images"))
        elif _predictable_in(path):
            found.update(_predictable_in(path))
        else:
            for sub in _subfolders(path):
                if (sub / "images").is_dir():
                    found.update(_images_in(sub / "images"))
    if not found:
        names = ", ".join(str(Path(i)) for i in inputs)
        arrays = any(Path(i).is_dir() and any(Path(i).glob("*.npy")) for i in inputs)
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {names or 'the inputs'}"
                         + (_NPY_HINT if arrays else ""))
    return sorted(found)


def split_samples(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, val) by a fixed-seed shuffle; each part keeps the input order.

    With 2 or more samples and ``val_fraction > 0`` both parts get at least one sample
    (e.g. 10 samples, 0.15 -> 2 val, 8 train; 3 samples, 0.1 -> 1 val, 2 train).
    """
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(samples)
    if n < 2 or val_fraction == 0:
        return list(samples), []
    n_val = min(max(round(n * val_fraction), 1), n - 1)
    val_index = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    train = [s for i, s in enumerate(samples) if i not in val_index]
    val = [s for i, s in enumerate(samples) if i in val_index]
    return train, val


# --------------------------------------------------------------------------------------------------
# loading


def load_image(sample: Sample, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """The sample's image as ``(C, H, W)`` float32 after per-image percentile normalisation."""
    if sample.index is not None:
        image = read_page(sample.image_path, sample.index)[None]
    else:
        image = read_image(sample.image_path)
    image = apply_nan_policy(image, sample.image_path)  # NaN/Inf pixels: refused or replaced (safety/finite.py)
    return normalize_percentile(image, low, high, name=str(sample.image_path))


def _merge_masks(paths: Sequence[Path], shape: tuple[int, int], image_path: Path) -> np.ndarray:
    """One binary mask per object -> ``(H, W)`` int32 ids 1..N in file order (later masks win)."""
    labels = np.zeros(shape, dtype=np.int32)
    # PNG decoding is the cost (a 603x1272 mask takes ~2 ms, an image may have 375 of them) and Pillow
    # releases the GIL while decoding, so threads read masks in parallel; map keeps the file order.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        masks = pool.map(read_labels, paths)
    for object_id, (path, mask) in enumerate(zip(paths, masks, strict=True), start=1):
        if mask.shape != shape:
            raise InputError(
                f"{path}: mask of shape {mask.shape} but its image {image_path} is {shape}; "
                "every per-object mask must have the image's size"
            )
        labels[mask > 0] = object_id
    return labels


def load_labels(sample: Sample) -> np.ndarray:
    """The sample's labels as ``(H, W)`` int32 (values as stored; dsb masks merged to ids 1..N)."""
    if not sample.label_paths:
        raise InputError(f"{sample.image_path}: sample '{sample.name}' has no label file")
    if len(sample.label_paths) > 1:
        return _merge_masks(sample.label_paths, image_shape(sample.image_path), sample.image_path)
    path = sample.label_paths[0]
    if sample.index is not None:
        page = read_page(path, sample.index, as_shown=False)  # label ids as stored (ImageJ's inverted-LUT masks)
        if not np.issubdtype(page.dtype, np.integer) and page.dtype != bool:
            raise InputError(f"{path}: label page {sample.index} has dtype {page.dtype}; expected integers")
        return page.astype(np.int32)
    return read_labels(path)


def load_sample(sample: Sample, low: float = 1.0, high: float = 99.8) -> tuple[np.ndarray, np.ndarray]:
    """(image ``(C, H, W)`` float32 normalised, labels ``(H, W)`` int32), checked to share H and W."""
    image = load_image(sample, low, high)
    labels = load_labels(sample)
    if image.shape[1:] != labels.shape:
        label_files = ", ".join(str(p) for p in sample.label_paths[:3])
        raise InputError(
            f"size mismatch: image {sample.image_path} is {image.shape[1]}x{image.shape[2]} (H x W) but "
            f"labels {label_files} are {labels.shape[0]}x{labels.shape[1]}; masks must have their image's size"
        )
    return image, labels
