"""The formats table: every extension list is derived from it."""

from unetkit.data import formats
from unetkit.data.io import IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, TIFF_EXTENSIONS
from unetkit.data.volumes import VOLUME_EXTENSIONS
from unetkit.metrics.folders import PAIR_EXTENSIONS


def test_roles_and_derived_lists():
    assert IMAGE_EXTENSIONS == (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".czi", ".nd2", ".lif")
    assert TIFF_EXTENSIONS == (".tif", ".tiff") and NIFTI_EXTENSIONS == (".nii", ".nii.gz")
    assert VOLUME_EXTENSIONS == (".tif", ".tiff", ".nii", ".nii.gz", ".czi", ".nd2", ".lif")
    assert PAIR_EXTENSIONS == (".png", ".tif", ".tiff", ".bmp", ".gif", ".nii", ".nii.gz")  # and NIfTI volumes
    assert formats.extensions("large") == (".tif", ".tiff", ".npy", ".zarr")


def test_extension_and_format_of_paths():
    assert formats.extension("a/B.NII.GZ") == ".nii.gz" and formats.extension("x.Tiff") == ".tiff"
    assert formats.format_of("slide.zarr") == "zarr" and formats.format_of("v.nii.gz") == "nifti"
    assert formats.format_of("notes.txt") is None and formats.extension("README") == ""
