"""Reading and writing images, stacks, volumes and labels (unetkit.data.io)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.data.io import (
    image_shape,
    normalize_percentile,
    read_image,
    read_label_volume,
    read_labels,
    read_page,
    read_stack,
    read_volume,
    write_labels,
    write_png,
    write_tiff,
)
from unetkit.errors import InputError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _ramp(shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
    return (np.arange(np.prod(shape)) % np.iinfo(dtype).max).reshape(shape).astype(dtype)


def _png_16bit_rgb(path: Path, height: int = 4, width: int = 5) -> None:
    """A valid 16-bit RGB PNG written by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(width * 6) for _ in range(height))  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------- read_image


def test_gray_png_8_and_16_bit_keep_values(tmp_path):
    gray8 = _ramp((6, 7))
    gray16 = (_ramp((6, 7), np.uint16) * 1000).astype(np.uint16)  # values beyond 255 must survive
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    out8, out16 = read_image(tmp_path / "g8.png"), read_image(tmp_path / "g16.png")
    assert out8.shape == (1, 6, 7) and out8.dtype == np.uint8
    np.testing.assert_array_equal(out8[0], gray8)
    assert out16.dtype == np.uint16 and out16.max() == gray16.max() > 255
    np.testing.assert_array_equal(out16[0], gray16)


def test_rgb_rgba_and_gray_alpha_pngs(tmp_path):
    rgb = _ramp((5, 6, 3))
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    gray_alpha = np.stack([_ramp((5, 6)), np.full((5, 6), 255, np.uint8)], axis=-1)
    Image.fromarray(gray_alpha, mode="LA").save(tmp_path / "la.png")

    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb.transpose(2, 0, 1))
    gray = read_image(tmp_path / "la.png")
    assert gray.shape == (1, 5, 6)
    np.testing.assert_array_equal(gray[0], gray_alpha[..., 0])


def test_jpeg_reads_as_rgb(tmp_path):
    Image.fromarray(np.full((8, 9, 3), 120, np.uint8)).save(tmp_path / "a.jpg")
    image = read_image(tmp_path / "a.jpg")
    assert image.shape == (3, 8, 9) and image.dtype == np.uint8
    assert abs(int(image.mean()) - 120) <= 2  # lossy, but a flat colour survives


@pytest.mark.parametrize(
    ("shape", "dtype", "kwargs", "to_expected"),
    [
        ((6, 7), np.uint16, {}, lambda a: a[None]),
        ((6, 7, 3), np.uint8, {"photometric": "rgb"}, lambda a: a.transpose(2, 0, 1)),
        (
            (6, 7, 4), np.uint8, {"photometric": "rgb", "extrasamples": ["unassalpha"]},
            lambda a: a[..., :3].transpose(2, 0, 1),  # alpha dropped
        ),
        ((2, 6, 7), np.float32, {"photometric": "minisblack"}, lambda a: a),  # (C, H, W), small C
    ],
)
def test_tiff_layouts(tmp_path, shape, dtype, kwargs, to_expected):
    array = _ramp(shape).astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", array, **kwargs)
    image = read_image(tmp_path / "a.tif")
    assert image.dtype == dtype
    np.testing.assert_array_equal(image, to_expected(array))


def test_multipage_tiff_is_refused_by_read_image_but_read_as_stack(tmp_path):
    stack = _ramp((6, 5, 4))
    tifffile.imwrite(tmp_path / "volume.tif", stack, photometric="minisblack")
    with pytest.raises(InputError, match="read_stack"):
        read_image(tmp_path / "volume.tif")
    np.testing.assert_array_equal(read_stack(tmp_path / "volume.tif"), stack)
    from unetkit.data.axes import Selection, use_selection

    with pytest.raises(InputError, match="choose one page with --axes ZYX --plane N"):
        read_image(tmp_path / "volume.tif")
    with use_selection(Selection.from_values(axes="ZYX", plane=3)):  # the fix it names reads that page
        np.testing.assert_array_equal(read_image(tmp_path / "volume.tif"), stack[3][None])
    np.testing.assert_array_equal(read_page(tmp_path / "volume.tif", 3), stack[3])
    with pytest.raises(InputError, match="page 6"):
        read_page(tmp_path / "volume.tif", 6)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="bad.png.*corrupt"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="bad.tif"):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "a.webp").write_bytes(b"RIFF")
    with pytest.raises(InputError, match=r"a\.webp.*unsupported file type '\.webp'"):
        read_image(tmp_path / "a.webp")
    _png_16bit_rgb(tmp_path / "rgb16.png")
    with pytest.raises(InputError, match="rgb16.png.*16-bit TIFF"):
        read_image(tmp_path / "rgb16.png")


