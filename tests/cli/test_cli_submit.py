"""`unetkit submit`: folder of label images -> Kaggle CSV, JSON summary, clean errors."""

import json

import numpy as np

from unetkit.cli import main


def test_submit_writes_csv_and_json(tmp_path, capsys):
    from unetkit.data.io import write_labels

    labels = np.zeros((6, 5), dtype=np.int32)
    labels[0:2, 0] = 1  # pixels 1, 2 in column-major order
    labels[0, 2] = 4  # pixel 13
    write_labels(tmp_path / "pred" / "abc_labels.png", labels)
    out = tmp_path / "submission.csv"
    assert main(["submit", "--pred", str(tmp_path / "pred"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"out": str(out), "images": 1, "objects": 2, "rows": 2}
    assert out.read_text().splitlines() == ["ImageId,EncodedPixels", "abc,1 2", "abc,13 1"]


def test_submit_missing_folder_is_a_clean_error(tmp_path, capsys):
    assert main(["submit", "--pred", str(tmp_path / "nope"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "prediction folder not found" in capsys.readouterr().err


def test_submit_replaces_only_an_earlier_submission(tmp_path, capsys):
    """--out overwrote any file it named (an image, someone's CSV); now only a .csv and, when it exists, only an
    earlier submission (its header) is replaced."""
    from unetkit.data.io import write_labels

    write_labels(tmp_path / "pred" / "abc.png", np.ones((4, 4), np.int32))
    other = tmp_path / "notes.csv"
    other.write_text("id,comment\n1,keep me\n")
    picture = tmp_path / "a.png"
    picture.write_bytes(b"\x89PNG keep")
    for out, words in ((picture, "name it .csv"), (other, "not an earlier submission")):
        assert main(["submit", "--pred", str(tmp_path / "pred"), "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
    assert other.read_text() == "id,comment\n1,keep me\n" and picture.read_bytes() == b"\x89PNG keep"
    out = tmp_path / "s.csv"
    for _ in range(2):
        assert main(["submit", "--pred", str(tmp_path / "pred"), "--out", str(out)]) == 0
    assert out.read_text().splitlines() == ["ImageId,EncodedPixels", "abc,1 16"]


def test_a_volume_is_named_as_one(tmp_path, capsys):
    """A 3D label TIFF got the 2D reader's hint '--axes ZYX --plane N', which submit does not have."""
    import tifffile

    (tmp_path / "pred").mkdir()
    volume = np.zeros((3, 8, 8), np.uint16)
    volume[0, 1:3, 1:3], volume[1, 4:6, 4:6], volume[2, 0:2, 5:7] = 1, 2, 3  # slices that differ
    tifffile.imwrite(tmp_path / "pred" / "v.tif", volume, photometric="minisblack")
    assert main(["submit", "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "v.tif: a volume of 3 pages; a DSB 2018 submission encodes 2D label images only" in err
    assert "--plane" not in err
