"""`unetkit evaluate` through unetkit.cli.main on small folders made here."""

import json
import warnings

import numpy as np
import pytest

from unetkit.cli import main
from unetkit.data.io import write_labels, write_png, write_tiff


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def binary_folders(tmp_path):
    """a: exact prediction; b: 4x4 truth square, the left half predicted (Dice 2/3, see test_evaluation)."""
    a = np.zeros((8, 8), np.uint8)
    a[:, :4] = 255
    b = np.zeros((8, 8), np.uint8)
    b[2:6, 2:6] = 255
    b_pred = np.zeros((8, 8), np.uint8)
    b_pred[2:6, 2:4] = 255
    for name, truth, pred in (("a", a, a), ("b", b, b_pred)):
        write_png(tmp_path / "truth" / f"{name}.png", truth)
        write_png(tmp_path / "pred" / f"{name}_mask.png", pred)
    return tmp_path / "truth", tmp_path / "pred"


def test_binary_json_and_csv(binary_folders, capsys):
    truth, pred = binary_folders
    code = main(["evaluate", "--task", "binary", "--truth", str(truth), "--pred", str(pred), "--json"])
    assert code == 0
    summary = last_json(capsys)
    assert summary["images"] == 2
    assert summary["dice"] == pytest.approx(5 / 6)  # (1 + 2/3) / 2
    assert summary["iou"] == pytest.approx(0.75)  # (1 + 1/2) / 2
    assert summary["pixel_error"] == pytest.approx(0.0625)  # (0 + 8/64) / 2
    assert summary["rand_error"] == pytest.approx(23 / 74)  # (0 + 23/37) / 2, as in test_evaluate_binary_by_hand
    csv_lines = (pred / "evaluation_binary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("name,dice,iou") and len(csv_lines) == 3


def test_missing_prediction_exits_2_and_names_it(binary_folders, capsys):
    truth, pred = binary_folders
    (pred / "b_mask.png").unlink()
    code = main(["evaluate", "--truth", str(truth), "--pred", str(pred)])
    assert code == 2
    error = capsys.readouterr().err
    assert "b.png" in error and "without a prediction" in error


def test_instances_json(tmp_path, capsys):
    labels = np.zeros((20, 20), np.int32)
    labels[2:12, 2:12] = 1
    shifted = np.zeros_like(labels)
    shifted[2:12, 4:14] = 5  # IoU 80/120: hits at 0.5 .. 0.65 -> DSB score 0.4
    write_labels(tmp_path / "truth" / "x.tif", labels)
    write_labels(tmp_path / "pred" / "x_labels.tif", shifted)
    code = main(["evaluate", "--task", "instances", "--truth", str(tmp_path / "truth"),
                 "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    summary = last_json(capsys)
    assert summary["dsb_score"] == pytest.approx(0.4) and summary["ap50"] == 1.0 and summary["images"] == 1
    assert (tmp_path / "out" / "evaluation_instances.csv").is_file()


def test_instances_with_enough_images_give_the_interval_of_each_mean(tmp_path, capsys):
    labels = np.zeros((20, 20), np.int32)
    labels[2:12, 2:12] = 1
    for index in range(12):  # predictions shifted 0..3 px: DSB 1.0, 0.7, 0.4, 0.1 (IoU 1, 0.82, 0.67, 0.54)
        shifted = np.zeros_like(labels)
        shift = index % 4
        shifted[2:12, 2 + shift:12 + shift] = 1
        write_labels(tmp_path / "truth" / f"x{index}.tif", labels)
        write_labels(tmp_path / "pred" / f"x{index}_labels.tif", shifted)
    code = main(["evaluate", "--task", "instances", "--truth", str(tmp_path / "truth"),
                 "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["dsb_score"] == pytest.approx((1.0 + 0.7 + 0.4 + 0.1) / 4)
    low, high = summary["dsb_score_ci95"]
    assert 0.1 < low < summary["dsb_score"] < high < 1.0
    assert summary["ap50_ci95"] == [1.0, 1.0]  # every image hits at IoU 0.5: nothing to resample
    assert f"dsb_score    {summary['dsb_score']:.4f}  (95% CI {low:.4f}-{high:.4f} over images)" in out


def test_binary_on_two_images_gives_no_interval(binary_folders, capsys):
    truth, pred = binary_folders
    assert main(["evaluate", "--truth", str(truth), "--pred", str(pred), "--json"]) == 0
    out = capsys.readouterr().out
    assert "dice_ci95" not in json.loads(out.strip().splitlines()[-1]) and "95% CI" not in out


def test_multiclass_json_nan_is_null_and_plots(tmp_path, capsys):
    write_png(tmp_path / "truth" / "a.png", np.array([[0, 1, 1], [2, 2, 255]], np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.array([[0, 1, 2], [2, 1, 0]], np.uint8))
    code = main(["evaluate", "--task", "multiclass", "--truth", str(tmp_path / "truth"),
                 "--pred", str(tmp_path / "pred"), "--num-classes", "4", "--class-names", "bg,a,b,c",
                 "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    summary = last_json(capsys)
    # Dice per class: 1, 2/4, 2/4, absent (NaN -> null); mean over classes 1, 2
    assert summary["per_class_dice"][:3] == pytest.approx([1.0, 0.5, 0.5])
    assert summary["per_class_dice"][3] is None
    assert summary["mean_dice"] == pytest.approx(0.5)
    assert (tmp_path / "out" / "confusion_matrix.png").is_file()
    assert (tmp_path / "out" / "confusion_matrix.csv").read_text().startswith("truth \\ prediction,bg,a,b,c")
    assert main(["evaluate", "--task", "multiclass", "--truth", str(tmp_path / "truth"),
                 "--pred", str(tmp_path / "pred")]) == 2  # --num-classes missing
    capsys.readouterr()
    for _ in range(2):  # into the predictions' folder (the default), again: its own confusion matrix is no input
        assert main(["evaluate", "--task", "multiclass", "--truth", str(tmp_path / "truth"),
                     "--pred", str(tmp_path / "pred"), "--num-classes", "4", "--json"]) == 0, capsys.readouterr().err
        assert last_json(capsys)["per_class_dice"][:3] == pytest.approx([1.0, 0.5, 0.5])
    assert (tmp_path / "pred" / "confusion_matrix.png").is_file()


def test_multiclass_ignore_label_is_counted_and_refused_when_it_is_a_class(tmp_path, capsys):
    """``--ignore-label 1`` with classes 0..2 dropped class 1's truth and scored it 0 without a word; a value
    no truth pixel has left nothing out, also without a word."""
    write_png(tmp_path / "truth" / "a.png", np.array([[0, 1, 1], [2, 2, 255]], np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.array([[0, 1, 2], [2, 1, 0]], np.uint8))
    args = ["evaluate", "--task", "multiclass", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred"),
            "--num-classes", "3", "--out", str(tmp_path / "out"), "--json"]
    assert main(args) == 0
    assert last_json(capsys)["ignored_pixels"] == 1  # the 255 pixel
    assert main([*args, "--ignore-label", "1"]) == 2
    assert "ignore label 1 is the class 'class1' (classes 0..2)" in capsys.readouterr().err
    assert main([*args, "--ignore-label", "7"]) == 2  # the 255 pixel is now a class id outside 0..2
    capsys.readouterr()
    write_png(tmp_path / "truth" / "a.png", np.array([[0, 1, 1], [2, 2, 0]], np.uint8))
    assert main([*args, "--ignore-label", "7"]) == 0
    captured = capsys.readouterr()
    assert "note: --ignore-label 7: no truth pixel has this value, so none was left out" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["ignored_pixels"] == 0


def test_multiclass_colour_coded_truth_is_read_with_class_colors(tmp_path, capsys):
    """Colour-coded masks train a multiclass model (data.class_colors) but could not be scored: evaluate refused
    them as 'colour-coded' with no option to read them."""
    colours = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    ids = np.array([[0, 1, 1, 2], [2, 2, 0, 1]], np.uint8)
    write_png(tmp_path / "truth" / "a.png", np.stack([np.array(colours, np.uint8)[ids][..., c] for c in range(3)]))
    write_png(tmp_path / "pred" / "a.png", np.array([[0, 1, 2, 2], [2, 2, 0, 0]], np.uint8))
    args = ["evaluate", "--task", "multiclass", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred"),
            "--out", str(tmp_path / "out"), "--json"]
    assert main([*args, "--num-classes", "3"]) == 2
    assert "colour-coded mask" in capsys.readouterr().err
    assert main([*args, "--class-colors", "0,0,0;255,0,0;0,255,0"]) == 0
    summary = last_json(capsys)
    # class 1: truth 3 px, predicted 1 px, 1 shared -> Dice 0.5; class 2: truth 3 px, predicted 4 px, 3 shared -> 6/7
    assert summary["per_class_dice"][1:] == pytest.approx([0.5, 6 / 7])
    assert main([*args, "--class-colors", "0,0,0;255,0,0"]) == 2  # green is no class of this table
    assert "colour(s) not in the class table: (0, 255, 0)" in capsys.readouterr().err
    assert main([*args, "--class-colors", "0,0,0;300,0,0;0,255,0"]) == 2
    assert "'300,0,0' is not a colour" in capsys.readouterr().err


def test_an_empty_binary_prediction_is_noted(tmp_path, capsys):
    """An empty prediction of a one-object truth scores Dice 0 and, by the challenge's definition, a perfect
    thinned Rand error (one segment over the image): the table alone read as a good result."""
    truth = np.zeros((32, 32), np.uint8)
    truth[8:20, 8:20] = 255
    write_png(tmp_path / "truth" / "a.png", truth)
    write_png(tmp_path / "pred" / "a.png", np.zeros_like(truth))
    assert main(["evaluate", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred"), "--out",
                 str(tmp_path / "out"), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["dice"] == 0 and summary["rand_error_thinned"] == 0  # the definition, degenerate here
    assert summary["empty_predictions"] == 1 and summary["empty_prediction_names"] == ["a"]
    assert "note: 1 prediction(s) hold no foreground where the truth has some (e.g. a)" in captured.err


def test_regression_json(tmp_path, capsys):
    truth = (np.arange(64, dtype=np.float32).reshape(8, 8) / 63).astype(np.float32)
    write_tiff(tmp_path / "truth" / "a.tif", truth)
    write_tiff(tmp_path / "pred" / "a.tif", truth)  # identical: PSNR inf -> null
    code = main(["evaluate", "--task", "regression", "--truth", str(tmp_path / "truth"),
                 "--pred", str(tmp_path / "pred"), "--json"])
    assert code == 0
    summary = last_json(capsys)
    assert summary["mae"] == 0.0 and summary["ssim"] == pytest.approx(1.0) and summary["psnr"] is None


def test_non_finite_or_float_predictions_are_named(tmp_path, capsys):
    """A NaN probability map printed a RuntimeWarning and 'range nan..nan'; a NaN regression prediction was left
    out of the means without a word; a float TIFF as instance labels was called 'not a 3D volume'."""
    truth = np.zeros((8, 8), np.uint8)
    truth[2:5, 2:5] = 255
    write_png(tmp_path / "t" / "a.png", truth)
    write_tiff(tmp_path / "t" / "b.tif", np.ones((8, 8), np.float32))  # regression truths
    nan_map = np.full((8, 8), np.nan, np.float32)
    write_tiff(tmp_path / "p" / "a.tif", nan_map)
    write_tiff(tmp_path / "p" / "b.tif", np.full((8, 8), 0.5, np.float32))
    for task, words in (("binary", "a.tif: 64 NaN/Inf value(s) in the probabilities"),
                        ("regression", "a.tif: 64 NaN/Inf value(s) in the prediction"),
                        ("instances", "a.tif: label image holds non-integer values")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # the NaN map used to warn before its message
            assert main(["evaluate", "--task", task, "--truth", str(tmp_path / "t"), "--pred",
                         str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_part_of_a_dataset_is_scored_with_only_predicted(binary_folders, tmp_path, capsys):
    """Predicting a few images of a dataset and scoring them against its truth folder was refused with no way
    out but deleting truth files; --only-predicted scores the predicted part and says how much it left out."""
    truth, pred = binary_folders
    kept = sorted(p for p in pred.iterdir() if p.is_file())[:1]
    part = tmp_path / "part"
    part.mkdir()
    for path in kept:
        (part / path.name).write_bytes(path.read_bytes())
    assert main(["evaluate", "--truth", str(truth), "--pred", str(part)]) == 2
    assert "--only-predicted" in capsys.readouterr().err
    assert main(["evaluate", "--truth", str(truth), "--pred", str(part), "--only-predicted", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    n_truth = len([p for p in truth.iterdir() if p.is_file()])
    assert summary["images"] == 1 and summary["truth_left_out"] == n_truth - 1
    assert f"note: {n_truth - 1} truth image(s) without a prediction left out" in captured.err
    (part / "stranger.png").write_bytes(kept[0].read_bytes())  # a prediction without a truth stays an error
    assert main(["evaluate", "--truth", str(truth), "--pred", str(part), "--only-predicted"]) == 2
    assert "without a truth image" in capsys.readouterr().err


def test_the_truth_is_never_scored_against_itself(tmp_path, capsys):
    """A dataset folder given as --pred (or its masks/) paired the truth with itself: Dice 1.0, exit 0."""
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "ds", n_images=2, seed=1, shape=(32, 32))
    for truth, pred in (("ds", "ds"), ("ds/masks", "ds"), ("ds", "ds/masks")):
        code = main(["evaluate", "--truth", str(tmp_path / truth), "--pred", str(tmp_path / pred), "--out",
                     str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and "is a truth file, found again as a prediction" in err, (truth, pred, err)


def test_options_that_change_nothing_are_noted_and_api_options_reach_the_command_line(tmp_path, capsys):
    """--threshold on 8-bit masks was ignored without a word; 0/255 masks scored as 2 classes lost their
    foreground to the ignore label (pixel accuracy 1.0); --thresholds and --data-range were API-only."""
    truth = np.zeros((16, 16), np.uint8)
    truth[4:12, 4:12] = 255
    write_png(tmp_path / "truth" / "a.png", truth)
    write_png(tmp_path / "pred" / "a.png", truth)
    base = ["evaluate", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred"), "--out",
            str(tmp_path / "out")]
    assert main([*base, "--threshold", "0.7"]) == 0
    assert "note: --threshold 0.7 applies to probability maps" in capsys.readouterr().err
    assert main([*base, "--task", "multiclass", "--num-classes", "2"]) == 0
    assert "note: the 64 truth pixels of the ignore label (255) were left out" in capsys.readouterr().err
    assert main([*base, "--task", "instances", "--thresholds", "0.5,0.9", "--json"]) == 0
    assert last_json(capsys)["dsb_score"] == 1.0
    assert main([*base, "--task", "instances", "--thresholds", "a"]) == 2
    assert "--thresholds a: expected numbers" in capsys.readouterr().err


def test_eight_bit_probabilities_scored_as_masks_are_noted(tmp_path, capsys):
    """A prediction saved as round(p * 255) was scored as non-zero = foreground (Dice 0.82 against its own
    thresholded mask) without a word."""
    import numpy as np

    from unetkit.data.io import write_png

    rng = np.random.default_rng(0)
    truth = np.zeros((32, 32), np.uint8)
    truth[8:24, 8:24] = 255
    graded = np.clip(np.where(truth > 0, 220, 20) + rng.integers(-15, 16, truth.shape), 1, 255).astype(np.uint8)
    write_png(tmp_path / "truth" / "a.png", truth)
    write_png(tmp_path / "pred" / "a.png", graded)
    write_png(tmp_path / "labels" / "a.png", (truth > 0).astype(np.uint8) * 3)  # a label image: mostly 0
    assert main(["evaluate", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred"), "--task",
                 "binary", "--out", str(tmp_path / "e1")]) == 0
    assert "8-bit prediction(s) hold many grey levels" in capsys.readouterr().err
    assert main(["evaluate", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "labels"), "--task",
                 "binary", "--out", str(tmp_path / "e2")]) == 0
    assert "grey levels" not in capsys.readouterr().err
