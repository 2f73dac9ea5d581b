"""Folder evaluation: pairing rules and per-task results on small folders with known answers."""

from pathlib import Path

import numpy as np
import pytest

from unetkit.data.io import write_labels, write_png, write_tiff
from unetkit.errors import InputError
from unetkit.metrics.folders import (
    evaluate_binary,
    evaluate_instances,
    evaluate_multiclass,
    evaluate_regression,
    pair_files,
)
from unetkit.metrics.writers import write_confusion_matrix, write_rows_csv

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def binary_case(root: Path) -> tuple[Path, Path]:
    """truth a: left half (32 px), b: 4x4 square; pred a exact, b the square's left half (8 px)."""
    truth, pred = root / "truth", root / "pred"
    a = np.zeros((8, 8), np.uint8)
    a[:, :4] = 255
    b = np.zeros((8, 8), np.uint8)
    b[2:6, 2:6] = 255
    b_pred = np.zeros((8, 8), np.uint8)
    b_pred[2:6, 2:4] = 1
    write_png(truth / "a.png", a)
    write_png(truth / "b.png", b)
    write_png(pred / "a_mask.png", a)
    write_png(pred / "b_mask.png", b_pred)
    write_png(pred / "a_overlay.png", a)  # ignored
    (pred / "notes.csv").write_text("ignored\n")
    return truth, pred


def test_pair_files_strips_known_suffixes(tmp_path):
    truth, pred = binary_case(tmp_path)
    pairs = pair_files(truth, pred)
    found = [(n, t.name, p.name) for n, t, p in pairs]
    assert found == [("a", "a.png", "a_mask.png"), ("b", "b.png", "b_mask.png")]


