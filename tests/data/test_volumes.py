"""Volume files: ZYX / ZCYX TIFFs and slice folders, spacing read and written back, 3D dataset layouts."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from unetkit.data.io import write_png
from unetkit.data.volumes import (
    VolumeMeta,
    find_volume_samples,
    find_volumes,
    is_volume_file,
    load_volume_sample,
    middle_slice,
    read_meta,
    read_volume_file,
    volume_stem,
    write_label_volume,
    write_volume,
)
from unetkit.errors import InputError

NUCLEI3D = Path(__file__).resolve().parents[2] / "../shared/data/nuclei3d"


def test_zyx_roundtrip_keeps_spacing_and_dtype(tmp_path):
    volume = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    meta = VolumeMeta(spacing=(2.5, 0.5, 0.25), unit="micron")
    write_volume(tmp_path / "v.tif", volume, meta)
    array, read = read_volume_file(tmp_path / "v.tif")
    assert array.shape == (1, 4, 5, 6) and array.dtype == np.uint16 and np.array_equal(array[0], volume)
    assert read.spacing == pytest.approx((2.5, 0.5, 0.25)) and read.unit == "micron"


def test_zcyx_roundtrip_is_channels_first_in_memory(tmp_path):
    volume = np.random.default_rng(0).random((2, 3, 8, 9)).astype(np.float32)  # (C, D, H, W)
    write_volume(tmp_path / "c.tif", volume, VolumeMeta(spacing=(3.0, 1.0, 1.0)))
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        assert tif.series[0].axes == "ZCYX"  # stored the ImageJ way
    array, meta = read_volume_file(tmp_path / "c.tif")
    assert np.array_equal(array, volume) and meta.spacing == pytest.approx((3.0, 1.0, 1.0))


def test_ome_spacing_and_bare_tiffs(tmp_path):
    tifffile.imwrite(tmp_path / "o.ome.tif", np.zeros((3, 5, 6), np.uint8),
                     photometric="minisblack",
                     metadata={"axes": "ZYX", "PhysicalSizeZ": 4.0, "PhysicalSizeY": 0.3, "PhysicalSizeX": 0.2})
    assert read_meta(tmp_path / "o.ome.tif").spacing == pytest.approx((4.0, 0.3, 0.2))
    assert volume_stem(tmp_path / "o.ome.tif") == "o"
    tifffile.imwrite(tmp_path / "bare.tif", np.zeros((3, 5, 6), np.uint8), photometric="minisblack")
    assert read_meta(tmp_path / "bare.tif").spacing is None


def test_labels_written_as_uint16_with_checks(tmp_path):
    labels = np.zeros((3, 4, 4), np.int32)
    labels[1, 1:3, 1:3] = 7
    write_label_volume(tmp_path / "l.tif", labels, VolumeMeta(spacing=(2.0, 1.0, 1.0)))
    array, meta = read_volume_file(tmp_path / "l.tif")
    assert array.dtype == np.uint16 and np.array_equal(array[0], labels) and meta.spacing[0] == 2.0
    write_label_volume(tmp_path / "big.tif", labels * 10_000)  # past 65535 objects: uint32
    array, _ = read_volume_file(tmp_path / "big.tif")
    assert array.dtype == np.uint32 and array.max() == 70_000
    with pytest.raises(InputError, match="ids must be 0.."):
        write_label_volume(tmp_path / "neg.tif", -labels)
    with pytest.raises(InputError, match="not '.png'"):
        write_volume(tmp_path / "x.png", labels.astype(np.uint8))


def test_nifti_needs_nibabel_or_roundtrips(tmp_path):
    volume = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    meta = VolumeMeta(spacing=(3.0, 0.5, 0.5), unit="mm")
    try:
        import nibabel  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="nibabel"):
            write_volume(tmp_path / "v.nii.gz", volume, meta)
        return
    write_volume(tmp_path / "v.nii.gz", volume, meta)
    array, read = read_volume_file(tmp_path / "v.nii.gz")
    assert np.array_equal(array[0], volume) and read.spacing == pytest.approx((3.0, 0.5, 0.5))
    write_volume(tmp_path / "um.nii.gz", volume, VolumeMeta(spacing=(3.0, 0.5, 0.5), unit="µm"))  # was unit ''
    assert read_volume_file(tmp_path / "um.nii.gz")[1].unit in ("micron", "µm", "um")


def _folder_dataset(root: Path) -> None:
    rng = np.random.default_rng(0)
    write_volume(root / "images" / "a.tif", rng.integers(0, 200, (4, 8, 8), dtype=np.uint16))
    write_label_volume(root / "masks" / "a.tif", np.ones((4, 8, 8), np.int32))
    for z in range(3):  # a volume as a folder of 2D slices, its labels as one TIFF
        write_png(root / "images" / "b" / f"z{z:02d}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    write_label_volume(root / "masks" / "b.tif", np.zeros((3, 8, 8), np.int32))


def test_folder_layout_pairs_volume_files_and_slice_folders(tmp_path):
    _folder_dataset(tmp_path)
    samples = find_volume_samples(tmp_path)
    assert [s.name for s in samples] == ["a", "b"]
    image, labels = load_volume_sample(samples[1])
    assert image.shape == (1, 3, 8, 8) and image.dtype == np.float32 and labels.shape == (3, 8, 8)
    assert find_volumes([tmp_path]) == [tmp_path / "images" / "a.tif", tmp_path / "images" / "b"]
    (tmp_path / "masks" / "b.tif").unlink()
    with pytest.raises(InputError, match="1 volume\\(s\\) without labels.*: b"):
        find_volume_samples(tmp_path)


def test_shape_mismatch_and_non_volume_inputs(tmp_path):
    write_volume(tmp_path / "images" / "a.tif", np.zeros((4, 8, 8), np.uint8))
    write_label_volume(tmp_path / "masks" / "a.tif", np.zeros((4, 8, 9), np.int32))
    with pytest.raises(InputError, match="size mismatch.*\\(4, 8, 8\\).*\\(4, 8, 9\\)"):
        load_volume_sample(find_volume_samples(tmp_path)[0])
    write_png(tmp_path / "flat.png", np.zeros((8, 8), np.uint8))
    assert not is_volume_file(tmp_path / "flat.png")
    with pytest.raises(InputError, match="not a volume"):
        find_volumes([tmp_path / "flat.png"])
    with pytest.raises(InputError, match="no 3D dataset recognised"):
        find_volume_samples(tmp_path / "masks")


def test_middle_slice():
    volume = np.arange(2 * 5 * 3 * 3).reshape(2, 5, 3, 3)
    assert np.array_equal(middle_slice(volume), volume[:, 2])
    assert np.array_equal(middle_slice(volume[0]), volume[0, 2])


def test_nuclei3d_pair_layout():
    if not NUCLEI3D.is_dir():
        pytest.skip(f"{NUCLEI3D} not found (the shared nuclei3d volume is only on the development machine)")
    samples = find_volume_samples(NUCLEI3D)
    assert [(s.image_path.name, s.label_paths[0].name) for s in samples] == [("image.tif", "labels.tif")]
    image, labels = load_volume_sample(samples[0])
    assert image.shape == (1, 31, 61, 57) and labels.shape == (31, 61, 57)
    assert len(np.unique(labels)) - 1 == 51  # instance ids, 0 = background


def test_volume_size_from_the_header_and_nifti_headers_checked_before_reading(tmp_path, monkeypatch):
    """``predict`` sizes a volume from its header (channels left out) to send one too large to predict whole
    to predict-large; a NIfTI header claiming more than half the memory was read whole before."""
    from unetkit.data.volumes import volume_voxels

    write_volume(tmp_path / "c.tif", np.zeros((2, 3, 8, 9), np.float32))  # (C, D, H, W), stored ZCYX
    assert volume_voxels(tmp_path / "c.tif") == 3 * 8 * 9
    (tmp_path / "slices").mkdir()
    assert volume_voxels(tmp_path / "slices") is None and volume_voxels(tmp_path / "missing.tif") is None
    pytest.importorskip("nibabel")  # an optional reader: the TIFF checks above ran either way
    write_volume(tmp_path / "v.nii.gz", np.zeros((4, 6, 8), np.float32))
    assert volume_voxels(tmp_path / "v.nii.gz") == 4 * 6 * 8
    monkeypatch.setattr("unetkit.safety.memory.physical_memory_bytes", lambda: 1024)  # a 1 KiB machine
    with pytest.raises(InputError, match="v.nii.gz: the image needs .* predict-large"):
        read_volume_file(tmp_path / "v.nii.gz")


def test_a_2d_image_among_volumes_is_named_not_left_out(tmp_path):
    """A 3D run on a folder of volumes and one PNG trained on the volumes and dropped the PNG without a word;
    predict said 'predicted 1 image(s)' for a folder of two."""
    import tifffile
    from PIL import Image

    from unetkit.data.volumes import find_volume_samples, find_volumes

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        tifffile.imwrite(tmp_path / sub / "v.tif", np.zeros((4, 8, 8), np.uint8), photometric="minisblack")
    assert [s.name for s in find_volume_samples(tmp_path)] == ["v"]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "flat.png")
    with pytest.raises(InputError, match="flat.png: a 2D image among the volumes"):
        find_volume_samples(tmp_path)
    with pytest.raises(InputError, match="flat.png: a 2D image among the volumes"):
        find_volumes([tmp_path / "images"])
    (tmp_path / "images" / "flat.png").unlink()
    tifffile.imwrite(tmp_path / "images" / "thin.tif", np.zeros((3, 8, 8), np.uint8))  # tagged RGB by tifffile
    with pytest.raises(InputError, match=r"thin.tif: a 2D image .*its 3 planes are tagged as RGB colour.*minisblack"):
        find_volumes([tmp_path / "images"])
    (tmp_path / "images" / "thin.tif").unlink()
    slices = tmp_path / "slices"  # a folder of 2D images alone is one volume of slices
    slices.mkdir()
    for z in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(slices / f"z{z}.png")
    assert find_volumes([slices]) == [slices]


def test_the_labels_of_an_image_and_labels_stack_pair_are_not_predicted(tmp_path):
    """Predicting a folder in the image.tif + labels.tif layout (which trains) predicted the labels as an image."""
    from unetkit.data.layouts import find_images
    from unetkit.data.volumes import find_volumes

    volume = np.random.default_rng(0).integers(0, 255, (4, 16, 16)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "image.tif", volume, photometric="minisblack")
    tifffile.imwrite(tmp_path / "labels.tif", (volume > 128).astype(np.uint8), photometric="minisblack")
    assert find_volumes([tmp_path]) == [tmp_path / "image.tif"]
    assert find_images([tmp_path]) == [tmp_path / "image.tif"]
    assert find_volumes([tmp_path / "labels.tif"]) == [tmp_path / "labels.tif"]  # named as a file: as asked
    other = tmp_path / "fluorescence"
    other.mkdir()
    for name in ("control.tif", "GFP_labelled.tif"):  # "label" inside a word: both are images
        tifffile.imwrite(other / name, volume, photometric="minisblack")
    assert find_images([other]) == [other / "GFP_labelled.tif", other / "control.tif"]


def _nifti_labels(path: Path, affine: np.ndarray) -> np.ndarray:
    """An asymmetric label volume saved as NIfTI (X, Y, Z) with ``affine``; returns it as (Z, Y, X), as read."""
    nibabel = pytest.importorskip("nibabel")
    xyz = np.zeros((6, 5, 4), np.uint8)
    xyz[0:2, 0:3, 1] = 1  # near the origin corner: any flip moves it
    xyz[4:6, 3:5, 2:4] = 2
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(xyz, affine), str(path))
    return xyz.transpose(2, 1, 0)


def test_nifti_labels_in_another_orientation_are_reoriented_to_their_image(tmp_path):
    """Labels saved LPS beside a RAS image were compared voxel by voxel as stored: flipped in X and Y."""
    nibabel = pytest.importorskip("nibabel")
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    expected = _nifti_labels(tmp_path / "images" / "v.nii.gz", affine)  # the image: labels as intensities suffice
    labels = nibabel.load(str(tmp_path / "images" / "v.nii.gz"))
    lps = labels.as_reoriented(nibabel.orientations.axcodes2ornt(("L", "P", "S")))
    (tmp_path / "masks").mkdir()
    nibabel.save(lps, str(tmp_path / "masks" / "v.nii.gz"))
    assert not np.array_equal(np.asarray(lps.dataobj).transpose(2, 1, 0), expected)  # stored flipped
    sample = find_volume_samples(tmp_path)[0]
    _, read = load_volume_sample(sample)
    assert np.array_equal(read, expected)


def test_nifti_labels_on_another_grid_are_refused_naming_both(tmp_path):
    shifted = np.diag([1.0, 1.0, 2.0, 1.0])
    _nifti_labels(tmp_path / "images" / "v.nii.gz", np.diag([1.0, 1.0, 2.0, 1.0]))
    shifted[0, 3] = 3.0  # origin 3 mm (3 voxels) away
    _nifti_labels(tmp_path / "masks" / "v.nii.gz", shifted)
    with pytest.raises(InputError, match=r"masks/v\.nii\.gz and .*images/v\.nii\.gz: NIfTI files on different voxel "
                                         r"grids .*resample"):
        load_volume_sample(find_volume_samples(tmp_path)[0])
