"""3D datasets on disk: volume files with their voxel spacing, found, loaded and written back.

A volume is a multi-page TIFF (ZYX, or ZCYX / CZYX when the file names its axes; an unlabelled 4D TIFF
is ZCYX, ImageJ's order), a NIfTI file (``.nii`` / ``.nii.gz``, read with the optional ``nibabel``) or a
folder of 2D slices sorted by name. In memory it is ``(C, D, H, W)`` like every image of the project.

The voxel spacing is read from ImageJ metadata (``spacing`` and the X/Y resolution tags), OME-XML
(``PhysicalSizeX/Y/Z``) or the NIfTI header, kept in a :class:`VolumeMeta`, and written into every
output volume, so predictions open with the input's geometry in Fiji, napari or ITK-SNAP.

Dataset layouts for 3D training (``find_volume_samples``):

- ``root/images/<name>.tif`` (or ``.nii.gz``, or a slice folder ``<name>/``) with
  ``root/masks/<name>.tif`` (or ``root/labels/``), paired by name;
- a single pair of volumes side by side, the labels named with "label" or "mask"
  (e.g. ``image.tif`` + ``labels.tif``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from unetkit.data.components import label_dtype
from unetkit.data.formats import extensions
from unetkit.data.io import (
    IMAGE_EXTENSIONS,
    NIFTI_EXTENSIONS,
    TIFF_EXTENSIONS,
    normalize_percentile,
    read_label_volume,
    read_volume,
    real_pixels,
)
from unetkit.data.layouts import LABEL_WORDS, Sample, expand_patterns, stack_labels
from unetkit.errors import InputError
from unetkit.notes import note_once
from unetkit.safety.atomic import atomic_path
from unetkit.safety.finite import apply_nan_policy
from unetkit.safety.memory import check_fits_in_memory

VOLUME_EXTENSIONS = extensions("volume")  # unetkit.data.formats
WRITE_EXTENSIONS = extensions(name="tiff") + extensions(name="nifti")  # vendor formats are read-only
IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)  # what ImageJ hyperstacks can hold


@dataclass(frozen=True)
class VolumeMeta:
    """Geometry of a volume file that outputs inherit."""

    spacing: tuple[float, float, float] | None = None  # (z, y, x) voxel size; None = the file does not say
    unit: str = ""  # unit of the spacing as the file names it ("um", "micron", "mm"); "" = unknown
    affine: tuple[tuple[float, ...], ...] | None = None  # NIfTI voxel-to-world 4x4 matrix (x, y, z order)


# --------------------------------------------------------------------------------------------------
# names and kinds of files


def volume_stem(path: str | Path) -> str:
    """File name without its volume extension: ``a.nii.gz`` -> ``a``, ``b.tif`` -> ``b``, folder ``c`` -> ``c``."""
    name = Path(path).name
    for ext in (".nii.gz", ".ome.tiff", ".ome.tif", *VOLUME_EXTENSIONS):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _extension(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_nifti(path: Path) -> bool:
    return _extension(path) in NIFTI_EXTENSIONS


def is_volume_file(path: str | Path) -> bool:
    """True for NIfTI files and for TIFFs holding more than one 2D plane (a single 2D image is a slice)."""
    path = Path(path)
    if not path.is_file() or path.name.startswith("."):
        return False
    if _is_nifti(path):
        return True
    if _extension(path) not in TIFF_EXTENSIONS:
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            planes = [n for n, axis in zip(series.shape, series.axes, strict=True) if axis not in "YXS" and n > 1]
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as error:
        raise InputError(f"{path}: cannot read the TIFF ({error}); it may be corrupt") from error
    return len(planes) > 0


def _colour_tagged(path: Path) -> str:
    """A remark for a TIFF whose 3 or 4 planes are tagged as RGB(A) colour samples, as ``tifffile.imwrite`` tags a
    (3, H, W) or (4, H, W) stack: it may be a thin volume, not a colour image; "" otherwise."""
    if _extension(path) not in TIFF_EXTENSIONS:
        return ""
    try:
        with tifffile.TiffFile(path) as tif:
            page, series = tif.pages[0], tif.series[0]
            samples = dict(zip(series.axes, series.shape, strict=True)).get("S", 1)
            colour = page.photometric == tifffile.PHOTOMETRIC.RGB
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError):
        return ""
    if not colour or samples not in (3, 4):
        return ""
    return (f" (its {samples} planes are tagged as RGB colour; tifffile.imwrite tags a stack of 3 or 4 slices so: if "
            "it is a volume, write it with photometric='minisblack')")


def _slice_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _is_slice_folder(folder: Path) -> bool:
    """A folder of 2D image slices (and no volume files): one volume."""
    files = _slice_files(folder)
    return bool(files) and not any(is_volume_file(f) for f in files)


def _volumes_in(folder: Path) -> list[Path]:
    """Volume files and slice folders directly inside ``folder``, sorted by name.

    A 2D image beside volumes is refused by name: it was left out without a word (train and predict went on
    with the volumes), and only a folder holding nothing but 2D images is one volume of slices.
    """
    found = [p for p in folder.iterdir() if is_volume_file(p)]
    if found:
        flat = next((p for p in _slice_files(folder) if p not in found), None)
        if flat is not None:
            raise InputError(f"{flat}: a 2D image among the volumes of {folder}{_colour_tagged(flat)}; a 3D network "
                             "reads volumes (multi-page TIFF, NIfTI) or folders of 2D slices: move it out, or predict "
                             "it with a 2D model")
    found += [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and _is_slice_folder(p)]
    return sorted(found, key=lambda p: p.name)


# --------------------------------------------------------------------------------------------------
# spacing


def _imagej_spacing(tif: tifffile.TiffFile) -> VolumeMeta | None:
    meta = tif.imagej_metadata
    if not meta:
        return None
    x, y = _resolution_spacing(tif.pages[0])
    z = float(meta.get("spacing", 1.0))
    return VolumeMeta(spacing=(z, y or 1.0, x or 1.0), unit=str(meta.get("unit", "")))


def _resolution_spacing(page) -> tuple[float | None, float | None]:
    """(x, y) pixel size from the X/Y resolution tags (pixels per unit), None where absent or zero."""
    out = []
    for tag in ("XResolution", "YResolution"):
        value = page.tags.get(tag)
        if value is None:
            out.append(None)
            continue
        numerator, denominator = value.value
        out.append(denominator / numerator if numerator else None)
    return out[0], out[1]


def _ome_spacing(tif: tifffile.TiffFile) -> VolumeMeta | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    if pixels is None or not any(f"PhysicalSize{a}" in pixels.attrib for a in "XYZ"):
        return None
    size = [float(pixels.attrib.get(f"PhysicalSize{a}", 1.0)) for a in "ZYX"]
    return VolumeMeta(spacing=(size[0], size[1], size[2]), unit=pixels.attrib.get("PhysicalSizeXUnit", "µm"))


def _tiff_meta(path: Path) -> VolumeMeta:
    try:
        with tifffile.TiffFile(path) as tif:
            return _ome_spacing(tif) or _imagej_spacing(tif) or VolumeMeta()
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as error:
        raise InputError(f"{path}: cannot read the TIFF ({error}); it may be corrupt") from error


def _nibabel(path: Path):
    try:
        import nibabel
    except ImportError as error:
        raise InputError(
            f"{path}: NIfTI files need the 'nibabel' package, which is not installed (pip install nibabel); "
            "or convert the volume to a ZYX TIFF"
        ) from error
    return nibabel


def _read_nifti(path: Path) -> tuple[np.ndarray, VolumeMeta]:
    """(C, D, H, W) from a NIfTI file stored as (X, Y, Z[, C]), with its zooms and affine."""
    nibabel = _nibabel(path)
    try:
        image = nibabel.load(str(path))
        itemsize = image.get_data_dtype().itemsize
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{path}: cannot read the NIfTI file ({type(error).__name__}: {error})") from error
    check_fits_in_memory(path, image.shape, itemsize)  # a header can claim any size: checked before reading
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{path}: cannot read the NIfTI file ({type(error).__name__}: {error})") from error
    if data.ndim == 3:
        data = data.transpose(2, 1, 0)[None]
    elif data.ndim == 4:
        data = data.transpose(3, 2, 1, 0)
    else:
        raise InputError(f"{path}: NIfTI of shape {data.shape}; expected 3D (X, Y, Z) or 4D (X, Y, Z, C)")
    x, y, z = (float(v) for v in image.header.get_zooms()[:3])
    unit = image.header.get_xyzt_units()[0]
    affine = tuple(tuple(float(v) for v in row) for row in np.asarray(image.affine))
    return np.ascontiguousarray(data), VolumeMeta((z, y, x), "" if unit == "unknown" else unit, affine)


def read_meta(path: str | Path) -> VolumeMeta:
    """Spacing (and NIfTI affine) of a volume file; an empty VolumeMeta for slice folders and bare TIFFs."""
    path = Path(path)
    if path.is_dir():
        return VolumeMeta()
    if _is_nifti(path):
        return _read_nifti(path)[1]
    from unetkit.data.vendor import is_vendor_file

    if is_vendor_file(path):  # bioio (unetkit[vendor]) reports micrometres
        from unetkit.data.ome import pixel_size

        spacing = pixel_size(path, 3)
        return VolumeMeta(spacing, "um") if spacing else VolumeMeta()
    return _tiff_meta(path)


def volume_voxels(path: str | Path) -> int | None:
    """Voxels of a volume file's spatial axes, from its header only (TIFF: all but channels and time; NIfTI: X, Y,
    Z); None where the header does not say (slice folders, vendor files, unreadable headers)."""
    path = Path(path)
    try:
        if path.is_file() and _is_nifti(path):
            shape = _nibabel(path).load(str(path)).header.get_data_shape()[:3]
            return int(np.prod(shape))
        if path.is_file() and _extension(path) in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return int(np.prod([n for n, axis in zip(series.shape, series.axes, strict=True) if axis not in "CST"]))
    except Exception:  # noqa: BLE001 - an unreadable header: the reader names the problem
        return None
    return None


def read_volume_file(path: str | Path) -> tuple[np.ndarray, VolumeMeta]:
    """A volume ``(C, D, H, W)`` in its native dtype with its :class:`VolumeMeta`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"volume not found: {path}")
    if path.is_file() and _is_nifti(path):
        volume, meta = _read_nifti(path)
        return real_pixels(volume, path), meta
    return read_volume(path), read_meta(path)


