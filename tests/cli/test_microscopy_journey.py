"""A microscopist's journey: train on 2-channel OME-TIFFs by channel name, predict calibrated outputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetkit.cli import main
from unetkit.data.io import write_labels
from unetkit.data.ome import image_info
from unetkit.data.synthetic import make_nuclei_image

TINY = ["--set", "model.depth=2", "--set", "model.base_channels=4", "--set", "data.patch_size=48",
        "--set", "data.samples_per_epoch=8", "--set", "train.batch_size=4", "--set", "inference.tile_size=64"]
PIXEL = 0.325  # µm


def _write_ome_dataset(folder, n, seed):
    """images/<i>.ome.tif: (2, H, W) uint16, DAPI = nuclei, GFP = noise; labels/<i>.tif the instances."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        nuclei, labels = make_nuclei_image(rng, (64, 72), bit_depth=16)
        noise = rng.integers(100, 200, nuclei.shape).astype(np.uint16)
        data = np.stack([noise, nuclei.astype(np.uint16)])
        (folder / "images").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / "images" / f"cell{i}.ome.tif", data, ome=True, photometric="minisblack",
                         metadata={"axes": "CYX", "PhysicalSizeX": PIXEL, "PhysicalSizeY": PIXEL,
                                   "Channel": {"Name": ["GFP", "DAPI"]}})
        write_labels(folder / "labels" / f"cell{i}.tif", labels)


def test_train_by_channel_name_and_predict_calibrated_outputs(tmp_path, capsys):
    _write_ome_dataset(tmp_path / "train", 3, 0)
    _write_ome_dataset(tmp_path / "test", 1, 1)
    run = tmp_path / "run"
    # the nuclei are in channel "DAPI": the net reads that channel only
    assert main(["train", "--data", str(tmp_path / "train"), "--out", str(run), "--epochs", "1",
                 "--task", "instances", "--channel", "DAPI", "--quiet", *TINY]) == 0
    assert "DAPI" in (run / "config.yaml").read_text()  # the checkpoint remembers the channel
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run), str(tmp_path / "test" / "images"), "--out", str(pred),
                 "--instances", "--quiet"]) == 0
    for name in ("labels/cell0.tif", "probabilities/cell0.tif"):
        info = image_info(pred / name)
        assert info.kind == "ome-tiff" and info.pixel_size == pytest.approx({"X": PIXEL, "Y": PIXEL}), name
    assert image_info(pred / "labels/cell0.tif").axes == "YX"
    with Image.open(pred / "masks" / "cell0.png") as mask:
        assert mask.info["dpi"] == pytest.approx((25400 / PIXEL, 25400 / PIXEL), rel=1e-3)
    with open(pred / "objects" / "cell0.csv") as handle:
        rows = list(csv.DictReader(handle))
    labels = tifffile.imread(pred / "labels" / "cell0.tif")
    raw = tifffile.imread(tmp_path / "test" / "images" / "cell0.ome.tif")[1]  # DAPI, raw uint16 values
    for row in rows[:3]:
        pixels = labels == int(row["id"])
        assert float(row["area_um2"]) == pytest.approx(pixels.sum() * PIXEL**2, rel=1e-5)
        assert float(row["mean_intensity"]) == pytest.approx(raw[pixels].mean(), rel=1e-5)


@pytest.mark.parametrize("argv,message", [
    (["--time", "2"], "no time axis"),
    (["--channel", "mCherry"], "0=GFP, 1=DAPI"),
])
def test_bad_selection_is_one_line_naming_axes(tmp_path, capsys, argv, message):
    _write_ome_dataset(tmp_path / "train", 1, 0)
    code = main(["train", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--quiet", *argv, *TINY])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "axes CYX" in err and "Traceback" not in err
