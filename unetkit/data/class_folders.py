"""The ``class-folders`` dataset layout: an image folder plus one folder of binary masks per class.

Example (the EPFL hippocampus annotation)::

    train/slices/training0000.png            the image
    train/mitochondrion/training0000.png     255 = mitochondrion, 0 = not
    train/membranes/training0000.png         ...one folder per class, same file names

Background is implied (pixels in no class mask). The image folder is ``data.image_dir`` when it exists,
else the first of ``IMAGE_FOLDER_NAMES`` found. Classes are ``data.class_names[1:]`` (folder names) when
set, else every other folder holding images, sorted by name. Where class masks overlap, the class first
in ``data.class_priority`` wins (default: class order, see ``unetkit.data.masks.priority_order``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unetkit.data.io import IMAGE_EXTENSIONS, read_labels
from unetkit.data.layouts import Sample
from unetkit.data.masks import merge_class_masks
from unetkit.errors import InputError

IMAGE_FOLDER_NAMES = ("images", "slices", "raw", "image", "imgs")
LABEL_FOLDER_NAMES = ("masks", "labels")  # present: a folders dataset with one mask file per image


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _folders_with_images(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _image_files(p))


def image_folder(root: str | Path, image_dir: str = "images") -> Path | None:
    """The image folder of a class-folders dataset: ``root/image_dir`` or a usual name; None if absent."""
    root = Path(root)
    for name in (image_dir, *IMAGE_FOLDER_NAMES):
        if (root / name).is_dir() and _image_files(root / name):
            return root / name
    return None


def is_class_folders(root: str | Path, image_dir: str = "images") -> bool:
    """True when ``root`` holds an image folder, no masks/ or labels/ folder, and other image folders."""
    root = Path(root)
    if not root.is_dir() or any((root / name).is_dir() for name in LABEL_FOLDER_NAMES):
        return False
    images = image_folder(root, image_dir)
    return images is not None and any(p != images for p in _folders_with_images(root))


def class_folder_names(root: str | Path, image_dir: str = "images",
                       class_names: Sequence[str] = ()) -> list[str]:
    """Class names of a class-folders dataset, background first: ``class_names`` checked against the
    folders, or "background" plus every image folder except the image folder, sorted."""
    root = Path(root)
    images = image_folder(root, image_dir)
    if images is None:
        found = ", ".join(p.name for p in _folders_with_images(root)) if root.is_dir() else ""
        raise InputError(
            f"{root}: no image folder ('{image_dir}/' or one of {', '.join(IMAGE_FOLDER_NAMES)}) for the "
            f"class-folders layout (folders with images: {found or 'none'}); set data.image_dir"
        )
    available = [p.name for p in _folders_with_images(root) if p != images]
    if class_names:
        missing = [name for name in class_names[1:] if name not in available]
        if missing:
            raise InputError(
                f"{root}: no mask folder for class(es) {', '.join(missing)}; class folders found: "
                f"{', '.join(available) or 'none'}. data.class_names lists the background first, then one "
                "folder name per class"
            )
        return list(class_names)
    if not available:
        raise InputError(f"{root}: only the image folder {images.name}/ holds images; add one mask folder "
                         "per class")
    return ["background", *available]


def find_class_folder_samples(
    root: str | Path,
    image_dir: str = "images",
    class_names: Sequence[str] = (),
    require_labels: bool = True,
) -> list[Sample]:
    """Samples of a class-folders dataset: ``label_paths`` holds one mask per class, in class order.

    Every image needs a mask (same file name, any image extension) in every class folder; an image
    whose class is absent needs an all-zero mask, so that a misnamed file cannot pass as "no class".
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    names = class_folder_names(root, image_dir, class_names)
    images = image_folder(root, image_dir)
    masks_by_class = [{p.stem: p for p in _image_files(root / name)} for name in names[1:]]
    samples, problems = [], []
    for path in _image_files(images):
        paths = [masks.get(path.stem) for masks in masks_by_class]
        missing = [name for name, found in zip(names[1:], paths, strict=True) if found is None]
        if missing and require_labels:
            problems.append(f"{path.stem} (no mask in {', '.join(missing)})")
            continue
        samples.append(Sample(name=path.stem, image_path=path,
                              label_paths=tuple(paths) if not missing else ()))
    if problems:
        shown = "; ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(
            f"{root}: {len(problems)} image(s) lack class masks: {shown}. Each class folder needs a mask "
            "with the image's file name (all zeros where the class is absent)"
        )
    return samples


def load_class_folder_labels(sample: Sample, priority: Sequence[int], shape: tuple[int, ...] | None = None
                             ) -> np.ndarray:
    """The class map (H, W) int32 of a class-folders sample: its masks merged by ``priority``
    (class ids highest first). ``shape`` (the image's H, W) is checked when given."""
    masks = []
    for path in sample.label_paths:
        mask = read_labels(path)
        if shape is not None and mask.shape != tuple(shape):
            raise InputError(
                f"{path}: mask of shape {mask.shape} but the image {sample.image_path} is {tuple(shape)}; "
                "class masks must have their image's size"
            )
        masks.append(mask)
    return merge_class_masks(masks, priority)