def test_truncated_png_is_an_input_error(tmp_path):
    Image.fromarray(_ramp((64, 64))).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_image_shape_reads_headers(tmp_path):
    Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((7, 5), np.uint16))
    assert image_shape(tmp_path / "a.png") == (6, 9)
    assert image_shape(tmp_path / "b.tif") == (7, 5)


# ---------------------------------------------------------------------------------------------- volumes


def test_read_volume_zyx_zcyx_and_slice_folder(tmp_path):
    zyx = _ramp((4, 5, 6), np.uint16)
    write_tiff(tmp_path / "zyx.tif", zyx)
    np.testing.assert_array_equal(read_volume(tmp_path / "zyx.tif"), zyx[None])

    zcyx = _ramp((4, 2, 5, 6), np.uint16)
    tifffile.imwrite(tmp_path / "zcyx.tif", zcyx, imagej=True, metadata={"axes": "ZCYX"})
    np.testing.assert_array_equal(read_volume(tmp_path / "zcyx.tif"), zcyx.transpose(1, 0, 2, 3))

    folder = tmp_path / "slices"
    folder.mkdir()
    for z in (2, 0, 1):  # written out of order: the reader sorts by name
        Image.fromarray(zyx[z].astype(np.uint8)).save(folder / f"z{z:02d}.png")
    np.testing.assert_array_equal(read_volume(folder), zyx[None].astype(np.uint8)[:, :3])

    with pytest.raises(InputError, match="not a 3D volume"):
        tifffile.imwrite(tmp_path / "flat.tif", np.zeros((5, 6), np.uint8))
        read_volume(tmp_path / "flat.tif")


def test_nifti_needs_nibabel_or_reads(tmp_path):
    path = tmp_path / "scan.nii.gz"
    try:
        import nibabel
    except ImportError:
        path.write_bytes(b"")
        with pytest.raises(InputError, match="nibabel"):
            read_volume(path)
        return
    data = _ramp((6, 5, 4), np.uint16)  # (X, Y, Z)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), str(path))
    np.testing.assert_array_equal(read_volume(path), data.transpose(2, 1, 0)[None])


# ---------------------------------------------------------------------------------------------- labels


def test_read_labels_values_gray_rgb_and_palette(tmp_path):
    ids = np.array([[0, 1, 2], [3, 300, 0]], np.uint16)
    Image.fromarray(ids).save(tmp_path / "ids.png")
    labels = read_labels(tmp_path / "ids.png")
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, ids)

    binary = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(np.stack([binary] * 3, axis=-1)).save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "gray_rgb.png"), binary)  # 0/255 kept

    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "palette.png"), [[0, 1], [2, 1]])


def test_read_labels_refuses_colour_masks_and_fractions(tmp_path):
    colour = np.zeros((3, 3, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="colour.png.*class table"):
        read_labels(tmp_path / "colour.png")
    tifffile.imwrite(tmp_path / "frac.tif", np.array([[0.0, 0.5]], np.float32))
    with pytest.raises(InputError, match="non-integer"):
        read_labels(tmp_path / "frac.tif")


def test_read_label_volume(tmp_path):
    labels = _ramp((3, 4, 5), np.uint16)  # D = 3 must not be mistaken for RGB
    write_labels(tmp_path / "labels.tif", labels)
    volume = read_label_volume(tmp_path / "labels.tif")
    assert volume.dtype == np.int32
    np.testing.assert_array_equal(volume, labels)


# ---------------------------------------------------------------------------------------------- normalise


def test_normalize_percentile_maps_linearly_without_clipping():
    image = np.arange(101, dtype=np.uint8)[None]  # percentile p of 0..100 is p itself
    out = normalize_percentile(image, low=10, high=90)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, [10, 50, 90, 0, 100]], [0.0, 0.5, 1.0, -0.125, 1.125], atol=1e-6)


