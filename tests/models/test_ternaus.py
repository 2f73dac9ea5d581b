"""TernausNet11: VGG11 encoder layout, torchvision-format weight loading with clear errors, freezing."""

import pytest
import torch
from torch import nn

from unetkit.config import ModelConfig
from unetkit.errors import InputError
from unetkit.models.registry import build_model, resolve_model_config
from unetkit.models.summary import model_info
from unetkit.models.ternaus import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TernausNet11,
    load_encoder_weights,
    receptive_field,
    set_encoder_frozen,
)

torch.set_num_threads(1)


def torchvision_vgg11_features() -> nn.Sequential:
    """torchvision's vgg11().features written out layer by layer (indices as in torchvision)."""
    def conv(a, b):
        return nn.Conv2d(a, b, kernel_size=3, padding=1)

    def relu():
        return nn.ReLU(inplace=True)

    def pool():
        return nn.MaxPool2d(kernel_size=2, stride=2)

    return nn.Sequential(
        conv(3, 64), relu(), pool(),  # 0 1 2
        conv(64, 128), relu(), pool(),  # 3 4 5
        conv(128, 256), relu(), conv(256, 256), relu(), pool(),  # 6 .. 10
        conv(256, 512), relu(), conv(512, 512), relu(), pool(),  # 11 .. 15
        conv(512, 512), relu(), conv(512, 512), relu(), pool(),  # 16 .. 20
    )


@pytest.fixture(scope="module")
def vgg_state():
    """A torchvision-format VGG11 state dict: features.N.* plus classifier.* (ignored by ternaus11)."""
    torch.manual_seed(3)
    features = torchvision_vgg11_features()
    state = {f"features.{k}": v.clone() for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.randn(8, 4)
    state["classifier.0.bias"] = torch.randn(8)
    return features, state


def test_output_shape_and_input_checks():
    net = TernausNet11(in_channels=1, out_channels=3)
    assert net(torch.zeros(2, 1, 64, 96)).shape == (2, 3, 64, 96)
    with pytest.raises(ValueError, match="multiples of 32.*e.g. use \\(32, 96\\)"):
        net(torch.zeros(1, 1, 48, 100))
    with pytest.raises(InputError, match="gray \\(1\\) or RGB \\(3\\)"):
        TernausNet11(in_channels=2)


def test_encoder_has_torchvision_layout_and_vgg11_parameter_count():
    net = TernausNet11()
    convs = {int(k.split(".")[0]) for k in net.encoder.state_dict()}
    assert convs == {0, 3, 6, 8, 11, 13, 16, 18}
    assert len(net.encoder) == 21
    # VGG11's convolutional part has 9,220,480 parameters (of its 132,863,336 with the classifier)
    assert sum(p.numel() for p in net.encoder.parameters()) == 9_220_480


def test_loaded_encoder_computes_exactly_what_the_vgg_features_compute(vgg_state, tmp_path):
    features, state = vgg_state
    torch.save(state, tmp_path / "vgg11.pth")
    net = TernausNet11(in_channels=3)
    assert load_encoder_weights(net, tmp_path / "vgg11.pth") == 16
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net.encoder(x), features(x))
        for key, value in state.items():
            if key.startswith("features."):
                assert torch.equal(net.encoder.state_dict()[key.removeprefix("features.")], value)


