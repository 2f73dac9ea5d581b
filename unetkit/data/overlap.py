"""Validation images that are also training images: the same file, or a copy of it.

A ``--val`` folder that is the training folder (or holds copies of its images) makes every validation
score flatter the model and chooses ``best.pt`` on images it learned; nothing else would tell the user.
Files are compared by path first, then by content where a validation file has the size of a training
file (so a dataset of distinct images is read for no hashing at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unetkit.data.layouts import Sample
from unetkit.pretrained import sha256_of


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def shared_images(train: Sequence[Sample], val: Sequence[Sample]) -> list[Sample]:
    """The validation samples whose image is a training image: the same file (and page), or equal bytes."""
    train_paths = {(s.image_path.resolve(), s.index) for s in train}
    sizes: dict[int, list[Sample]] = {}
    for sample in train:
        sizes.setdefault(_size(sample.image_path), []).append(sample)
    hashes: dict[Path, str] = {}

    def content(path: Path) -> str:
        key = path.resolve()
        if key not in hashes:
            hashes[key] = sha256_of(path)
        return hashes[key]

    shared = []
    for sample in val:
        if (sample.image_path.resolve(), sample.index) in train_paths:
            shared.append(sample)
            continue
        size = _size(sample.image_path)
        same_size = [t for t in sizes.get(size, []) if t.index == sample.index] if size >= 0 else []
        if same_size and any(content(t.image_path) == content(sample.image_path) for t in same_size):
            shared.append(sample)
    return shared


def overlap_note(shared: Sequence[Sample], n_val: int) -> str:
    """One line for the user about ``shared`` (empty when there is none)."""
    if not shared:
        return ""
    names = ", ".join(s.name for s in shared[:3]) + (", ..." if len(shared) > 3 else "")
    return (f"note: {len(shared)} of {n_val} validation images are also training images ({names}): "
            "validation scores will flatter the model and best.pt is chosen on images it learned; "
            "give --val a folder of other images, or leave --val out to split off --val-fraction")