def test_normalize_percentile_joint_channels_and_constant():
    rgb = np.stack([np.arange(101), 2 * np.arange(101), np.zeros(101)]).astype(np.float32)  # (3, 101)
    out = normalize_percentile(rgb, 0, 100)  # one mapping for all: min 0 -> 0, max 200 -> 1
    np.testing.assert_allclose(out[1], 2 * out[0], atol=1e-6)  # colour ratio kept
    assert out.max() == pytest.approx(1.0)
    flat = normalize_percentile(np.full((1, 4, 4), 7, np.uint16))
    assert not np.isnan(flat).any() and np.all(flat == 0)


def test_normalize_percentile_sparse_image_falls_back_to_min_max():
    sparse = np.zeros((1, 50, 50), np.uint8)
    sparse[0, 0, 0] = 200  # p1 = p99.8 = 0
    out = normalize_percentile(sparse)
    assert out[0, 0, 0] == pytest.approx(1.0) and out[0, 1, 1] == 0


# ---------------------------------------------------------------------------------------------- writing


def test_write_read_round_trips(tmp_path):
    gray16 = (_ramp((9, 8), np.uint16) * 700).astype(np.uint16)
    rgb = _ramp((3, 9, 8))  # channels-first
    write_png(tmp_path / "sub" / "gray16.png", gray16)  # parent folder is created
    write_png(tmp_path / "rgb.png", rgb)
    write_tiff(tmp_path / "float.tif", gray16.astype(np.float32) / 3)
    write_tiff(tmp_path / "chw.tif", rgb)  # (3, H, W) stays channels-first
    np.testing.assert_array_equal(read_image(tmp_path / "sub" / "gray16.png")[0], gray16)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    np.testing.assert_allclose(read_image(tmp_path / "float.tif")[0], gray16.astype(np.float32) / 3)
    np.testing.assert_array_equal(read_image(tmp_path / "chw.tif"), rgb)

    labels = np.array([[0, 1], [65535, 2]], np.int64)
    for name in ("l.tif", "l.png"):
        write_labels(tmp_path / name, labels)
        np.testing.assert_array_equal(read_labels(tmp_path / name), labels)


def test_write_errors(tmp_path):
    with pytest.raises(InputError, match="more than a 16-bit PNG holds"):  # a TIFF takes them as uint32
        write_labels(tmp_path / "big.png", np.array([[70000]]))
    with pytest.raises(InputError, match=r"\.jpg"):
        write_labels(tmp_path / "l.jpg", np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match="uint8 or uint16"):
        write_png(tmp_path / "f.png", np.zeros((2, 2), np.float32))


# ---------------------------------------------------------------------------------------------- real data


