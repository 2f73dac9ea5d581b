"""TernausNet11 in the training loop: VGG11 weights from a local file, encoder frozen for the first epochs."""

import json

import torch

from unetkit import checkpoint as ckpt
from unetkit.config import RunConfig, apply_overrides
from unetkit.models.registry import build_model
from unetkit.models.ternaus import vgg11_features
from unetkit.training.loop import fit

torch.set_num_threads(1)


def test_pretrained_frozen_encoder_stays_as_loaded_while_the_decoder_learns(tiny_dataset, tmp_path):
    torch.manual_seed(7)
    state = {f"features.{k}": v for k, v in vgg11_features().state_dict().items()}  # torchvision key format
    torch.save(state, tmp_path / "vgg11.pth")
    config = apply_overrides(RunConfig(), {
        "model.name": "ternaus11", "model.encoder_weights": str(tmp_path / "vgg11.pth"),
        "model.freeze_encoder_epochs": 1, "train.epochs": 1, "data.patch_size": 32, "data.samples_per_epoch": 4,
        "train.batch_size": 2, "inference.tile_size": 64, "train.overlays": 0, "train.warmup_epochs": 0,
    })
    result = fit(config, tiny_dataset / "train", tmp_path / "run", tiny_dataset / "val", progress=False)
    assert 0 <= result.history[0]["val_dice"] <= 1
    payload = ckpt.load_checkpoint(tmp_path / "run" / "last.pt")
    for key, value in state.items():
        assert torch.equal(payload["model"][key.replace("features.", "encoder.")], value), key
    assert payload["config"]["model"]["depth"] == 6 and payload["config"]["model"]["padding"] == "same"
    torch.manual_seed(config.train.seed)  # fit seeds torch before building the model: the same initial weights
    initial = build_model(ckpt.config_of(payload).model)
    assert not torch.equal(payload["model"]["head.weight"], initial.head.weight)  # the decoder learned
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["input_patch"] == [32, 32]
    model, _ = ckpt.load_model(tmp_path / "run" / "last.pt")  # rebuilt from the checkpoint alone
    assert model(torch.zeros(1, 1, 64, 32)).shape == (1, 2, 64, 32)
