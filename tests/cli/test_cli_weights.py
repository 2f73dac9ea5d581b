"""`unetkit weights`: foreground masks become cells, outputs are a float32 TIFF and a PNG picture."""

import json

import numpy as np
import tifffile

from unetkit.cli import main
from unetkit.data.io import write_png
from unetkit.data.weightmaps import instance_labels_from_foreground, weight_map


def test_foreground_mask_is_split_into_cells_and_written(tmp_path, capsys):
    mask = np.full((40, 50), 255, np.uint8)
    mask[:, 20:22] = 0  # an ISBI-style membrane between two cells
    mask[25:27, :20] = 0  # and one splitting the left cell: 3 cells
    write_png(tmp_path / "mask.png", mask)
    out = tmp_path / "maps" / "mask_weights.tif"
    code = main(["weights", "--labels", str(tmp_path / "mask.png"), "--out", str(out), "--json"])
    stdout = capsys.readouterr().out
    assert code == 0 and "foreground mask" in stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["cells"] == 3 and summary["picture"].endswith("mask_weights.png")
    written = tifffile.imread(out)
    assert written.dtype == np.float32
    np.testing.assert_array_equal(written, weight_map(instance_labels_from_foreground(mask)))
    assert (tmp_path / "maps" / "mask_weights.png").stat().st_size > 1000


def test_instance_labels_are_used_as_they_are_and_bad_out_name_fails(tmp_path, capsys):
    labels = np.zeros((30, 30), np.uint16)
    labels[5:15, 5:15] = 1
    labels[5:15, 16:26] = 2  # three values: instance labels, no components taken
    labels[20:25, 5:10] = 3
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    out = tmp_path / "w.tif"
    assert main(["weights", "--labels", str(tmp_path / "labels.tif"), "--out", str(out), "--w0", "5"]) == 0
    assert "instance labels as read" in capsys.readouterr().out
    np.testing.assert_array_equal(tifffile.imread(out), weight_map(labels.astype(np.int32), w0=5))
    assert main(["weights", "--labels", str(tmp_path / "labels.tif"), "--out", str(tmp_path / "w.png")]) == 2
    assert ".tif" in capsys.readouterr().err


def test_an_interrupted_picture_leaves_neither_file(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the picture was drawn left the TIFF without its PNG, and a rerun was refused ("exists")."""
    from unetkit.visualize import weights

    mask = np.zeros((30, 30), np.uint8)
    mask[5:15, 5:15] = 255
    write_png(tmp_path / "mask.png", mask)
    argv = ["weights", "--labels", str(tmp_path / "mask.png"), "--out", str(tmp_path / "w.tif")]

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "save_weight_picture", interrupted)
    assert main(argv) != 0
    assert not (tmp_path / "w.tif").exists() and not (tmp_path / "w.png").exists()
    monkeypatch.undo()
    assert main(argv) == 0 and (tmp_path / "w.png").is_file()


def test_two_ids_without_background_stay_two_cells_in_every_command(tmp_path):
    """Two touching objects, ids 1 and 2 with no background, were two objects in evaluate and submit but one in the
    binary task and tune-postprocess (two labelling rules); one rule now serves all."""
    from unetkit.data.components import instance_labels
    from unetkit.data.targets import instance_labels as target_labels
    from unetkit.data.weight_files import write_weight_map

    labels = np.ones((20, 30), np.uint8)
    labels[:, 15:] = 2
    assert target_labels is instance_labels
    assert len(np.unique(instance_labels(labels))) == 2
    write_png(tmp_path / "two.png", labels)
    assert write_weight_map(tmp_path / "two.png", tmp_path / "w.tif")["cells"] == 2
    mask = np.zeros((20, 30), np.uint8)
    mask[2:8, 2:8] = mask[12:18, 12:18] = 255
    assert int(instance_labels(mask).max()) == 2  # a binary mask: its components