def _real(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real dataset not available at {path}")
    return path


def test_real_isbi_and_epfl_slices():
    isbi = read_image(_real("isbi2012/train/images/slice00.png"))
    assert isbi.shape == (1, 512, 512) and isbi.dtype == np.uint8
    epfl = read_image(_real("epfl-hippocampus/train/slices/training0000.png"))  # gray + alpha
    assert epfl.shape == (1, 768, 1024)
    assert epfl.min() < 100  # channel 0 (image), not the constant 255 alpha
    mask = read_labels(_real("isbi2012/train/labels/slice00.png"))
    assert set(np.unique(mask)) == {0, 255}


def test_real_nuclei3d_volume():
    image = read_volume(_real("nuclei3d/image.tif"))
    labels = read_label_volume(_real("nuclei3d/labels.tif"))
    assert image.shape == (1, 31, 61, 57) and image.dtype == np.uint16
    assert labels.shape == (31, 61, 57) and labels.max() > 10


def test_normalisation_keeps_pixels_beside_a_large_offset_and_names_values_past_float32():
    """int32 pixels + 2**30 and float64 1e6 + 0.001 * pixel were rounded to float32 before the percentiles were
    subtracted (19 objects instead of 43); a float64 1e300 among 0..255 became NaN probabilities without a word."""
    from unetkit.data.io import working_dtype

    pixels = np.random.default_rng(0).integers(0, 256, (40, 40))
    reference = normalize_percentile(pixels.astype(np.uint8))
    np.testing.assert_allclose(normalize_percentile(pixels.astype(np.int32) + 2**30), reference, atol=1e-6)
    np.testing.assert_allclose(normalize_percentile(pixels * 1e-3 + 1e6), reference, atol=1e-5)
    assert normalize_percentile(pixels.astype(np.int64) + 2**40).dtype == np.float32
    assert [working_dtype(t) for t in (np.uint8, np.uint16, np.float32, np.int32, np.float64)] == [
        np.float32, np.float32, np.float32, np.float64, np.float64]
    huge = pixels.astype(np.float64)
    huge[0, 0] = 1e300
    with pytest.raises(InputError, match=r"scan\.tif: 1 pixel value\(s\) \(up to 1e\+300\).*exceed float32"):
        normalize_percentile(huge, name="scan.tif")


def test_bmp_and_gif_are_read_and_lossy_masks_are_refused(tmp_path):
    """.bmp and .gif images were left out of train and predict without a word; a JPEG mask (30 values where 2 were
    saved) made nuclei 35 % too large and its grey levels instance ids."""
    from unetkit.data.io import read_labels

    pixels = np.random.default_rng(0).integers(0, 255, (40, 50)).astype(np.uint8)
    for ending in ("bmp", "gif"):
        Image.fromarray(pixels).save(tmp_path / f"a.{ending}")
        np.testing.assert_array_equal(read_image(tmp_path / f"a.{ending}")[0], pixels)
    frames = [Image.fromarray(pixels), Image.fromarray(255 - pixels)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="anim.gif: 2 frames"):
        read_image(tmp_path / "anim.gif")
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "m.jpg", quality=90)
    tifffile.imwrite(tmp_path / "m_jpeg.tif", mask, compression="jpeg")
    tifffile.imwrite(tmp_path / "m_lzw.tif", mask, compression="lzw")
    for name, codec in (("m.jpg", "JPEG"), ("m_jpeg.tif", "JPEG")):
        with pytest.raises(InputError, match=f"{name}: a mask stored with lossy {codec} compression"):
            read_labels(tmp_path / name)
    np.testing.assert_array_equal(read_labels(tmp_path / "m_lzw.tif"), mask)


def test_class_masks_of_instance_ids_keep_every_object():
    """A class folder's mask of ids 1..77 kept only the ids above 38 (the anti-aliasing rule)."""
    from unetkit.data.masks import binary_mask

    ids = np.arange(78).reshape(6, 13)
    assert binary_mask(ids).sum() == 77
    drawn = np.array([0, 10, 127, 128, 255, 255, 255])  # an anti-aliased 0/255 drawing: edges from 128
    assert binary_mask(drawn).tolist() == [False, False, False, True, True, True, True]
    assert binary_mask(np.array([0, 1, 1, 2, 2])).tolist() == [False, True, True, True, True]
    # thin anti-aliased lines (8 px drawn at 4x, resampled down): most of their pixels are blurred edge
    from PIL import ImageDraw

    canvas = Image.new("L", (400, 400), 0)
    for offset in range(0, 400, 50):
        ImageDraw.Draw(canvas).line([(0, offset + 10), (400, offset + 20)], fill=255, width=8)
    small = np.array(canvas.resize((100, 100), Image.BILINEAR))
    assert binary_mask(small).sum() == (small.astype(np.float64) * 2 > small.max()).sum()
    ids = np.zeros((120, 120), np.int32)
    for index, (y, x) in enumerate(np.ndindex(10, 10)):
        ids[y * 12 + 2:y * 12 + 10, x * 12 + 2:x * 12 + 10] = 100 + index  # ids 100..199: a maximum over 128
    assert binary_mask(ids).sum() == np.count_nonzero(ids)


def test_a_tiff_of_several_images_says_which_one_is_read(tmp_path, capsys):
    """Only the first series of a multi-series TIFF or OME-TIFF was read, and the others left out without a word."""
    first = np.random.default_rng(0).integers(0, 255, (24, 24)).astype(np.uint8)
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as writer:
        writer.write(first, metadata={"axes": "YX"})
        writer.write(255 - first, metadata={"axes": "YX"})
    tifffile.imwrite(tmp_path / "one.tif", first)
    np.testing.assert_array_equal(read_image(tmp_path / "two.ome.tif")[0], first)
    read_image(tmp_path / "two.ome.tif")  # named once per file
    read_image(tmp_path / "one.tif")
    err = capsys.readouterr().err
    assert err.count("two.ome.tif holds 2 images (TIFF series); the first is read") == 1 and "one.tif" not in err