# --------------------------------------------------------------------------------------------------
# NIfTI pairs on one voxel grid
#
# A NIfTI file's voxel order is its own (RAS, LPS, ...): the same labels reoriented to LPS are stored flipped in X and
# Y, and compared voxel by voxel with a RAS truth they scored DSB 0.027. A pair of NIfTI files (truth and prediction,
# image and labels) is therefore put in the reference's orientation before it is compared, and refused when the two
# grids still differ (spacing, origin) by more than ``GRID_TOLERANCE`` of a voxel.

GRID_TOLERANCE = 0.01  # fraction of the reference's smallest voxel size that affines may differ by (float32 headers)


def _nifti_affine(path: Path) -> np.ndarray:
    """The voxel-to-world affine of a NIfTI file, from its header (no voxels read)."""
    try:
        return np.asarray(_nibabel(path).load(str(path)).affine, dtype=np.float64)
    except InputError:
        raise
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{path}: cannot read the NIfTI file ({type(error).__name__}: {error})") from error


def reorient_zyx(array: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """``array`` ``(..., Z, Y, X)`` with a nibabel orientation ``transform`` (rows for X, Y, Z) applied: nibabel's
    order is (X, Y, Z), this project's the reverse, so the spatial axes are reversed around it."""
    from nibabel.orientations import apply_orientation  # reached only after a NIfTI file was read with nibabel

    array = np.asarray(array)
    xyz_first = np.moveaxis(array, [-1, -2, -3], [0, 1, 2])  # (X, Y, Z, ...)
    turned = apply_orientation(xyz_first, transform)
    return np.ascontiguousarray(np.moveaxis(turned, [0, 1, 2], [-1, -2, -3]))


def align_nifti(array: np.ndarray, path: str | Path, reference: str | Path, fix: str) -> np.ndarray:
    """``array`` ``(..., Z, Y, X)`` read from ``path``, put on the voxel grid of ``reference`` when both are NIfTI
    files: reoriented to the reference's orientation (noted), InputError naming both and ``fix`` when their grids
    still differ. Anything else is returned as it is (a TIFF has no world coordinates to compare)."""
    path, reference = Path(path), Path(reference)
    if not (path.is_file() and reference.is_file() and _is_nifti(path) and _is_nifti(reference)):
        return array
    nibabel = _nibabel(path)
    affine, target = _nifti_affine(path), _nifti_affine(reference)
    ours, theirs = nibabel.orientations.io_orientation(affine), nibabel.orientations.io_orientation(target)
    transform = nibabel.orientations.ornt_transform(ours, theirs)
    shape_xyz = tuple(reversed(np.shape(array)[-3:]))
    aligned = affine @ nibabel.orientations.inv_ornt_aff(transform, shape_xyz)
    tolerance = GRID_TOLERANCE * float(np.min(np.linalg.norm(target[:3, :3], axis=0)))
    if not np.allclose(aligned, target, rtol=0, atol=tolerance):
        worst = float(np.abs(aligned - target).max())
        raise InputError(f"{path} and {reference}: NIfTI files on different voxel grids (affines differ by up to "
                         f"{worst:.3g} mm after reorientation: spacing or origin); {fix}")
    if np.array_equal(transform, nibabel.orientations.ornt_transform(theirs, theirs)):
        return array
    codes = "".join(nibabel.orientations.ornt2axcodes(ours)), "".join(nibabel.orientations.ornt2axcodes(theirs))
    note_once(f"reoriented {path} {reference}", f"{path}: stored in {codes[0]} orientation, {reference} in "
              f"{codes[1]}; reoriented to {codes[1]} to compare them voxel by voxel")
    return reorient_zyx(array, transform)


# --------------------------------------------------------------------------------------------------
# writing


def _as_cdhw(array: np.ndarray, path: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise InputError(f"{path}: cannot write an array of shape {array.shape} as a volume; expected (D, H, W) "
                     "or (C, D, H, W)")


def write_volume(path: str | Path, array: np.ndarray, meta: VolumeMeta | None = None) -> Path:
    """Write ``(D, H, W)`` or ``(C, D, H, W)`` as a volume with ``meta``'s spacing; creates the folder.

    ``.tif``: an ImageJ hyperstack (ZYX or ZCYX; uint8, uint16 and float32, other dtypes as a plain
    TIFF with the axes named) with the spacing in its resolution tags and ``spacing`` entry.
    ``.nii`` / ``.nii.gz``: NIfTI (needs ``nibabel``) with the input's affine, or one built from the
    spacing.
    """
    path = Path(path)
    meta = meta or VolumeMeta()
    data = _as_cdhw(array, path)
    ext = _extension(path)
    if ext not in WRITE_EXTENSIONS:
        raise InputError(f"{path}: volumes are written as {', '.join(WRITE_EXTENSIONS)}, not '{ext or '(none)'}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in NIFTI_EXTENSIONS:
        _write_nifti(path, data, meta)
        return path
    stack = data[0] if data.shape[0] == 1 else data.transpose(1, 0, 2, 3)  # ZYX or ZCYX
    axes = "ZYX" if data.shape[0] == 1 else "ZCYX"
    if stack.dtype == bool:
        stack = stack.astype(np.uint8)
    kwargs: dict = {}
    if stack.dtype in IMAGEJ_DTYPES:
        kwargs["imagej"] = True
        metadata: dict = {"axes": axes}
        if meta.spacing is not None:
            z, y, x = meta.spacing
            kwargs["resolution"] = (1.0 / x, 1.0 / y)
            metadata.update(spacing=z, unit=imagej_unit(meta.unit))
        kwargs["metadata"] = metadata
    elif meta.spacing is not None:  # uint32 labels and other dtypes ImageJ cannot hold: OME-TIFF keeps the spacing
        z, y, x = meta.spacing
        unit = ome_unit(meta.unit)
        kwargs.update(ome=True, metadata={"axes": axes, "PhysicalSizeZ": z, "PhysicalSizeY": y, "PhysicalSizeX": x,
                                          "PhysicalSizeZUnit": unit, "PhysicalSizeYUnit": unit,
                                          "PhysicalSizeXUnit": unit})
    else:
        kwargs["metadata"] = {"axes": axes}
    with atomic_path(path) as tmp:  # a temporary name, renamed when complete
        tifffile.imwrite(tmp, np.ascontiguousarray(stack), photometric="minisblack", compression="zlib", **kwargs)
    return path


def _write_nifti(path: Path, data: np.ndarray, meta: VolumeMeta) -> None:
    nibabel = _nibabel(path)
    if meta.affine is not None:
        affine = np.asarray(meta.affine, dtype=float)
    else:
        z, y, x = meta.spacing or (1.0, 1.0, 1.0)
        affine = np.diag([x, y, z, 1.0])
    stored = data[0].transpose(2, 1, 0) if data.shape[0] == 1 else data.transpose(3, 2, 1, 0)  # (X, Y, Z[, C])
    image = nibabel.Nifti1Image(np.ascontiguousarray(stored), affine)
    unit = {"\u00b5m": "micron", "mm": "mm", "m": "meter"}.get(ome_unit(meta.unit))  # NIfTI's names for them
    if unit is not None:
        image.header.set_xyzt_units(xyz=unit)
    with atomic_path(path) as tmp:  # .v.nii.gz.<pid>.tmp.nii.gz: nibabel picks the format from the suffix
        nibabel.save(image, str(tmp))


def write_label_volume(path: str | Path, labels: np.ndarray, meta: VolumeMeta | None = None) -> Path:
    """Write integer labels ``(D, H, W)`` as uint16 (uint32 above 65535 objects) with ``meta``'s spacing."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{path}: labels must be an integer (D, H, W) array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint32).max):
        raise InputError(f"{path}: label values range {labels.min()}..{labels.max()}; ids must be 0..{2**32 - 1}")
    return write_volume(path, labels.astype(label_dtype(int(labels.max()) if labels.size else 0)), meta)


def ome_unit(unit: str) -> str:
    """The unit as OME names it (its UnitsLength symbols: µm, nm, mm, m; "pixel" when unknown)."""
    unit = (unit or "").replace("\u03bc", "\u00b5").strip()
    known = {"\u00b5m": "\u00b5m", "um": "\u00b5m", "micron": "\u00b5m", "microns": "\u00b5m",
             "micrometer": "\u00b5m", "nm": "nm", "mm": "mm", "m": "m", "meter": "m"}
    return known.get(unit.lower(), "pixel")


def imagej_unit(unit: str) -> str:
    """The unit as an ImageJ description holds it: ASCII only (ImageJ's own name for µm is "micron")."""
    unit = (unit or "pixel").replace("\u03bc", "\u00b5")
    if unit in ("\u00b5m", "um"):
        return "micron"
    return unit if unit.isascii() else unit.encode("ascii", "backslashreplace").decode()


# --------------------------------------------------------------------------------------------------
# finding datasets and prediction inputs


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    mapping: dict[str, Path] = {}
    for path in paths:
        stem = volume_stem(path)
        if stem in mapping:
            raise InputError(
                f"{folder}: '{mapping[stem].name}' and '{path.name}' share the name '{stem}'; volumes and "
                "their labels are paired by name, so keep one file per name"
            )
        mapping[stem] = path
    return mapping


def _volume_pair(root: Path) -> tuple[Path | None, Path | None]:
    """(image, labels) volumes side by side in ``root`` (labels named with label/mask), None if absent."""
    volumes = [p for p in root.iterdir() if is_volume_file(p)]
    labels = [p for p in volumes if any(word in p.name.lower() for word in LABEL_WORDS)]
    images = [p for p in volumes if p not in labels]
    return (images[0] if len(images) == 1 else None), (labels[0] if len(labels) == 1 else None)


def find_volume_samples(root: str | Path, image_dir: str = "images", mask_dir: str = "masks",
                        require_labels: bool = True) -> list[Sample]:
    """Volume samples of a 3D dataset folder, sorted by name (layouts in the module docstring)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: is a file; expected a folder of volumes")
    help_text = (f"expected '{image_dir}/' with volumes ({', '.join(VOLUME_EXTENSIONS)} or folders of 2D slices) "
                 f"and '{mask_dir}/' or 'labels/' with label volumes of the same names, or one image volume with "
                 "a label volume named '*label*' or '*mask*' next to it")
    image_root = root / image_dir
    if image_root.is_dir():
        images = _by_stem(_volumes_in(image_root), image_root)
        if not images:
            raise InputError(f"{image_root}: no volumes found; {help_text}")
        mask_root = root / mask_dir if (root / mask_dir).is_dir() else root / "labels"
        masks = _by_stem(_volumes_in(mask_root), mask_root) if mask_root.is_dir() else {}
        if require_labels:
            missing = sorted(set(images) - set(masks))
            if missing:
                raise InputError(
                    f"{root}: {len(missing)} volume(s) without labels in {mask_root}: {', '.join(missing[:10])}; "
                    f"{help_text}"
                )
        return [Sample(name=stem, image_path=path, label_paths=(masks[stem],) if stem in masks else ())
                for stem, path in sorted(images.items())]
    image, labels = _volume_pair(root)
    if image is not None and (labels is not None or not require_labels):
        return [Sample(name=volume_stem(image), image_path=image, label_paths=(labels,) if labels else ())]
    if not require_labels:
        volumes = _volumes_in(root)
        if volumes:
            return [Sample(name=volume_stem(p), image_path=p) for p in volumes]
    raise InputError(f"{root}: no 3D dataset recognised; {help_text}")


def find_volumes(inputs: Iterable[str | Path]) -> list[Path]:
    """Volumes to predict from files and folders, sorted, without duplicates.

    A file must be a volume; a folder contributes ``images/`` of a 3D dataset, else its volume files
    and slice folders, else (a folder holding only 2D slices) itself as one volume.
    """
    found: set[Path] = set()
    for item in expand_patterns(inputs):  # "stacks/*.tif", quoted: the files it matches
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"input not found: {path}")
        if path.is_file():
            if not is_volume_file(path):
                raise InputError(
                    f"{path}: not a volume (a 3D network predicts multi-page TIFFs, NIfTI files or folders of "
                    "2D slices)"
                )
            found.add(path)
            continue
        folder = path / "images" if (path / "images").is_dir() else path
        labels = stack_labels(folder)  # image.tif + labels.tif: a dataset, whose labels are not predicted
        volumes = [volume for volume in _volumes_in(folder) if volume != labels]
        if volumes:
            found.update(volumes)
        elif _is_slice_folder(folder):
            found.add(folder)
    if not found:
        names = ", ".join(str(Path(i)) for i in inputs)
        raise InputError(f"no volumes ({', '.join(VOLUME_EXTENSIONS)} or slice folders) found in {names}")
    return sorted(found)


# --------------------------------------------------------------------------------------------------
# loading


def load_volume(path: str | Path, low: float = 1.0, high: float = 99.8) -> tuple[np.ndarray, VolumeMeta]:
    """A volume as ``(C, D, H, W)`` float32 after percentile normalisation of the whole volume, with meta."""
    volume, meta = read_volume_file(path)
    volume = apply_nan_policy(volume, path)  # NaN/Inf voxels: refused or replaced (safety/finite.py)
    return normalize_percentile(volume, low, high, name=str(path)), meta


def load_volume_sample(sample: Sample, low: float = 1.0, high: float = 99.8) -> tuple[np.ndarray, np.ndarray]:
    """(image ``(C, D, H, W)`` float32 normalised, labels ``(D, H, W)`` int32), checked to share D, H, W."""
    image, _ = load_volume(sample.image_path, low, high)
    if not sample.label_paths:
        raise InputError(f"{sample.image_path}: volume '{sample.name}' has no label volume")
    labels = align_nifti(read_label_volume(sample.label_paths[0]), sample.label_paths[0], sample.image_path,
                         "labels must lie on their image's voxel grid: resample them onto it (e.g. "
                         "nibabel.processing.resample_from_to with order=0)")
    if image.shape[1:] != labels.shape:
        raise InputError(
            f"size mismatch: volume {sample.image_path} is {image.shape[1:]} (D, H, W) but its labels "
            f"{sample.label_paths[0]} are {labels.shape}; labels must have the volume's size"
        )
    return image, labels


def middle_slice(array: np.ndarray) -> np.ndarray:
    """The middle z-slice of ``(C, D, H, W)`` -> ``(C, H, W)`` or of ``(D, H, W)`` -> ``(H, W)`` (for pictures)."""
    array = np.asarray(array)
    if array.ndim == 4:
        return array[:, array.shape[1] // 2]
    if array.ndim == 3:
        return array[array.shape[0] // 2]
    raise InputError(f"middle_slice takes (C, D, H, W) or (D, H, W), got shape {array.shape}")
