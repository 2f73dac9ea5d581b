"""bf16 autocast on a CPU (``inference.precision``): it really runs in bf16, and stays within bf16's rounding."""

import numpy as np
import pytest
import torch

import unetkit
from unetkit.checkpoint import save_checkpoint
from unetkit.cli import main
from unetkit.config import RunConfig, apply_overrides, to_dict
from unetkit.errors import InputError
from unetkit.models.registry import build_model

TINY = {"model.depth": 3, "model.base_channels": 4, "inference.tile_size": 32, "inference.batch_size": 2}


@pytest.fixture
def checkpoint(tmp_path):
    config = apply_overrides(RunConfig(), TINY)
    torch.manual_seed(0)
    model = build_model(config.model)
    return save_checkpoint(tmp_path / "best.pt", {"config": to_dict(config), "model": model.state_dict()})


def _image():
    return (np.random.default_rng(0).random((48, 56)) * 2000 + 100).astype(np.uint16)


def test_bf16_differs_from_fp32_within_the_rounding_of_its_conv_layers(checkpoint):
    fp32 = unetkit.load(checkpoint, device="cpu").predict(_image()).probabilities
    bf16_model = unetkit.load(checkpoint, device="cpu", precision="bf16")
    assert bf16_model.config.inference.precision == "bf16"
    bf16 = bf16_model.predict(_image()).probabilities
    difference = np.abs(bf16 - fp32).max()
    assert difference > 0  # bf16 ran: fp32 and bf16 agree bit for bit only if autocast was off
    # Each conv layer rounds its inputs to bf16 (relative error <= 2^-8); at worst these add up along the
    # net's conv layers, and softmax changes by at most half the change of its logits.
    conv_layers = sum(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in
                      build_model(apply_overrides(RunConfig(), TINY).model).modules())
    assert difference <= conv_layers * 2.0**-8
    np.testing.assert_allclose(bf16.sum(axis=0), 1.0, atol=1e-5)  # still probabilities (softmax in fp32)


def test_precision_is_checked_and_offered_on_the_cli(checkpoint, tmp_path, capsys):
    with pytest.raises(InputError, match="inference.precision"):
        unetkit.load(checkpoint, device="cpu", precision="fp8")
    image = tmp_path / "in" / "a.tif"
    image.parent.mkdir()
    import tifffile

    tifffile.imwrite(image, _image())
    assert main(["predict", "--model", str(checkpoint), str(image.parent), "--out", str(tmp_path / "out"),
                 "--precision", "bf16", "--device", "cpu", "--quiet"]) == 0
    assert (tmp_path / "out" / "masks" / "a.png").is_file()