def test_a_palette_mask_shown_inverted_is_noted(tmp_path, capsys):
    """A palette PNG mask whose index 0 is white was read by index (foreground and background swapped: Dice 0)
    without a word; indices stay the labels, as label tools write them, and the colours are named."""
    from unetkit.data.io import read_labels

    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    Image.fromarray(mask).convert("RGB").quantize(2).save(tmp_path / "pal.png")  # index 0 = white here
    assert set(np.unique(read_labels(tmp_path / "pal.png"))) == {0, 1}
    assert "index 0 is shown as (255, 255, 255)" in capsys.readouterr().err
    Image.fromarray(mask).convert("P").save(tmp_path / "dark.png")  # index 0 = black: nothing to say
    read_labels(tmp_path / "dark.png")
    assert "palette" not in capsys.readouterr().err


def test_extra_samples_of_unspecified_meaning_are_channels_and_a_varying_alpha_is_noted(tmp_path, capsys, monkeypatch):
    """A (H, W, 5) TIFF of five stains (extra samples 'unspecified') was read as its first channel alone; an alpha
    sample holding data was dropped without a word."""
    from unetkit import notes

    monkeypatch.setattr(notes, "_SAID", set())
    stains = np.random.default_rng(0).integers(0, 4000, (32, 40, 5)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "five.tif", stains, photometric="minisblack", planarconfig="contig")
    np.testing.assert_array_equal(read_image(tmp_path / "five.tif"), np.moveaxis(stains, -1, 0))
    rgba = stains[..., :4].copy()
    tifffile.imwrite(tmp_path / "rgba.tif", rgba)  # tifffile tags the 4th sample as alpha
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.tif"), np.moveaxis(rgba[..., :3], -1, 0))
    assert "rgba.tif: its sample 4 of 4 is tagged as alpha" in capsys.readouterr().err
    rgba[..., 3] = 65535  # an opaque alpha carries nothing: dropped without a note
    tifffile.imwrite(tmp_path / "opaque.tif", rgba)
    assert read_image(tmp_path / "opaque.tif").shape == (3, 32, 40) and capsys.readouterr().err == ""


def test_more_than_65535_objects_are_written_as_uint32_and_a_volume_in_microns(tmp_path, capsys):
    """predict --instances refused 90,000 objects after predicting them ("relabel consecutively", though they were);
    a 3D OME-TIFF in µm crashed in tifffile's ASCII ImageJ description; a pixel of 0.1 nm overflowed a PNG's
    resolution field."""
    from unetkit.data.io import read_labels, write_labels
    from unetkit.data.volumes import VolumeMeta, imagej_unit, read_label_volume, write_label_volume
    from unetkit.inference.ome_writers import write_mask_png

    labels = np.arange(300 * 300, dtype=np.int64).reshape(300, 300)
    write_labels(tmp_path / "many.tif", labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "many.tif"), labels)
    with pytest.raises(InputError, match="more than a 16-bit PNG holds"):
        write_labels(tmp_path / "many.png", labels)
    volume = labels.reshape(4, 150, 150)
    from unetkit.data.volumes import read_volume_file

    for ids, name in ((volume, "wide.tif"), (volume % 1000, "narrow.tif")):  # uint32 (OME) and uint16 (ImageJ)
        write_label_volume(tmp_path / name, ids, VolumeMeta(spacing=(2.0, 0.5, 0.5), unit="µm"))
        np.testing.assert_array_equal(read_label_volume(tmp_path / name), ids)
        meta = read_volume_file(tmp_path / name)[1]
        assert meta.spacing == (2.0, 0.5, 0.5) and meta.unit in ("µm", "micron"), (name, meta)
    assert imagej_unit("µm") == imagej_unit("\u03bcm") == "micron" and imagej_unit("") == "pixel"
    write_mask_png(tmp_path / "tiny.png", np.zeros((4, 4), np.uint8), (1e-4, 1e-4))
    assert Image.open(tmp_path / "tiny.png").size == (4, 4) and "too small for a PNG" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# MINISWHITE TIFFs (0 shown white): images read as shown, labels as stored


