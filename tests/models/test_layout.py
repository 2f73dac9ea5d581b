"""Channels-last conversion keeps a net's outputs and, for 3D batches, really runs every conv in NDHWC."""

import copy

import pytest
import torch

from unetkit.cpu.numerics import as_accurate
from unetkit.models.layout import to_channels_last
from unetkit.models.unet import UNet

NDHWC = torch.channels_last_3d


def _conv_output_layouts(model, x):
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append(out.is_contiguous(memory_format=NDHWC)))
             for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))
             and m.kernel_size[0] > 1]  # the 1x1 head's layout is PyTorch's choice (NCDHW on 1 thread)
    model(x)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_3d_net_runs_every_conv_in_ndhwc_with_unchanged_outputs(mode):
    torch.manual_seed(0)
    plain = UNet(1, 2, spatial_dims=3, padding="same", norm="batch", base_channels=4, depth=3)
    getattr(plain, mode)()
    converted = to_channels_last(copy.deepcopy(plain), 3)
    x = torch.randn(2, 1, 8, 16, 16)  # from two volumes up PyTorch carries NDHWC from the weights
    with torch.inference_mode(mode == "eval"):
        layouts = _conv_output_layouts(converted, x)
        assert layouts and all(layouts)
        exact = copy.deepcopy(plain).double()(x.double())  # float64: the layouts' float32 errors judged alike
        assert as_accurate(converted(x), plain(x), exact)
    assert list(converted.state_dict()) == list(plain.state_dict())


def test_1d_nets_are_left_alone():
    net_1d = UNet(1, 2, spatial_dims=1, padding="same", base_channels=4, depth=2)
    before = [p.stride() for p in net_1d.parameters()]
    assert [p.stride() for p in to_channels_last(net_1d, 1).parameters()] == before


def test_2d_net_weights_become_nhwc():
    net = to_channels_last(UNet(1, 2, padding="same", base_channels=4, depth=2), 2)
    assert net.first[0].weight.is_contiguous(memory_format=torch.channels_last)