def test_missing_and_extra_predictions_are_named(tmp_path):
    truth, pred = binary_case(tmp_path)
    (pred / "b_mask.png").unlink()
    with pytest.raises(InputError, match=r"1 truth image\(s\) without a prediction .*: b\.png"):
        pair_files(truth, pred)
    write_png(pred / "b_mask.png", np.zeros((8, 8), np.uint8))
    write_png(pred / "zz.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"without a truth image .*: zz\.png"):
        pair_files(truth, pred)
    with pytest.raises(FileNotFoundError):
        pair_files(truth, tmp_path / "nowhere")
    # a predict folder holds an extra image's mask and probabilities: one image, named once
    folder = tmp_path / "predicted"
    for name in ("a", "b", "c"):
        write_png(folder / "masks" / f"{name}.png", np.zeros((8, 8), np.uint8))
        write_tiff(folder / "probabilities" / f"{name}.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(InputError, match=r"predictions of 1 image\(s\) without a truth image .*: c\.(png|tif)\. "):
        pair_files(truth, folder)


def test_a_colour_prediction_is_named_but_an_rgb_mask_with_equal_channels_is_read(tmp_path):
    truth, pred = binary_case(tmp_path)
    a = np.zeros((8, 8), np.uint8)
    a[:, :4] = 255
    write_png(pred / "a_mask.png", np.stack([a, a, a], axis=-1))  # a mask saved as RGB: the same numbers
    assert evaluate_binary(truth, pred).rows[0]["dice"] == 1.0
    picture = np.stack([a, a // 2, np.full_like(a, 30)], axis=-1)  # a coloured picture (an overlay)
    write_png(pred / "a_mask.png", picture)
    with pytest.raises(InputError, match=r"a_mask\.png: a colour image .* masks/, probabilities/ and labels/"):
        evaluate_binary(truth, pred)


def test_a_colour_picture_is_not_scored_as_instances(tmp_path):
    truth = np.zeros((8, 8), np.uint8)
    truth[1:4, 1:4], truth[5:8, 5:8] = 1, 2
    write_png(tmp_path / "truth" / "a.png", truth)
    picture = np.zeros((8, 8, 3), np.uint8)  # predict's instances/ picture: each object its own colour
    picture[1:4, 1:4], picture[5:8, 5:8] = (255, 0, 0), (0, 255, 0)
    write_png(tmp_path / "pred" / "a.png", picture)
    with pytest.raises(InputError, match=r"a\.png: colour-coded mask"):
        evaluate_instances(tmp_path / "truth", tmp_path / "pred")
    write_png(tmp_path / "pred" / "a.png", np.stack([truth] * 3, axis=-1))  # labels saved as RGB: read
    assert evaluate_instances(tmp_path / "truth", tmp_path / "pred").rows[0]["ap50"] == 1.0


def test_evaluate_binary_by_hand(tmp_path):
    result = evaluate_binary(*binary_case(tmp_path))
    a, b = result.rows
    assert a["name"] == "a" and a["dice"] == 1.0 and a["rand_error"] == 0.0 and a["pixel_error"] == 0.0
    # b: tp 8, fp 0, fn 8: Dice 16/24, IoU 8/16, precision 1, recall 0.5, pixel error 8/64
    assert (b["dice"], b["iou"], b["precision"], b["recall"], b["pixel_error"]) == pytest.approx(
        (2 / 3, 0.5, 1.0, 0.5, 0.125))
    # Rand: n = [8 in the pred object, 8 pred background pixels of one each] -> 56; a = [16] -> 240; b -> 56;
    # error = 1 - 56 / (120 + 28) = 23/37
    assert b["rand_error"] == pytest.approx(23 / 37)
    summary = result.summary
    assert summary["images"] == 2 and summary["dice"] == pytest.approx(5 / 6)
    assert summary["rand_error"] == pytest.approx(23 / 74) and "rand_error_best" not in summary


def two_cells(root: Path, mask_threshold: float) -> Path:
    """Truth: two 4x2 cells with a gap column; prob 0.9 on cells, 0.5 in the gap; returns truth dir."""
    truth = np.zeros((4, 5), np.uint8)
    truth[:, [0, 1, 3, 4]] = 255
    prob = np.where(truth > 0, 0.9, 0.5).astype(np.float32)
    write_png(root / "truth" / "a.png", truth)
    write_png(root / "run" / "masks" / "a.png", (prob > mask_threshold).astype(np.uint8) * 255)
    write_tiff(root / "run" / "probabilities" / "a.tif", prob)
    write_png(root / "run" / "overlays" / "a.png", np.zeros((4, 5, 3), np.uint8))  # ignored folder
    return root / "truth"


def test_binary_reads_predict_output_folders(tmp_path):
    truth = two_cells(tmp_path, mask_threshold=0.3)  # the mask merges the cells through the gap
    row = evaluate_binary(truth, tmp_path / "run").rows[0]
    # mask: gap predicted (truth background, so Dice counts it as FP): tp 16, fp 4 -> Dice 32/36
    assert row["dice"] == pytest.approx(32 / 36)
    # merged cells: n = [8, 8] -> 112; a = [8, 8] -> 112; b = [16] -> 240; 1 - 112/176 = 4/11
    assert row["rand_error"] == pytest.approx(4 / 11)
    # the probability map separates the cells from threshold 0.55 on (prob 0.5 in the gap)
    assert row["rand_error_best"] == 0.0 and row["rand_error_best_threshold"] == pytest.approx(0.55)


def test_isbi_errors_of_masks_with_probabilities_beside_them_are_not_called_mask_scores(tmp_path):
    """The ISBI errors swept the probabilities/ file beside each mask, but the summary said 0 probability maps and
    a note called the scores those of masks, "their thresholds 0"."""
    from unetkit.metrics.folders import evaluation_notes

    truth = two_cells(tmp_path, mask_threshold=0.3)
    result = evaluate_binary(truth, tmp_path / "run")
    assert result.summary["probability_maps"] == 0 and result.summary["probability_maps_swept"] == 1
    assert result.summary["rand_error_original_threshold"] > 0  # a threshold of the map, as the challenge sweeps
    assert not any("these predictions are masks" in note for note in evaluation_notes(result.summary, {}))
    masks_only = evaluate_binary(truth, tmp_path / "run" / "masks")
    assert masks_only.summary["probability_maps_swept"] == 0
    assert any("these predictions are masks" in note for note in evaluation_notes(masks_only.summary, {}))


def test_binary_probability_predictions(tmp_path):
    truth = two_cells(tmp_path, mask_threshold=0.3)
    pred = tmp_path / "probs"
    write_tiff(pred / "a.tif", np.where(np.arange(5) == 2, 0.5, 0.9).astype(np.float32)[None].repeat(4, 0))
    result = evaluate_binary(truth, pred, threshold=0.5)  # 0.5 > 0.5 is false: cells separate
    assert result.summary["dice"] == 1.0 and result.summary["rand_error"] == 0.0
    assert result.summary["rand_error_best_threshold"] == pytest.approx(0.55)
    assert evaluate_binary(truth, pred, threshold=0.45).summary["rand_error"] == pytest.approx(4 / 11)
    write_tiff(pred / "a.tif", np.full((4, 5), 3.0, np.float32))
    with pytest.raises(InputError, match="not probabilities"):
        evaluate_binary(truth, pred)


def test_shape_mismatch_names_both_files(tmp_path):
    truth, pred = binary_case(tmp_path)
    write_png(pred / "b_mask.png", np.zeros((8, 9), np.uint8))
    with pytest.raises(InputError, match=r"b_mask\.png.*\(8, 9\).*b\.png"):
        evaluate_binary(truth, pred)


def square(shape, r, c, size=10, value=255):
    mask = np.zeros(shape, np.uint8)
    mask[r : r + size, c : c + size] = value
    return mask


def test_evaluate_instances_with_dsb_truth(tmp_path):
    root = tmp_path / "dsb"
    write_png(root / "id1" / "images" / "id1.png", np.zeros((30, 30, 3), np.uint8))
    write_png(root / "id1" / "masks" / "m1.png", square((30, 30), 2, 2))
    write_png(root / "id1" / "masks" / "m2.png", square((30, 30), 15, 15))
    labels = np.zeros((30, 30), np.int32)
    labels[2:12, 2:12] = 7  # exact: a hit at every threshold
    labels[15:25, 17:27] = 9  # shifted 2 px: IoU 80/120, hits at 0.5 .. 0.65
    write_labels(tmp_path / "pred" / "labels" / "id1.tif", labels)
    result = evaluate_instances(root, tmp_path / "pred")
    # per threshold TP/(TP+FP+FN): 2/2 at 0.5..0.65 (4 thresholds), 1/3 at 0.7..0.95 (6): (4 + 2) / 10
    assert result.rows[0]["dsb_score"] == pytest.approx(0.6)
    assert result.rows[0]["n_true"] == 2 and result.rows[0]["n_pred"] == 2
    assert result.summary == pytest.approx(
        {"images": 1, "dsb_score": 0.6, "ap50": 1.0, "precision50": 1.0, "recall50": 1.0, "f1_50": 1.0})


def test_instances_split_binary_masks_into_objects(tmp_path):
    two = square((30, 30), 2, 2) | square((30, 30), 15, 15)  # one value (255), two objects
    write_png(tmp_path / "truth" / "a.png", two)
    write_png(tmp_path / "pred" / "a_mask.png", (two > 0).astype(np.uint8))
    result = evaluate_instances(tmp_path / "truth", tmp_path / "pred")
    assert result.rows[0]["n_true"] == 2 and result.rows[0]["n_pred"] == 2
    assert result.summary["dsb_score"] == 1.0


def test_evaluate_multiclass_pools_counts(tmp_path):
    write_png(tmp_path / "truth" / "a.png", np.array([[0, 1, 1], [2, 2, 255]], np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.array([[0, 1, 2], [2, 1, 0]], np.uint8))
    write_png(tmp_path / "truth" / "b.png", np.array([[0, 1], [2, 0]], np.uint8))
    write_png(tmp_path / "pred" / "b.png", np.array([[0, 1], [2, 0]], np.uint8))
    result = evaluate_multiclass(tmp_path / "truth", tmp_path / "pred", num_classes=3,
                                 class_names=["bg", "cell", "edge"])
    # pooled: a gives [[1,0,0],[0,1,1],[0,1,1]], b adds 2, 1, 1 on the diagonal
    assert result.summary["confusion_matrix"] == [[3, 0, 0], [0, 2, 1], [0, 1, 2]]
    # class 1: TP 2, FP 1, FN 1 -> Dice 4/6, IoU 2/4; class 2 alike
    assert result.summary["per_class_dice"] == pytest.approx([1.0, 2 / 3, 2 / 3])
    assert result.summary["mean_iou"] == pytest.approx(0.5)
    assert result.rows[0]["dice_cell"] == pytest.approx(0.5) and result.rows[1]["mean_dice"] == 1.0
    assert "mean_dice_ci95" not in result.summary  # 2 images: too few for an interval
    with pytest.raises(InputError, match="class names"):
        evaluate_multiclass(tmp_path / "truth", tmp_path / "pred", num_classes=3, class_names=["a"])
    with pytest.raises(InputError, match=r"class ids \[2\]"):
        evaluate_multiclass(tmp_path / "truth", tmp_path / "pred", num_classes=2)


def test_evaluate_multiclass_gives_the_interval_of_its_pooled_mean_dice(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(12):
        truth = rng.integers(0, 3, (8, 8)).astype(np.uint8)
        pred = np.where(rng.random((8, 8)) < 0.2 + 0.05 * index, (truth + 1) % 3, truth).astype(np.uint8)
        write_png(tmp_path / "truth" / f"im{index:02d}.png", truth)
        write_png(tmp_path / "pred" / f"im{index:02d}.png", pred)
    summary = evaluate_multiclass(tmp_path / "truth", tmp_path / "pred", num_classes=3).summary
    low, high = summary["mean_dice_ci95"]
    assert low < summary["mean_dice"] < high and high - low < 0.3


def test_write_confusion_matrix_and_rows(tmp_path):
    csv_path, png_path = write_confusion_matrix(np.array([[3, 1], [0, 2]]), ["bg", "cell"],
                                                tmp_path / "cm.csv", tmp_path / "cm.png")
    assert csv_path.read_text().splitlines() == ["truth \\ prediction,bg,cell", "bg,3,1", "cell,0,2"]
    assert png_path.read_bytes()[:4] == b"\x89PNG"
    # 300 classes: a 32,000 px figure with 90,000 cell labels took all memory; now a picture of bounded size
    many = np.diag(np.arange(1, 301))
    _, big = write_confusion_matrix(many, [f"c{k}" for k in range(300)], tmp_path / "m.csv", tmp_path / "m.png")
    from PIL import Image

    assert max(Image.open(big).size) < 4000
    path = write_rows_csv([{"name": "a", "dice": 0.5}, {"name": "b", "dice": 1.0, "extra": 2}],
                          tmp_path / "out" / "rows.csv")
    assert path.read_text().splitlines() == ["name,dice,extra", "a,0.5,", "b,1.0,2"]


def test_evaluate_regression(tmp_path):
    truth = (np.arange(64, dtype=np.float32).reshape(8, 8) / 63).astype(np.float32)
    write_tiff(tmp_path / "truth" / "a.tif", truth)
    write_tiff(tmp_path / "pred" / "a_pred.tif", truth + np.float32(0.1))
    result = evaluate_regression(tmp_path / "truth", tmp_path / "pred")
    # error 0.1 everywhere: MAE = RMSE = 0.1; range 1: PSNR 10 log10(1 / 0.01) = 20 dB
    assert result.summary["mae"] == pytest.approx(0.1, abs=1e-6)
    assert result.summary["psnr"] == pytest.approx(20.0, abs=1e-4)
    assert 0.9 < result.summary["ssim"] <= 1.0


def test_isbi_labels_against_themselves(tmp_path):
    import shutil

    labels = DATA / "isbi2012" / "train" / "labels"
    if not labels.is_dir():
        pytest.skip(f"real data not found at {labels} (the shared data folder is absent)")
    copy = shutil.copytree(labels, tmp_path / "copy")  # the same files as truth and prediction are refused
    summary = evaluate_binary(labels, copy).summary
    assert summary["images"] == 25 and summary["dice"] == 1.0 and summary["rand_error"] == 0.0


def test_volumes_are_evaluated_in_3d(tmp_path):
    truth = np.zeros((6, 12, 12), np.int32)
    truth[1:5, 1:5, 1:5] = 1
    pred = np.zeros_like(truth)
    pred[2:6, 1:5, 1:5] = 3  # cube shifted 1 in z: IoU 48/80 = 0.6, hits at 0.5 and 0.55
    write_labels(tmp_path / "truth" / "v.tif", truth)
    write_labels(tmp_path / "pred" / "v_labels.tif", pred)
    instances = evaluate_instances(tmp_path / "truth", tmp_path / "pred")
    assert instances.summary["dsb_score"] == pytest.approx(0.2)
    # binary: tp 48, fp 16, fn 16 -> Dice 96/128
    assert evaluate_binary(tmp_path / "truth", tmp_path / "pred").summary["dice"] == pytest.approx(0.75)


def test_volumes_of_few_slices_are_not_read_as_channels(tmp_path):
    """A 3-slice probability volume was read as 3 channels and refused; its truth was a volume."""
    truth = np.zeros((3, 10, 10), np.uint8)
    truth[0, 2:6, 2:6] = 1
    truth[1, 3:7, 3:7] = 1  # slices differ: a volume, not an equal-page mask
    prob = np.where(truth > 0, 0.9, 0.1).astype(np.float32)
    prob[2, 0, 0] = 0.8  # one false positive voxel on the last slice
    write_tiff(tmp_path / "truth" / "v.tif", truth)
    write_tiff(tmp_path / "pred" / "v.tif", prob)
    scores = evaluate_binary(tmp_path / "truth", tmp_path / "pred").summary
    assert scores["dice"] == pytest.approx(2 * 32 / (2 * 32 + 1)) and scores["probability_maps"] == 1
    labels = truth.astype(np.int32) * np.array([1, 2, 3], np.int32)[:, None, None]  # a different id per slice
    write_labels(tmp_path / "ti" / "v.tif", truth.astype(np.int32))
    write_labels(tmp_path / "pi" / "v_labels.tif", labels)
    assert evaluate_instances(tmp_path / "ti", tmp_path / "pi").summary["dsb_score"] == pytest.approx(0.0)


def test_nifti_predictions_pair_with_their_truth(tmp_path):
    """predict writes NIfTI outputs for NIfTI inputs; evaluate found 'no prediction images' among them."""
    pytest.importorskip("nibabel")
    from unetkit.data.volumes import write_label_volume
    from unetkit.metrics.folders import evaluate_instances

    labels = np.zeros((4, 10, 12), np.int32)
    labels[1:3, 2:5, 2:6] = 1
    labels[1:3, 6:9, 7:11] = 2
    write_label_volume(tmp_path / "truth" / "v.tif", labels)
    write_label_volume(tmp_path / "pred" / "labels" / "v.nii.gz", labels)
    pairs = pair_files(tmp_path / "truth", tmp_path / "pred", ("_labels",))
    assert [(name, pred.name) for name, _, pred in pairs] == [("v", "v.nii.gz")]
    assert evaluate_instances(tmp_path / "truth", tmp_path / "pred").summary["dsb_score"] == 1.0
    write_label_volume(tmp_path / "niftitruth" / "v.nii.gz", labels)  # a truth folder of NIfTI files alone
    assert evaluate_instances(tmp_path / "niftitruth", tmp_path / "pred").summary["dsb_score"] == 1.0


def test_ome_tiff_truth_pairs_with_the_prediction_predict_names_without_ome(tmp_path):
    """predict writes slice03.tif for slice03.ome.tif; evaluate paired 'slice03.ome' with nothing."""
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 255
    write_tiff(tmp_path / "truth" / "slice03.ome.tif", truth)
    write_tiff(tmp_path / "pred" / "masks" / "slice03.tif", truth)
    pairs = pair_files(tmp_path / "truth", tmp_path / "pred", ("_mask",))
    assert [(name, t.name, p.name) for name, t, p in pairs] == [("slice03", "slice03.ome.tif", "slice03.tif")]
    assert evaluate_binary(tmp_path / "truth", tmp_path / "pred").summary["dice"] == 1.0


def test_jpeg_truth_is_named_not_left_out(tmp_path):
    """A .jpg truth mask was not paired and left out without a word (Dice 1.0 over the other images)."""
    from PIL import Image

    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 255
    write_png(tmp_path / "truth" / "a.png", mask)
    Image.fromarray(mask).save(tmp_path / "truth" / "b.jpg")
    write_png(tmp_path / "pred" / "a.png", mask)
    with pytest.raises(InputError, match="b.jpg: a mask stored with lossy JPEG"):
        evaluate_binary(tmp_path / "truth", tmp_path / "pred")


def test_label_suffix_pairs_like_labels(tmp_path):
    """submit strips '_label' from names, evaluate did not: 'a_label.tif' stayed unpaired with truth 'a.png'."""
    from unetkit.metrics.folders import evaluate_instances

    labels = np.zeros((12, 12), np.uint16)
    labels[2:6, 2:6], labels[7:11, 7:11] = 1, 2
    write_png(tmp_path / "truth" / "a.png", labels.astype(np.uint8))
    write_tiff(tmp_path / "pred" / "a_label.tif", labels)
    assert evaluate_instances(tmp_path / "truth", tmp_path / "pred").summary["dsb_score"] == 1.0


def test_masks_scored_with_the_isbi_metrics_are_noted():
    """0/255 masks reported ISBI thresholds of 0.0 and 'original' errors above those of the probabilities, with
    nothing to say why."""
    from unetkit.metrics.folders import evaluation_notes

    masks = {"probability_maps": 0, "probability_maps_swept": 0, "rand_error_original": 0.07}
    assert any("these predictions are masks" in note for note in evaluation_notes(masks, {}))
    probabilities = {"probability_maps": 3, "probability_maps_swept": 3, "rand_error_original": 0.05}
    assert not any("these predictions are masks" in note for note in evaluation_notes(probabilities, {}))


def _ras_truth_and_lps_prediction(root: Path, shift_mm: float = 0.0) -> None:
    """truth/v.nii.gz in RAS; pred/labels/v.nii.gz the same labels reoriented to LPS (origin moved by ``shift_mm``)."""
    nibabel = pytest.importorskip("nibabel")
    xyz = np.zeros((8, 7, 5), np.int16)
    xyz[0:3, 0:2, 1:3] = 1
    xyz[5:8, 4:7, 2:5] = 2
    xyz[1:4, 4:6, 0:2] = 3
    truth = nibabel.Nifti1Image(xyz, np.diag([0.5, 0.5, 2.0, 1.0]))
    (root / "truth").mkdir()
    (root / "pred" / "labels").mkdir(parents=True)
    nibabel.save(truth, str(root / "truth" / "v.nii.gz"))
    pred = truth.as_reoriented(nibabel.orientations.axcodes2ornt(("L", "P", "S")))
    affine = pred.affine.copy()
    affine[0, 3] += shift_mm
    nibabel.save(nibabel.Nifti1Image(np.asarray(pred.dataobj), affine), str(root / "pred" / "labels" / "v.nii.gz"))


def test_a_nifti_prediction_in_another_orientation_is_scored_in_the_truths(tmp_path, capsys):
    """The same labels stored LPS against a RAS truth scored DSB 0.027, with no word."""
    _ras_truth_and_lps_prediction(tmp_path)
    assert evaluate_instances(tmp_path / "truth", tmp_path / "pred").summary["dsb_score"] == 1.0
    assert "stored in LPS orientation" in capsys.readouterr().err  # said: the files are not compared as stored


def test_a_nifti_prediction_on_another_grid_is_refused_naming_both_files(tmp_path):
    _ras_truth_and_lps_prediction(tmp_path, shift_mm=1.0)  # two voxels off in X
    with pytest.raises(InputError, match=r"labels/v\.nii\.gz and .*truth/v\.nii\.gz: NIfTI files on different voxel "
                                         r"grids .*resample it onto the truth"):
        evaluate_instances(tmp_path / "truth", tmp_path / "pred")
