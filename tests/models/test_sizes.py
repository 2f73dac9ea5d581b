"""Size arithmetic against worked numbers and against the network itself."""

import pytest
import torch

from unetkit.errors import InputError
from unetkit.models import sizes
from unetkit.models.unet import UNet


def test_worked_numbers_of_the_paper():
    assert sizes.valid_output_size((572, 572), depth=5) == (388, 388)
    assert sizes.valid_margin(5) == (92, 92)
    # valid inputs are 16 k + 12: 572 = 16*35 + 12
    assert sizes.nearest_valid_sizes(572, 5) == (572, 572)
    assert sizes.nearest_valid_sizes(573, 5) == (572, 588)
    assert sizes.valid_input_for_output(388, 5) == 572
    assert sizes.valid_input_for_output(389, 5) == 588
    assert sizes.same_divisor(5) == (16, 16)


def test_invalid_sizes_name_the_fix():
    with pytest.raises(InputError, match="use 572 or 588"):
        sizes.valid_output_size((580, 572), depth=5)
    with pytest.raises(InputError, match="divisible by 16"):
        sizes.output_size((250, 256), depth=5, padding="same")


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_helpers_agree_with_the_network(depth):
    size = sizes.nearest_valid_sizes(100, depth)[1]
    net = UNet(1, 1, depth=depth, base_channels=2, padding="valid")
    out = net(torch.zeros(1, 1, size, size))
    assert tuple(out.shape[2:]) == sizes.valid_output_size((size, size), depth)
    assert (size - out.shape[-1]) // 2 == sizes.valid_margin(depth)[0]


def test_anisotropic_margins():
    pools = [[1, 2, 2], [1, 2, 2]]
    assert sizes.same_divisor(3, 3, pools) == (1, 4, 4)
    out = sizes.valid_output_size((21, 44, 44), 3, pools)  # z: no pooling, 4 px lost per level: 21 -> 1
    net = UNet(1, 1, spatial_dims=3, depth=3, base_channels=2, padding="valid", pool_sizes=pools)
    assert tuple(net(torch.zeros(1, 1, 21, 44, 44)).shape[2:]) == out


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_receptive_field_matches_perturbation(padding):
    """Empirical receptive field of a 1D net: which inputs change which outputs."""
    torch.manual_seed(0)
    depth = 3
    net = UNet(1, 1, spatial_dims=1, depth=depth, base_channels=3, padding=padding).double().eval()
    length = 76 if padding == "valid" else 96  # 76 is a valid input for depth 3
    x = torch.rand(1, 1, length, dtype=torch.float64)
    base = net(x)[0, 0]
    offset = (length - base.shape[0]) // 2
    span = {}
    with torch.no_grad():
        for i in range(length):
            for delta in (5.0, -5.0):
                y = x.clone()
                y[0, 0, i] += delta
                changed = (net(y)[0, 0] - base).abs() > 1e-12
                for j in torch.nonzero(changed).flatten().tolist():
                    lo, hi = span.get(j, (i, i))
                    span[j] = (min(lo, i), max(hi, i))
    # interior outputs (no clipping by the image border for same nets)
    widths = [hi - lo + 1 for j, (lo, hi) in span.items()
              if padding == "valid" or 40 <= j + offset <= length - 41]
    assert max(widths) == sizes.receptive_field(depth, padding, spatial_dims=1)[0]