def test_a_miniswhite_image_is_read_as_shown(tmp_path):
    """Pillow and Fiji show 255 - stored; read as stored, dark nuclei on white became bright ones."""
    shown = np.array([[0, 10, 200], [255, 3, 128]], np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", 255 - shown, photometric="miniswhite")
    assert np.array_equal(read_image(tmp_path / "m.tif"), shown[None])
    with Image.open(tmp_path / "m.tif") as pillow:  # what the user sees
        assert np.array_equal(np.asarray(pillow), shown)
    deep = np.array([[0, 1000], [65535, 7]], np.uint16)
    tifffile.imwrite(tmp_path / "d.tif", 65535 - deep, photometric="miniswhite")
    assert read_image(tmp_path / "d.tif").dtype == np.uint16
    assert np.array_equal(read_image(tmp_path / "d.tif"), deep[None])
    bits = np.array([[True, False], [False, True]])
    tifffile.imwrite(tmp_path / "b.tif", ~bits, photometric="miniswhite")
    assert np.array_equal(read_image(tmp_path / "b.tif"), bits[None])


def test_a_file_rewritten_with_its_old_size_and_time_is_read_as_it_is_now(tmp_path):
    """The MINISWHITE header is read once per file version; a rewrite of the same size whose modification time was
    put back (cp -p, rsync -t) must still count as a new version."""
    import os

    stored = np.full((8, 9), 200, np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", stored, photometric="miniswhite")
    assert read_image(tmp_path / "m.tif")[0, 0, 0] == 55
    before = os.stat(tmp_path / "m.tif")
    tifffile.imwrite(tmp_path / "m.tif", stored, photometric="minisblack")
    os.utime(tmp_path / "m.tif", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(tmp_path / "m.tif").st_size == before.st_size
    assert read_image(tmp_path / "m.tif")[0, 0, 0] == 200


def test_miniswhite_stacks_volumes_and_axis_files_are_read_as_shown(tmp_path):
    shown = np.arange(6 * 3 * 4, dtype=np.uint8).reshape(6, 3, 4)
    tifffile.imwrite(tmp_path / "s.tif", 255 - shown, photometric="miniswhite")
    assert np.array_equal(read_stack(tmp_path / "s.tif"), shown)
    assert np.array_equal(read_page(tmp_path / "s.tif", 2), shown[2])
    assert np.array_equal(read_page(tmp_path / "s.tif", 2, as_shown=False), 255 - shown[2])
    assert np.array_equal(read_volume(tmp_path / "s.tif"), shown[None])
    tifffile.imwrite(tmp_path / "ij.tif", 255 - shown, photometric="miniswhite", imagej=True,
                     metadata={"axes": "ZYX"})
    assert np.array_equal(read_volume(tmp_path / "ij.tif"), shown[None])
    tifffile.imwrite(tmp_path / "o.ome.tif", 255 - shown[0], photometric="miniswhite")
    assert np.array_equal(read_image(tmp_path / "o.ome.tif"), shown[:1])


def test_miniswhite_labels_keep_their_stored_ids(tmp_path):
    """ImageJ saves a mask shown with an inverting LUT as MINISWHITE, objects still 255: inverted, they would flip."""
    mask = np.zeros((4, 5), np.uint8)
    mask[1:3, 1:4] = 255
    tifffile.imwrite(tmp_path / "mask.tif", mask, photometric="miniswhite")
    assert np.array_equal(read_labels(tmp_path / "mask.tif"), mask.astype(np.int32))
    tifffile.imwrite(tmp_path / "vol.tif", np.stack([mask, mask // 255]), photometric="miniswhite")
    assert np.array_equal(read_label_volume(tmp_path / "vol.tif"), np.stack([mask, mask // 255]))


def test_a_miniswhite_float_image_is_refused(tmp_path):
    """TIFF defines the inversion for unsigned integers only; a guess against the image's maximum is refused."""
    tifffile.imwrite(tmp_path / "f.tif", np.ones((4, 4), np.float32), photometric="miniswhite")
    with pytest.raises(InputError, match=r"f\.tif: a MINISWHITE TIFF .*float32.*minisblack"):
        read_image(tmp_path / "f.tif")
