"""Data-parallel training with two CPU processes (gloo): the same optimisation as one process with the
same global batch, rank 0 alone writes, and a run resumes with a different number of processes."""

import csv
from pathlib import Path

import pytest
import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.training.distributed import DistributedContext, StepShardSampler, shard, spawn_local
from unetkit.training.loop import fit

# no dropout, no batch statistics, no Dice: the loss of a global batch is then the mean of the ranks'
# losses, so 2 processes x 4 patches must train like 1 process x 8 patches; in float32 (bf16 autocast,
# train.precision=auto on a CPU with bf16, rounds 4- and 8-patch batches differently)
EXACT = {
    "train.precision": "fp32", "model.depth": 3, "model.base_channels": 8, "model.norm": "none", "model.dropout": 0.0,
    "loss.dice_weight": 0.0, "data.patch_size": 48, "data.samples_per_epoch": 16, "train.batch_size": 8,
    "train.lr": 5e-3, "inference.tile_size": 64, "train.overlays": 1, "train.device": "cpu",
}


def _config(**extra):
    return apply_overrides(RunConfig(), {**EXACT, **extra})


def test_step_shards_of_all_ranks_make_the_single_process_batches():
    single = list(StepShardSampler(20, 8))
    ranks = [list(StepShardSampler(20, 8, rank, 2)) for rank in range(2)]
    assert single == list(range(16))  # the incomplete last batch (16..19) is dropped
    assert ranks[0] == [0, 1, 2, 3, 8, 9, 10, 11] and ranks[1] == [4, 5, 6, 7, 12, 13, 14, 15]
    assert shard(list("abcde"), 1, 2) == ["b", "d"]
    with pytest.raises(InputError, match="divisible"):
        DistributedContext(world_size=3).local_batch(8)


def test_two_processes_train_like_one_and_resume_with_one(tiny_dataset, tmp_path):
    data, val = tiny_dataset / "train", tiny_dataset / "val"
    spawn_local(fit, 2, _config(**{"train.epochs": 1}), data, tmp_path / "ddp", val, False, None, False)
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    assert len(rows) == 1 and "val_dice" in rows[0]
    assert not list((tmp_path / "ddp").glob(".*tmp"))
    straight = fit(_config(**{"train.epochs": 2}), data, tmp_path / "one", val, progress=False)
    assert float(rows[0]["train_loss"]) == pytest.approx(straight.history[0]["train_loss"], rel=1e-4)
    assert float(rows[0]["val_dice"]) == pytest.approx(straight.history[0]["val_dice"], abs=1e-3)
    resumed = fit(None, None, tmp_path / "ddp", resume=True, resume_overrides={"train.epochs": 2}, progress=False)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    a = ckpt.load_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    b = ckpt.load_checkpoint(tmp_path / "one" / "last.pt")["model"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-4), key


def _predict_or_note_refusal(model: str, images: str, out: str, notes: str) -> None:
    import os

    import unetkit

    try:
        unetkit.predict_files(model, images, out, progress=False, device="cpu")
    except InputError as error:
        Path(notes).mkdir(exist_ok=True)
        (Path(notes) / f"refused-{os.environ['RANK']}").write_text(str(error))


def test_torchrun_prediction_checks_once_for_all_and_sums_up_every_image(tmp_path):
    """Under torchrun only the first process checked the folder: the second wrote another model's predictions
    into it; and each process wrote classes.csv over the other's with its own images alone."""
    import numpy as np

    from unetkit.data.io import write_png

    rng = np.random.default_rng(0)
    for index in range(3):
        write_png(tmp_path / "in" / f"img{index}.png", rng.integers(0, 255, (48, 48)).astype(np.uint8))
    out, notes = tmp_path / "pred", tmp_path / "notes"
    spawn_local(_predict_or_note_refusal, 2, "nuclei", str(tmp_path / "in"), str(out), str(notes))
    assert not notes.exists() and len(list((out / "masks").iterdir())) == 3
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    spawn_local(_predict_or_note_refusal, 2, "em-membranes", str(tmp_path / "in"), str(out), str(notes))
    assert sorted(path.name for path in notes.iterdir()) == ["refused-0", "refused-1"]
    assert "holds the predictions of another model" in (notes / "refused-1").read_text()
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    spawn_local(_predict_or_note_refusal, 2, "em-organelles", str(tmp_path / "in"), str(tmp_path / "mc"), str(notes))
    rows = list(csv.DictReader(open(tmp_path / "mc" / "classes.csv")))
    assert sorted(Path(row["image"]).name for row in rows) == ["img0.png", "img1.png", "img2.png"], rows


def test_two_processes_pool_multiclass_validation_over_every_pixel_and_draw_every_overlay(tmp_path):
    """Under torchrun the multiclass scores were image-count-weighted means of each rank's pooled scores (0.0847
    against 0.0830 for the same weights), and rank 0 drew only the overlays of its own share of the images."""
    from unetkit.data.synthetic_tasks import write_multiclass_dataset

    write_multiclass_dataset(tmp_path / "train", 2, seed=1, shape=(64, 64))
    write_multiclass_dataset(tmp_path / "val", 3, seed=2, sizes=[(64, 64), (48, 80), (72, 56)])
    config = _config(**{"task": "multiclass", "model.out_channels": 3, "train.epochs": 1, "train.lr": 1e-12,
                        "train.overlays": 3, "train.weight_decay": 0.0})
    spawn_local(fit, 2, config, tmp_path / "train", tmp_path / "ddp", tmp_path / "val", False, None, False)
    ddp = next(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    from unetkit.training.data import prepare_data
    from unetkit.training.validation import validate

    model, saved = ckpt.load_model(tmp_path / "ddp" / "last.pt")
    _, val, _ = prepare_data(saved, tmp_path / "train", tmp_path / "val")
    single = validate(model, val, saved, torch.device("cpu"))  # one process, every image
    for key in ("val_mean_dice", "val_pixel_accuracy", "val_dice_class1"):
        assert float(ddp[key]) == pytest.approx(single[key], abs=1e-6), key
    assert len(list((tmp_path / "ddp" / "overlays").iterdir())) == 3
