"""Issue 15, case 4: NaN/Inf pixels are named (file, count) and refused, or replaced by --nan-policy,
in training and prediction alike."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.cli import main
from unetkit.errors import InputError
from unetkit.safety.finite import apply_nan_policy


def test_policies_on_a_small_image():
    image = np.array([[[1.0, np.nan, 3.0], [4.0, 5.0, np.inf]]], np.float32)  # (1, 2, 3)
    with pytest.raises(InputError, match=r"x.tif: 2 non-finite pixel value\(s\)"):
        apply_nan_policy(image, "x.tif", "error")
    zero = apply_nan_policy(image, "x.tif", "zero", quiet=True)
    np.testing.assert_array_equal(zero, [[[1, 0, 3], [4, 5, 0]]])
    nearest = apply_nan_policy(image, "x.tif", "nearest", quiet=True)
    # (0, 1) is 1 px from 1, 3 and 5 (ties go to the lowest index: 1); (1, 2) is 1 px from 3 and 5
    assert np.isfinite(nearest).all() and nearest[0, 0, 1] in (1, 3, 5) and nearest[0, 1, 2] in (3, 5)
    integers = np.zeros((1, 2, 2), np.uint8)
    assert apply_nan_policy(integers, "x", "error") is integers


def _float_copy(src_dir, dst_dir, nan_at=(3, 5), inf_block=True):
    """The dataset's images as float32 TIFFs with one NaN pixel (and an Inf block in the first one)."""
    (dst_dir / "images").mkdir(parents=True)
    shutil.copytree(src_dir / "masks", dst_dir / "masks")
    for k, path in enumerate(sorted((src_dir / "images").iterdir())):
        image = np.asarray(Image.open(path), np.float32)
        image[nan_at] = np.nan
        if inf_block and k == 0:
            image[10:14, 10:14] = np.inf
        tifffile.imwrite(dst_dir / "images" / f"{path.stem}.tif", image)
    for mask in (dst_dir / "masks").iterdir():  # masks keep the image names' stems
        assert mask.stem in {p.stem for p in (dst_dir / "images").iterdir()}


def test_predict_refuses_then_replaces_non_finite_pixels(dataset, run_dir, tmp_path, capsys):
    data = tmp_path / "nan"
    _float_copy(dataset / "test", data)
    out = tmp_path / "pred"
    code = main(["predict", "--model", str(run_dir), str(data / "images"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "non-finite" in err and ".tif: " in err and "--nan-policy" in err
    assert len(err.splitlines()) == 1
    clean = tmp_path / "clean"
    assert main(["predict", "--model", str(run_dir), str(dataset / "test" / "images"), "--out", str(clean),
                 "--quiet"]) == 0
    for policy in ("zero", "nearest"):
        out = tmp_path / f"pred_{policy}"
        assert main(["predict", "--model", str(run_dir), str(data / "images"), "--out", str(out), "--quiet",
                     "--nan-policy", policy]) == 0
        assert "replaced 17 non-finite" in capsys.readouterr().err  # 1 NaN + 16 Inf in the first image
        for path in (out / "probabilities").iterdir():
            probs = tifffile.imread(path)
            reference = tifffile.imread(clean / "probabilities" / path.name)
            assert np.isfinite(probs).all()
            # 17 of 4096 pixels replaced: the rest of the image is predicted as without them
            assert np.abs(probs - reference).mean() < 0.02


def test_training_names_the_file_instead_of_blaming_the_learning_rate(dataset, tmp_path, capsys, tiny):
    data = tmp_path / "nan"
    _float_copy(dataset / "train", data)
    run = tmp_path / "run"
    code = main(["train", "--data", str(data), "--val-fraction", "0", "--out", str(run), "--epochs", "1", "--quiet",
                 *tiny])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "non-finite" in err and "learning rate" not in err and "train.lr" not in err
    assert ".tif: " in err and len(err.splitlines()) == 1
    assert main(["train", "--data", str(data), "--val-fraction", "0", "--out", str(run), "--epochs", "1", "--quiet",
                 "--nan-policy", "nearest", *tiny]) == 0
    assert "replaced" in capsys.readouterr().err


def test_predict_large_applies_the_policy(run_dir, tmp_path, capsys):
    image = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    image[5, 5] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, image)
    out = tmp_path / "p.npy"
    assert main(["predict-large", str(path), "--model", str(run_dir), "--out", str(out), "--quiet"]) == 2
    assert "non-finite" in capsys.readouterr().err and not out.exists()
    assert main(["predict-large", str(path), "--model", str(run_dir), "--out", str(out), "--quiet",
                 "--nan-policy", "zero"]) == 0
    assert np.isfinite(np.load(out)).all()


def test_complex_pixels_are_named_not_cast(run_dir, tmp_path, capsys):
    """A complex image (an FFT, a phase map) is refused with its name: a cast to float would keep the real part
    and drop the rest without a word."""
    from unetkit.data.io import read_image

    values = (np.random.default_rng(7).random((32, 32)) + 1j).astype(np.complex64)
    tifffile.imwrite(tmp_path / "phase.tif", values)
    np.save(tmp_path / "phase.npy", values)
    with pytest.raises(InputError, match=r"phase\.tif: complex pixel values \(complex64\)"):
        read_image(tmp_path / "phase.tif")
    for argv in (["predict", "--model", str(run_dir), str(tmp_path / "phase.tif"), "--out", str(tmp_path / "p")],
                 ["predict-large", "--model", str(run_dir), str(tmp_path / "phase.npy"), "--out",
                  str(tmp_path / "p.npy")]):
        assert main([*argv, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "phase." in err and "complex pixel values" in err
    assert not (tmp_path / "p.npy").exists()