def test_imagenet_normalisation_and_gray_replication():
    torch.manual_seed(0)
    rgb = TernausNet11(in_channels=3, out_channels=2).eval()
    gray = TernausNet11(in_channels=1, out_channels=2).eval()
    gray.load_state_dict(rgb.state_dict())
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(gray(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-6)
        # the first conv sees (x - mean) / std: a mid-gray 0.45 image gives ((0.45 - m) / s) per channel
        seen = {}

        def record(module, inputs, output):
            seen["in"] = inputs[0]

        handle = rgb.encoder[0].register_forward_hook(record)
        rgb(torch.full((1, 3, 32, 32), 0.45))
        handle.remove()
    expected = (0.45 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(seen["in"][0, :, 0, 0], expected)


def test_wrapped_and_dataparallel_state_dicts_load(vgg_state, tmp_path):
    _, state = vgg_state
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pt")
    net = TernausNet11()
    assert load_encoder_weights(net, tmp_path / "wrapped.pt") == 16
    assert torch.equal(net.encoder[18].bias, state["features.18.bias"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("features.18.bias"), "missing keys features.18.bias"),
    (lambda s: s.__setitem__("features.0.weight", torch.zeros(64, 1, 3, 3)),
     r"features.0.weight: expected \(64, 3, 3, 3\), got \(64, 1, 3, 3\)"),
    (lambda s: s.__setitem__("features.21.weight", torch.zeros(512, 512, 3, 3)), "VGG13/16/19"),
    (lambda s: s.__setitem__("features.1.running_mean", torch.zeros(64)), "VGG11-BN"),
])
def test_mismatched_state_dicts_give_errors_naming_keys(vgg_state, tmp_path, change, message):
    state = dict(vgg_state[1])
    change(state)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=message):
        load_encoder_weights(TernausNet11(), tmp_path / "bad.pth")


def test_foreign_and_missing_weight_files(tmp_path):
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pth")
    with pytest.raises(InputError, match="no 'features.N.weight' keys.*conv1.weight"):
        load_encoder_weights(TernausNet11(), tmp_path / "resnet.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pth: cannot read it as a PyTorch state dict"):
        load_encoder_weights(TernausNet11(), tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="vgg11\\(weights='IMAGENET1K_V1'\\)"):
        load_encoder_weights(TernausNet11(), tmp_path / "absent.pth")
    with pytest.raises(InputError, match="no VGG encoder"):
        load_encoder_weights(build_model(ModelConfig(depth=2, base_channels=4)), tmp_path / "resnet.pth")


def test_frozen_encoder_is_not_updated_but_the_decoder_is():
    torch.manual_seed(1)
    net = TernausNet11(in_channels=1, out_channels=2)
    assert set_encoder_frozen(net, True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    encoder_before = [p.clone() for p in net.encoder.parameters()]
    head_before = net.head.weight.clone()
    net(torch.rand(2, 1, 32, 32)).mean().backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, net.encoder.parameters(), strict=True))
    assert not torch.equal(head_before, net.head.weight)
    set_encoder_frozen(net, False)
    assert all(p.requires_grad for p in net.parameters())
    assert not set_encoder_frozen(build_model(ModelConfig(depth=2, base_channels=4)), True)  # U-Net: no encoder


def test_registry_fixes_ternaus_geometry_and_refuses_what_cannot_hold():
    resolved = resolve_model_config(ModelConfig(name="ternaus11", in_channels=1))
    assert (resolved.depth, resolved.padding, resolved.spatial_dims, resolved.norm) == (6, "same", 2, "none")
    assert isinstance(build_model(resolved), TernausNet11)
    with pytest.raises(InputError, match="remove model.padding=valid"):
        resolve_model_config(ModelConfig(name="ternaus11", padding="valid"))
    with pytest.raises(InputError, match="need a pretrained encoder"):
        resolve_model_config(ModelConfig(name="unet", encoder_weights="vgg11.pth"))


def test_info_reports_ternaus_sizes():
    info = model_info(ModelConfig(name="ternaus11", in_channels=3), (64, 96))
    assert info["divisible_by"] == [32, 32] and info["output_size"] == [64, 96]
    assert info["parameters"] == sum(p.numel() for p in TernausNet11(3, 2).parameters())
    assert info["receptive_field"] == [receptive_field()] * 2
    assert info["memory_train_mb"] > info["memory_predict_mb"] > 0


def test_receptive_field_of_the_deepest_path():
    # checked against the gradient of one output pixel over all alignments: the widest span is 310 px
    # (a plain jump count along the deepest path, ignoring alignment, would give 338)
    assert receptive_field() == 310
