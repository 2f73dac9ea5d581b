"""The U-Net: the paper's sizes and parameter count, variants, 1D/2D/3D."""

import pytest
import torch

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models.registry import build_model
from unetkit.models.summary import count_parameters, model_info
from unetkit.models.unet import UNet


def test_paper_network_572_gives_388_and_31030658_parameters():
    # built on the meta device: shapes are traced without allocating 31 M weights or computing
    with torch.device("meta"):
        net = UNet(in_channels=1, out_channels=2, padding="valid", norm="none", depth=5, base_channels=64)
        out = net(torch.empty(1, 1, 572, 572))
    assert tuple(out.shape) == (1, 2, 388, 388)
    assert count_parameters(net) == 31_030_658


def test_info_reports_paper_numbers():
    info = model_info(ModelConfig(padding="valid", norm="none"), (572, 572))
    assert info["input_size"] == [572, 572] and info["output_size"] == [388, 388]
    assert info["parameters"] == 31_030_658
    assert info["margin_per_side"] == [92, 92]
    # every conv/up-conv FLOP counted once: 2 * MACs; the paper's net is ~300 GFLOPs at 572x572
    assert 250 < info["gflops"] < 350


@pytest.mark.parametrize("depth,width,size", [(2, 4, 40), (3, 8, 68), (4, 4, 140)])
def test_valid_nets_of_several_depths_and_widths(depth, width, size):
    net = UNet(1, 3, depth=depth, base_channels=width, padding="valid")
    info = model_info(ModelConfig(depth=depth, base_channels=width, padding="valid", out_channels=3), (size,))
    out = net(torch.zeros(1, 1, size, size))
    assert list(out.shape[2:]) == info["output_size"]
    assert out.shape[1] == 3


@pytest.mark.parametrize("norm", ["none", "batch", "instance", "group"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_same_nets_keep_the_size(norm, upsample):
    net = UNet(3, 2, depth=3, base_channels=8, padding="same", norm=norm, upsample=upsample, dropout=0.5)
    assert net(torch.zeros(2, 3, 48, 40)).shape == (2, 2, 48, 40)


def test_3d_and_anisotropic_pooling():
    net = UNet(1, 2, spatial_dims=3, depth=3, base_channels=4, padding="same", pool_sizes=[[1, 2, 2], [2, 2, 2]])
    assert net(torch.zeros(1, 1, 8, 16, 16)).shape == (1, 2, 8, 16, 16)
    valid = UNet(1, 2, spatial_dims=3, depth=2, base_channels=4, padding="valid")
    assert valid(torch.zeros(1, 1, 20, 20, 20)).shape == (1, 2, 4, 4, 4)


def test_he_init_has_the_papers_std():
    net = UNet(1, 2, depth=2, base_channels=64, init="he")
    conv = net.first[3]  # second 3x3 conv of the first level: N = 9 * 64 inputs per neuron
    expected = (2 / (9 * 64)) ** 0.5
    assert abs(conv.weight.std().item() - expected) / expected < 0.05


def test_registry_and_bad_options():
    assert isinstance(build_model(ModelConfig(name="unet3d", depth=2, base_channels=2)), UNet)
    with pytest.raises(InputError, match="unknown model"):
        build_model(ModelConfig(name="resnet"))
    with pytest.raises(InputError, match="padding must be one of"):
        UNet(padding="reflect")
