"""Data-parallel training with two CPU processes (gloo): the same optimisation as one process with the
same global batch, rank 0 alone writes, and a run resumes with a different number of processes."""

import csv

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
